"""mcp_server_configs: the MCP servers chats may use, their secrets sealed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import chatd.store.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('mcp_server_configs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('slug', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('icon_url', sa.Text(), server_default='', nullable=False),
    sa.Column('transport', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('auth_type', sa.Text(), nullable=False),
    sa.Column('oauth2_client_id', sa.Text(), server_default='', nullable=False),
    sa.Column('oauth2_client_secret', sa.Text(), server_default='', nullable=False),
    sa.Column('oauth2_auth_url', sa.Text(), server_default='', nullable=False),
    sa.Column('oauth2_token_url', sa.Text(), server_default='', nullable=False),
    sa.Column('oauth2_revocation_url', sa.Text(), server_default='', nullable=False),
    sa.Column('oauth2_scopes', sa.Text(), server_default='', nullable=False),
    sa.Column('api_key_header', sa.Text(), server_default='', nullable=False),
    sa.Column('api_key_value', sa.Text(), server_default='', nullable=False),
    sa.Column('custom_headers', sa.Text(), server_default='', nullable=False),
    sa.Column('tool_allow_list', JSON, nullable=False),
    sa.Column('tool_deny_list', JSON, nullable=False),
    sa.Column('availability', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('model_intent', sa.Boolean(), nullable=False),
    sa.Column('allow_in_plan_mode', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_mcp_server_configs_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mcp_server_configs')),
    sa.UniqueConstraint('slug', name=op.f('uq_mcp_server_configs_slug'))
    )


def downgrade() -> None:
    op.drop_table('mcp_server_configs')
