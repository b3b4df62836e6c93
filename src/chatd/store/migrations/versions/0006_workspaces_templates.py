"""workspace templates; workspaces gain their template, kind, directory and agent

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import chatd.store.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('templates',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), server_default='', nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('builtin', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('setup', sa.Text(), nullable=True),
    sa.Column('command', sa.Text(), nullable=True),
    sa.Column('parameters', JSON, nullable=False),
    sa.Column('created_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', chatd.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_templates_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('organization_id', 'name', name=op.f('uq_templates_organization_id'))
    )
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', chatd.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('template_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('template_name', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('kind', sa.Text(), server_default='external', nullable=False))
        batch_op.add_column(sa.Column('parameters', JSON, nullable=True))
        batch_op.add_column(sa.Column('directory', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('agent_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('agent_token_hash', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('agent_status', sa.Text(), server_default='disconnected', nullable=False))
        batch_op.add_column(sa.Column('agent_directory', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('agent_os', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('agent_version', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('build_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('agent_started_at', chatd.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_workspaces_template_id_templates'), 'templates', ['template_id'], ['id'], ondelete='SET NULL')
        batch_op.create_unique_constraint(batch_op.f('uq_workspaces_owner_id'), ['owner_id', 'name'])
        batch_op.create_index('ix_workspaces_agent_token_hash', ['agent_token_hash'], unique=True)

    # Rows from before templates: external workspaces without an agent yet, each given its
    # agent's id.
    workspaces = sa.table(
        'workspaces',
        sa.column('id', sa.Uuid()),
        sa.column('created_at', chatd.store.types.UTCDateTime(timezone=True)),
        sa.column('updated_at', chatd.store.types.UTCDateTime(timezone=True)),
        sa.column('parameters', JSON),
        sa.column('agent_id', sa.Uuid()),
    )
    conn = op.get_bind()
    conn.execute(workspaces.update().values(updated_at=workspaces.c.created_at, parameters={}))
    for (workspace_id,) in conn.execute(sa.select(workspaces.c.id)).all():
        conn.execute(
            workspaces.update()
            .where(workspaces.c.id == workspace_id)
            .values(agent_id=uuid.uuid4())
        )

    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=chatd.store.types.UTCDateTime(timezone=True), nullable=False)
        batch_op.alter_column('parameters', existing_type=JSON, nullable=False)
        batch_op.alter_column('agent_id', existing_type=sa.Uuid(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_index('ix_workspaces_agent_token_hash')
        batch_op.drop_constraint(batch_op.f('uq_workspaces_owner_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_workspaces_template_id_templates'), type_='foreignkey')
        for column in (
            'agent_started_at', 'build_id', 'agent_version', 'agent_os', 'agent_directory',
            'agent_status', 'agent_token_hash', 'agent_id', 'directory', 'parameters', 'kind',
            'template_name', 'template_id', 'updated_at',
        ):
            batch_op.drop_column(column)
    op.drop_table('templates')
