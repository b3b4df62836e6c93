"""ix_chats_queued: the chats with queued messages, for stale recovery

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.create_index(
            'ix_chats_queued',
            ['status', 'updated_at'],
            unique=False,
            sqlite_where=sa.text('queue_length > 0'),
            postgresql_where=sa.text('queue_length > 0'),
        )


def downgrade() -> None:
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_chats_queued',
            sqlite_where=sa.text('queue_length > 0'),
            postgresql_where=sa.text('queue_length > 0'),
        )
