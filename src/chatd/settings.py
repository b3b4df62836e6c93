"""Process settings: environment variables with the CHATD_ prefix, mirrored by CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "chatd"


def default_config_dir() -> Path:
    return Path.home() / ".config" / "chatd"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATD_", extra="ignore")

    http_address: str = "127.0.0.1:3000"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    config_dir: Path = Field(default_factory=default_config_dir)
    access_url: str = ""

    first_user_email: str = ""
    first_user_username: str = ""
    first_user_password: str = ""

    openai_api_key: str = Field(
        default="", validation_alias=AliasChoices("OPENAI_API_KEY", "CHATD_OPENAI_API_KEY")
    )
    anthropic_api_key: str = Field(
        default="", validation_alias=AliasChoices("ANTHROPIC_API_KEY", "CHATD_ANTHROPIC_API_KEY")
    )
    openai_base_url: str = ""
    openai_model: str = ""

    log_format: str = "auto"

    # The engine (engine-behaviour §4.1); every interval is configurable so tests shorten them.
    workers_enabled: bool = True
    acquire_interval: float = 1.0
    max_chats_per_acquire: int = 10
    heartbeat_interval: float = 30.0
    stale_after: float = 300.0
    stale_recovery_interval: float = 60.0
    startup_timeout: float = 60.0
    max_steps: int = 1200
    retry_initial_delay: float = 1.0
    retry_max_delay: float = 60.0
    retry_max_attempts: int = 25

    # Abuse resistance. Failed logins: this many within the window lock the account name (each
    # lockout twice the one before, up to login_max_lockout) or the client address out; 0 turns
    # that limit off. Seconds throughout.
    login_failures_per_account: int = Field(default=5, ge=0)
    login_failures_per_address: int = Field(default=20, ge=0)
    login_failure_window: float = Field(default=900.0, gt=0)
    login_max_lockout: float = Field(default=86400.0, gt=0)
    # argon2 hashes and verifications running at once (64 MiB each with the default parameters).
    password_hash_concurrency: int = Field(default=2, ge=1)
    # Requests per authenticated user: refilled at this rate, bursts up to rate_limit_burst;
    # 0 turns the limit off.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    # HTTP/1.1: the largest request line plus header block accepted (431 beyond it), and how long
    # a connection may take to send a request's headers (then 408 and closed).
    http_max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    http_header_timeout: float = Field(default=20.0, gt=0)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated addresses
    # or networks, "*" for any). Empty: the client address is the socket peer's.
    forwarded_allow_ips: str = ""

    # Development/testing aid: register the shipped test tools (echo, wait, fail; see
    # chatd.testing.tools) so fake-provider scripts can run tool-calling turns. Off in production.
    testing_tools: bool = False

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL: PostgreSQL when configured, else SQLite in the data dir."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'chatd.db'}"
        return to_async_url(url)

    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")


def to_async_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:// URLs and pick the async drivers."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url
