"""chats.queue_length

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('queue_length', sa.Integer(), server_default='0', nullable=False)
        )
    op.execute(
        'UPDATE chats SET queue_length = (SELECT count(*) FROM chat_queued_messages'
        ' WHERE chat_queued_messages.chat_id = chats.id)'
    )


def downgrade() -> None:
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.drop_column('queue_length')
