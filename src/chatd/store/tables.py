"""Every table chatd stores, as SQLAlchemy Core. Migrations are generated from this file."""

from __future__ import annotations

import sqlalchemy as sa

from chatd.store.types import BigIntPK, JSONType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("hashed_password", sa.Text, nullable=False, server_default=""),
    sa.Column("is_owner", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=True),
)

organization_members = sa.Table(
    "organization_members",
    metadata,
    sa.Column(
        "organization_id",
        sa.Uuid,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # Organization roles, e.g. ["organization-admin"].
    sa.Column("roles", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("hashed_secret", sa.LargeBinary, nullable=False),
    sa.Column("login_type", sa.Text, nullable=False),  # "password" (session) or "token"
    sa.Column("token_name", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("last_used", UTCDateTime, nullable=False),
    sa.Index("ix_api_keys_user_id", "user_id"),
)

# Workspace templates: how a workspace is made and where its agent runs (kind "local": the
# server starts it on its host, "command": the server runs the admin's command, which starts
# it, "external": the user runs it). Built-in ones exist in every organization.
templates = sa.Table(
    "templates",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "organization_id",
        sa.Uuid,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("builtin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("setup", sa.Text, nullable=True),  # local kinds: "scratch" or "git"
    sa.Column("command", sa.Text, nullable=True),  # command kind: run with sh -c
    # [{name, description, required, default}]
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("organization_id", "name"),
)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("owner_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "organization_id",
        sa.Uuid,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column(
        "template_id", sa.Uuid, sa.ForeignKey("templates.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("template_name", sa.Text, nullable=False, server_default=""),
    sa.Column("kind", sa.Text, nullable=False, server_default="external"),
    sa.Column("parameters", JSONType, nullable=False),  # {name: value}
    # The server's directory of a local workspace (NULL for the other kinds).
    sa.Column("directory", sa.Text, nullable=True),
    # The workspace's one agent: fixed id; the hash of its current token (a local agent gets a
    # fresh one at each start); its status and what it said of itself when it connected.
    sa.Column("agent_id", sa.Uuid, nullable=False),
    sa.Column("agent_token_hash", sa.LargeBinary, nullable=True),
    sa.Column("agent_status", sa.Text, nullable=False, server_default="disconnected"),
    sa.Column("agent_directory", sa.Text, nullable=False, server_default=""),
    sa.Column("agent_os", sa.Text, nullable=False, server_default=""),
    sa.Column("agent_version", sa.Text, nullable=False, server_default=""),
    sa.Column("build_id", sa.Uuid, nullable=True),  # new at each agent connection
    sa.Column("agent_started_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("owner_id", "name"),
    sa.Index("ix_workspaces_agent_token_hash", "agent_token_hash", unique=True),
)

chat_providers = sa.Table(
    "chat_providers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("provider", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    # Sealed with the deployment's secret key (chatd.store.secret_columns; "" for no key);
    # never returned by the API.
    sa.Column("api_key", sa.Text, nullable=False, server_default=""),
    sa.Column("base_url", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("central_api_key_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("allow_user_api_key", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "allow_central_api_key_fallback", sa.Boolean, nullable=False, server_default=sa.false()
    ),
    sa.Column("created_by", sa.Uuid, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(
        "(central_api_key_enabled OR allow_user_api_key) AND "
        "(NOT allow_central_api_key_fallback OR "
        "(central_api_key_enabled AND allow_user_api_key))",
        name="credential_policy",
    ),
)

user_chat_provider_keys = sa.Table(
    "user_chat_provider_keys",
    metadata,
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "chat_provider_id",
        sa.Uuid,
        sa.ForeignKey("chat_providers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Sealed like chat_providers.api_key.
    sa.Column("api_key", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A user's own token for the git provider (GitHub), which reads the pull-request status of
# their chats. Sealed like chat_providers.api_key.
user_git_tokens = sa.Table(
    "user_git_tokens",
    metadata,
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("provider", sa.Text, nullable=False, server_default="github"),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# MCP servers the site owners configure; chats name the ones they use in ``mcp_server_ids``
# (no foreign key: the ids are checked when a request sets them). ``oauth2_client_secret``,
# ``api_key_value`` and ``custom_headers`` (a JSON object, as text) are sealed like
# chat_providers.api_key; ``""`` means none.
mcp_server_configs = sa.Table(
    "mcp_server_configs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("slug", sa.Text, nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("icon_url", sa.Text, nullable=False, server_default=""),
    sa.Column("transport", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("auth_type", sa.Text, nullable=False),
    sa.Column("oauth2_client_id", sa.Text, nullable=False, server_default=""),
    sa.Column("oauth2_client_secret", sa.Text, nullable=False, server_default=""),
    sa.Column("oauth2_auth_url", sa.Text, nullable=False, server_default=""),
    sa.Column("oauth2_token_url", sa.Text, nullable=False, server_default=""),
    sa.Column("oauth2_revocation_url", sa.Text, nullable=False, server_default=""),
    sa.Column("oauth2_scopes", sa.Text, nullable=False, server_default=""),
    sa.Column("api_key_header", sa.Text, nullable=False, server_default=""),
    sa.Column("api_key_value", sa.Text, nullable=False, server_default=""),
    sa.Column("custom_headers", sa.Text, nullable=False, server_default=""),
    sa.Column("tool_allow_list", JSONType, nullable=False),
    sa.Column("tool_deny_list", JSONType, nullable=False),
    sa.Column("availability", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("model_intent", sa.Boolean, nullable=False),
    sa.Column("allow_in_plan_mode", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Each user's own OAuth2 token for an ``oauth2`` MCP server, from the connect flow.
# ``access_token`` and ``refresh_token`` are sealed (``""``: none); ``expiry`` NULL: none given.
mcp_server_user_tokens = sa.Table(
    "mcp_server_user_tokens",
    metadata,
    sa.Column(
        "mcp_server_config_id",
        sa.Uuid,
        sa.ForeignKey("mcp_server_configs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("access_token", sa.Text, nullable=False),
    sa.Column("refresh_token", sa.Text, nullable=False, server_default=""),
    sa.Column("token_type", sa.Text, nullable=False, server_default=""),
    sa.Column("expiry", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A connect flow under way: the SHA-256 of the ``state`` sent to the authorization server,
# whose user and server it binds, the PKCE verifier and redirect URI the code exchange needs,
# and when it lapses. The callback deletes it: a state works once.
mcp_server_oauth2_states = sa.Table(
    "mcp_server_oauth2_states",
    metadata,
    sa.Column("state_hash", sa.Text, primary_key=True),
    sa.Column(
        "mcp_server_config_id",
        sa.Uuid,
        sa.ForeignKey("mcp_server_configs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("code_verifier", sa.Text, nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

chat_model_configs = sa.Table(
    "chat_model_configs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("created_by", sa.Uuid, nullable=True),
    sa.Column("updated_by", sa.Uuid, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("context_limit", sa.BigInteger, nullable=False),
    sa.Column("compression_threshold", sa.Integer, nullable=False, server_default="70"),
    sa.Column("options", JSONType, nullable=False),
    sa.CheckConstraint("context_limit > 0", name="context_limit_positive"),
    sa.CheckConstraint(
        "compression_threshold >= 0 AND compression_threshold <= 100",
        name="compression_threshold_range",
    ),
    sa.Index(
        "ix_chat_model_configs_one_default",
        "is_default",
        unique=True,
        sqlite_where=sa.text("is_default AND NOT deleted"),
        postgresql_where=sa.text("is_default AND NOT deleted"),
    ),
    sa.Index(
        "ix_chat_model_configs_provider_model",
        "provider",
        "model",
        unique=True,
        sqlite_where=sa.text("NOT deleted"),
        postgresql_where=sa.text("NOT deleted"),
    ),
)

chats = sa.Table(
    "chats",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("owner_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "organization_id",
        sa.Uuid,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "workspace_id", sa.Uuid, sa.ForeignKey("workspaces.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("build_id", sa.Uuid, nullable=True),
    sa.Column("agent_id", sa.Uuid, nullable=True),
    sa.Column(
        "parent_chat_id", sa.Uuid, sa.ForeignKey("chats.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column(
        "root_chat_id", sa.Uuid, sa.ForeignKey("chats.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("title", sa.Text, nullable=False, server_default="New Chat"),
    sa.Column("status", sa.Text, nullable=False, server_default="waiting"),
    sa.Column("worker_id", sa.Uuid, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("heartbeat_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column(
        "last_model_config_id",
        sa.Uuid,
        sa.ForeignKey("chat_model_configs.id"),
        nullable=False,
    ),
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_error", JSONType, nullable=True),
    sa.Column("mode", sa.Text, nullable=True),
    sa.Column("mcp_server_ids", JSONType, nullable=False),
    sa.Column("labels", JSONType, nullable=False),
    sa.Column("pin_order", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_read_message_id", sa.BigInteger, nullable=True),
    sa.Column("last_injected_context", JSONType, nullable=True),
    sa.Column("dynamic_tools", JSONType, nullable=True),
    sa.Column("plan_mode", sa.Text, nullable=True),
    sa.Column("client_type", sa.Text, nullable=False, server_default="api"),
    sa.Column("last_turn_summary", sa.Text, nullable=True),
    # How many chat_queued_messages rows the chat has, kept by chatd.store.messages under the
    # row lock: guards that read it from this row need no second statement (the finishing
    # UPDATE sees a queue change by waiting for the lock, which a subquery would not).
    sa.Column("queue_length", sa.Integer, nullable=False, server_default="0"),
    # Set while the turn is parked waiting for its sub-agents (status running, no worker): when
    # the wait gives up. A child's finish, or this time passing, makes the chat pending again.
    sa.Column("awaiting_until", UTCDateTime, nullable=True),
    # The sequence number of the chat's newest logged event (chat_events), raised under the
    # row lock by the transaction that logs it (chatd.store.stream_log).
    sa.Column("stream_seq", sa.BigInteger, nullable=False, server_default="0"),
    # The number of the ``running`` status the chat's latest claim logged (0: never claimed):
    # kept when the turn ends, so that a turn interrupted to ``waiting`` can tell whether the
    # chat has been claimed again since (chatd.store.steps).
    sa.Column("turn_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("pin_order = 0 OR parent_chat_id IS NULL", name="pin_order_root_only"),
    sa.CheckConstraint("pin_order = 0 OR NOT archived", name="pin_order_not_archived"),
    sa.CheckConstraint("pin_order >= 0", name="pin_order_non_negative"),
    # The default list page: an owner's root chats, pinned first, then newest first.
    sa.Index(
        "ix_chats_owner_list",
        "owner_id",
        "archived",
        "pin_order",
        "updated_at",
        "id",
        sqlite_where=sa.text("parent_chat_id IS NULL"),
        postgresql_where=sa.text("parent_chat_id IS NULL"),
    ),
    # Partial: most chats are roots, and an index holding every NULL leads planners with
    # statistics (SQLite after ANALYZE) to read "parent_chat_id IS NULL" through it.
    sa.Index(
        "ix_chats_parent_chat_id",
        "parent_chat_id",
        sqlite_where=sa.text("parent_chat_id IS NOT NULL"),
        postgresql_where=sa.text("parent_chat_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_chats_root_chat_id",
        "root_chat_id",
        sqlite_where=sa.text("root_chat_id IS NOT NULL"),
        postgresql_where=sa.text("root_chat_id IS NOT NULL"),
    ),
    sa.Index("ix_chats_pending", "status", "updated_at"),
    # Stale recovery's queues left behind (chatd.store.recovery): the few chats with a queue,
    # not every waiting chat.
    sa.Index(
        "ix_chats_queued",
        "status",
        "updated_at",
        sqlite_where=sa.text("queue_length > 0"),
        postgresql_where=sa.text("queue_length > 0"),
    ),
    # The parked turns, for stale recovery's look at which of them are due.
    sa.Index(
        "ix_chats_awaiting",
        "awaiting_until",
        sqlite_where=sa.text("awaiting_until IS NOT NULL"),
        postgresql_where=sa.text("awaiting_until IS NOT NULL"),
    ),
)

# Every stream and watch event a committed transaction published, numbered per chat without
# gaps (chatd.store.stream_log): replicas read the events other replicas published, and a
# stream resumes after a sequence number from here. Trimmed by age.
chat_events = sa.Table(
    "chat_events",
    metadata,
    sa.Column("chat_id", sa.Uuid, sa.ForeignKey("chats.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("owner_id", sa.Uuid, nullable=False),
    # 'stream' (a ChatStreamEvent) or 'watch' (a ChatWatchEvent).
    sa.Column("kind", sa.Text, nullable=False),
    # The chat's status once the transaction committed.
    sa.Column("status", sa.Text, nullable=False),
    # A ``message`` event that re-sends history after an edit.
    sa.Column("refresh", sa.Boolean, nullable=False, server_default=sa.false()),
    # The event's wire JSON.
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("chat_id", "seq"),
    sa.Index("ix_chat_events_created_at", "created_at"),
)

# The server processes sharing this database, so that one can reach another (the replica
# running a chat's turn): its id is its worker's id.
replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    # Where the other replicas reach its internal endpoints (http://host:port).
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
)

chat_messages = sa.Table(
    "chat_messages",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("chat_id", sa.Uuid, sa.ForeignKey("chats.id", ondelete="CASCADE"), nullable=False),
    sa.Column("model_config_id", sa.Uuid, sa.ForeignKey("chat_model_configs.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("content", JSONType, nullable=False),
    sa.Column("content_version", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("visibility", sa.Text, nullable=False, server_default="both"),
    sa.Column("input_tokens", sa.BigInteger, nullable=True),
    sa.Column("output_tokens", sa.BigInteger, nullable=True),
    sa.Column("total_tokens", sa.BigInteger, nullable=True),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=True),
    sa.Column("cache_creation_tokens", sa.BigInteger, nullable=True),
    sa.Column("cache_read_tokens", sa.BigInteger, nullable=True),
    sa.Column("context_limit", sa.BigInteger, nullable=True),
    sa.Column("total_cost_micros", sa.BigInteger, nullable=True),
    sa.Column("runtime_ms", sa.BigInteger, nullable=True),
    sa.Column("compressed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_by", sa.Uuid, nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("provider_response_id", sa.Text, nullable=True),
    sa.Index("ix_chat_messages_chat_id_id", "chat_id", "id"),
    # has_unread: the newest undeleted assistant message of a chat.
    sa.Index(
        "ix_chat_messages_assistant",
        "chat_id",
        "id",
        sqlite_where=sa.text("role = 'assistant' AND NOT deleted"),
        postgresql_where=sa.text("role = 'assistant' AND NOT deleted"),
    ),
    sqlite_autoincrement=True,
)

chat_queued_messages = sa.Table(
    "chat_queued_messages",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("chat_id", sa.Uuid, sa.ForeignKey("chats.id", ondelete="CASCADE"), nullable=False),
    sa.Column("content", JSONType, nullable=False),
    sa.Column("model_config_id", sa.Uuid, sa.ForeignKey("chat_model_configs.id"), nullable=True),
    sa.Column("created_by", sa.Uuid, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_chat_queued_messages_chat", "chat_id", "created_at", "id"),
    sqlite_autoincrement=True,
)

chat_files = sa.Table(
    "chat_files",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("owner_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "organization_id",
        sa.Uuid,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("mimetype", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

chat_file_links = sa.Table(
    "chat_file_links",
    metadata,
    sa.Column("chat_id", sa.Uuid, sa.ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "file_id", sa.Uuid, sa.ForeignKey("chat_files.id", ondelete="CASCADE"), primary_key=True
    ),
)

chat_diff_statuses = sa.Table(
    "chat_diff_statuses",
    metadata,
    sa.Column("chat_id", sa.Uuid, sa.ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("pull_request_state", sa.Text, nullable=True),
    sa.Column("pull_request_title", sa.Text, nullable=False, server_default=""),
    sa.Column("pull_request_draft", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("changes_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("additions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deletions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("changed_files", sa.Integer, nullable=False, server_default="0"),
    sa.Column("author_login", sa.Text, nullable=True),
    sa.Column("author_avatar_url", sa.Text, nullable=True),
    sa.Column("base_branch", sa.Text, nullable=True),
    sa.Column("head_branch", sa.Text, nullable=True),
    sa.Column("pr_number", sa.Integer, nullable=True),
    sa.Column("commits", sa.Integer, nullable=True),
    sa.Column("approved", sa.Boolean, nullable=True),
    sa.Column("reviewer_count", sa.Integer, nullable=True),
    sa.Column("git_branch", sa.Text, nullable=False, server_default=""),
    sa.Column("git_remote_origin", sa.Text, nullable=False, server_default=""),
    sa.Column("refreshed_at", UTCDateTime, nullable=True),
    sa.Column("stale_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

site_configs = sa.Table(
    "site_configs",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Spend limits (engine-behaviour §14, api-behaviour §9.5): one deployment row, per-user overrides.
chat_usage_limit_config = sa.Table(
    "chat_usage_limit_config",
    metadata,
    sa.Column("singleton", sa.Boolean, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("default_limit_micros", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("period", sa.Text, nullable=False, server_default="month"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("singleton", name="singleton_true"),
    sa.CheckConstraint("default_limit_micros >= 0", name="default_limit_non_negative"),
)

chat_usage_limit_overrides = sa.Table(
    "chat_usage_limit_overrides",
    metadata,
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("spend_limit_micros", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("spend_limit_micros > 0", name="spend_limit_positive"),
)

# The audit log (api/audit.py): who did what to which resource, from where, and how it went.
# Rows outlive their users and resources, so they hold ids without foreign keys.
audit_logs = sa.Table(
    "audit_logs",
    metadata,
    # The order rows were written in (pages walk it); ``id`` is the public identifier.
    sa.Column("seq", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("id", sa.Uuid, nullable=False, unique=True),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=True),  # the actor; NULL for an unknown login name
    sa.Column("ip", sa.Text, nullable=False, server_default=""),
    sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("resource_type", sa.Text, nullable=False),
    sa.Column("resource_id", sa.Uuid, nullable=True),
    sa.Column("resource_target", sa.Text, nullable=False, server_default=""),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("additional_fields", JSONType, nullable=False),
    sqlite_autoincrement=True,
)
