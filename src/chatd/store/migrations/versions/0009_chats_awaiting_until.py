"""chats.awaiting_until: a turn parked while it waits for its sub-agents

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import chatd.store.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('awaiting_until', chatd.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            'ix_chats_awaiting',
            ['awaiting_until'],
            unique=False,
            sqlite_where=sa.text('awaiting_until IS NOT NULL'),
            postgresql_where=sa.text('awaiting_until IS NOT NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_chats_awaiting',
            sqlite_where=sa.text('awaiting_until IS NOT NULL'),
            postgresql_where=sa.text('awaiting_until IS NOT NULL'),
        )
        batch_op.drop_column('awaiting_until')
