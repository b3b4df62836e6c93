"""Alembic environment: always handed a live connection by chatd.store.migrate."""

from alembic import context

from chatd.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("chatd migrations run through chatd.store.migrate with a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
