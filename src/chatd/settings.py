"""Process settings: environment variables with the CHATD_ prefix, mirrored by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chatd.github_site import GITHUB_COM_URL, GitHubSite


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "chatd"


def default_config_dir() -> Path:
    return Path.home() / ".config" / "chatd"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATD_", extra="ignore")

    http_address: str = "127.0.0.1:3000"
    # Where the other replicas on the same database reach this one (http://host:port); empty:
    # http:// and the listen address, right when they run on the same host or it listens on
    # an address they can reach.
    internal_url: str = ""
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    # PostgreSQL: test each pooled connection with a round trip before use (behind a proxy or
    # a failover, a connection the server dropped is then replaced unseen), and close a
    # connection idle this many seconds.
    database_pre_ping: bool = False
    database_idle_timeout: float = 300.0
    # PostgreSQL connections this process opens at most (its pool; the event listener is one
    # more). Several replicas share the server's max_connections.
    database_pool_size: int = Field(default=50, ge=1)
    config_dir: Path = Field(default_factory=default_config_dir)
    # The URL users reach this server at. Its origin is the one browsers may send
    # cookie-authenticated changes from; an https URL makes the session cookie Secure.
    access_url: str = ""
    # More origins (scheme://host[:port]) that may send cookie-authenticated changes and
    # WebSocket upgrades; comma-separated in the environment.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # When set, /metrics answers only requests with "Authorization: Bearer <token>".
    metrics_token: str = ""
    # The key of the secrets at rest (chatd.secret_key): base64url of 32 bytes, or several
    # separated by commas (the first seals); empty: the key file in the data directory.
    secret_key: SecretStr = SecretStr("")

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
    # Redis (redis://host:port/db): when set, with PostgreSQL, a turn's streamed parts reach
    # the other replicas through Redis Streams, which keep them after their replica is gone
    # (chatd.events.redis_turns); else through an internal WebSocket relay.
    redis_url: str = ""
    # Seconds the chat event log keeps events (chatd.store.stream_log): how far back a stream
    # resumes after a sequence number (older: the client gets the snapshot).
    event_log_retention: float = 3600.0
    startup_timeout: float = 60.0
    max_steps: int = 1200
    retry_initial_delay: float = 1.0
    retry_max_delay: float = 60.0
    retry_max_attempts: int = 25
    # How long a turn's start waits for the workspace agent's instruction files and skills.
    workspace_context_timeout: float = 5.0
    # How long a turn's start waits for the tools of the workspace's MCP servers (.mcp.json).
    workspace_mcp_timeout: float = 5.0
    # Sub-agents: a root chat's children working at once, and the turns asked of its children
    # in all (spawns and messages); past either, the tool answers the model with an error.
    subagent_max_live: int = Field(default=20, ge=1)
    subagent_max_turns: int = Field(default=200, ge=1)
    # MCP servers (engine-behaviour §17): the seconds a server has to connect and list its
    # tools as a turn starts (else the turn goes on without them), and a tool call to answer
    # (else the model reads an error).
    mcp_list_timeout: float = Field(default=10.0, gt=0)
    mcp_call_timeout: float = Field(default=60.0, gt=0)

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

    # Workspaces. Local agents run inside bubblewrap ("bwrap"; without it installed they run
    # unsandboxed, with one warning at start) or directly ("none"). A git template clones only
    # https, ssh and git URLs, plus local paths and file:// URLs under these directories
    # (comma-separated in the environment; empty: none). An agent that has not dialled in this
    # many seconds after it was started (or its workspace created) is reported as timed out.
    sandbox: Literal["bwrap", "none"] = "bwrap"
    workspace_clone_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    workspace_clone_timeout: float = Field(default=600.0, gt=0)
    agent_connect_timeout: float = Field(default=120.0, gt=0)

    # GitHub, for the pull-request status of chats (chatd.gitsync): its web address (github.com
    # or a GitHub Enterprise server) and REST API (empty: api.github.com for github.com, else
    # <github_url>/api/v3). Each request gives up after github_timeout seconds. Where the chat
    # workers run, a refresher looks for statuses due every github_poll_interval seconds and
    # refreshes one again after github_open_pr_interval (an open pull request),
    # github_closed_pr_interval (merged or closed), github_no_pr_interval (none found), or,
    # after failures, from github_backoff_min doubling up to github_backoff_max.
    github_url: str = GITHUB_COM_URL
    github_api_url: str = ""
    github_timeout: float = Field(default=10.0, gt=0)
    github_poll_interval: float = Field(default=30.0, gt=0)
    github_open_pr_interval: float = Field(default=120.0, gt=0)
    github_closed_pr_interval: float = Field(default=1800.0, gt=0)
    github_no_pr_interval: float = Field(default=300.0, gt=0)
    github_backoff_min: float = Field(default=60.0, gt=0)
    github_backoff_max: float = Field(default=1800.0, gt=0)

    # Development/testing aid: register the shipped test tools (echo, wait, fail; see
    # chatd.testing.tools) so fake-provider scripts can run tool-calling turns. Off in production.
    testing_tools: bool = False

    @field_validator("access_url")
    @classmethod
    def _check_access_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            origin_of(value)  # raises on a URL without an http(s) scheme and a host
        return value

    @field_validator("internal_url")
    @classmethod
    def _check_internal_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            origin_of(value)  # raises on a URL without an http(s) scheme and a host
        return value

    @field_validator("github_url", "github_api_url")
    @classmethod
    def _check_github_url(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip().rstrip("/")
        if value or info.field_name == "github_url":
            origin_of(value)  # raises on a URL without an http(s) scheme and a host
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [_bare_origin(str(item)) for item in value if str(item).strip()]
        return value

    @field_validator("workspace_clone_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def access_origin(self) -> str | None:
        """The origin of ``access_url``, or None when it is not set."""
        return origin_of(self.access_url) if self.access_url else None

    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when users reach the server over https."""
        return self.access_url.lower().startswith("https://")

    def github_site(self) -> GitHubSite:
        return GitHubSite(self.github_url)

    def resolved_github_api_url(self) -> str:
        return self.github_api_url or self.github_site().api_url

    def resolved_internal_url(self) -> str:
        """The address this replica registers for the others (see ``internal_url``)."""
        return self.internal_url or f"http://{self.http_address}"

    def resolved_database_url(self) -> str:
        """The database URL: PostgreSQL when configured, else SQLite in the data dir."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite:///{self.data_dir / 'chatd.db'}"
        return to_async_url(url)

    def database_options(self) -> dict[str, Any]:
        """The connection options for :class:`chatd.store.db.Database`."""
        return {
            "pre_ping": self.database_pre_ping,
            "recycle": self.database_idle_timeout,
            "pool_size": self.database_pool_size,
        }

    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")


def to_async_url(url: str) -> str:
    """Accept plain postgresql:// URLs and name the async driver (SQLite URLs stay as given)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased, without a default port.

    This is the form browsers send in the ``Origin`` header. Raises ValueError for anything
    that is not an http or https URL with a host.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    port = parts.port  # raises ValueError for a bad port
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _bare_origin(value: str) -> str:
    """An entry of ``allowed_origins``: an origin, with no path, query or credentials."""
    parts = urlsplit(value.strip())
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an allowed origin is scheme://host[:port], not {value.strip()!r}")
    return origin_of(value)
