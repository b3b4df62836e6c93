"""audit log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import chatd.store.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_logs',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('time', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('ip', sa.Text(), server_default='', nullable=False),
    sa.Column('user_agent', sa.Text(), server_default='', nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('resource_type', sa.Text(), nullable=False),
    sa.Column('resource_id', sa.Uuid(), nullable=True),
    sa.Column('resource_target', sa.Text(), server_default='', nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('additional_fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_logs')),
    sa.UniqueConstraint('id', name=op.f('uq_audit_logs_id')),
    sqlite_autoincrement=True
    )


def downgrade() -> None:
    op.drop_table('audit_logs')
