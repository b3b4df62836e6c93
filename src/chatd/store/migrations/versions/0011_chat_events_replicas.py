"""chat_events (the per-chat event log), chats.stream_seq, replicas

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import chatd.store.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('stream_seq', sa.BigInteger(), server_default='0', nullable=False)
        )
    op.create_table('chat_events',
    sa.Column('chat_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('refresh', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('event', sa.Text(), nullable=False),
    sa.Column('created_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['chat_id'], ['chats.id'], name=op.f('fk_chat_events_chat_id_chats'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('chat_id', 'seq', name=op.f('pk_chat_events'))
    )
    with op.batch_alter_table('chat_events', schema=None) as batch_op:
        batch_op.create_index('ix_chat_events_created_at', ['created_at'], unique=False)
    op.create_table('replicas',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('started_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replicas'))
    )


def downgrade() -> None:
    op.drop_table('replicas')
    with op.batch_alter_table('chat_events', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_events_created_at')
    op.drop_table('chat_events')
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.drop_column('stream_seq')
