"""user_git_tokens: each user's own GitHub token, sealed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import chatd.store.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('user_git_tokens',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('provider', sa.Text(), server_default='github', nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('created_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_git_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_git_tokens'))
    )


def downgrade() -> None:
    op.drop_table('user_git_tokens')
