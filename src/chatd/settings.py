"""Process settings: environment variables with the CHATD_ prefix, mirrored by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    log_level: Literal["debug", "info", "warning", "error"] = "info"

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
