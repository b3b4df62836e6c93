"""mcp_server_user_tokens, mcp_server_oauth2_states: users' own OAuth2 tokens for MCP servers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-11
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import chatd.store.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mcp_server_user_tokens',
    sa.Column('mcp_server_config_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), server_default='', nullable=False),
    sa.Column('token_type', sa.Text(), server_default='', nullable=False),
    sa.Column('expiry', chatd.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mcp_server_config_id'], ['mcp_server_configs.id'], name=op.f('fk_mcp_server_user_tokens_mcp_server_config_id_mcp_server_configs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mcp_server_user_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('mcp_server_config_id', 'user_id', name=op.f('pk_mcp_server_user_tokens'))
    )
    op.create_table('mcp_server_oauth2_states',
    sa.Column('state_hash', sa.Text(), nullable=False),
    sa.Column('mcp_server_config_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_verifier', sa.Text(), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('expires_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mcp_server_config_id'], ['mcp_server_configs.id'], name=op.f('fk_mcp_server_oauth2_states_mcp_server_config_id_mcp_server_configs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mcp_server_oauth2_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_mcp_server_oauth2_states'))
    )


def downgrade() -> None:
    op.drop_table('mcp_server_oauth2_states')
    op.drop_table('mcp_server_user_tokens')
