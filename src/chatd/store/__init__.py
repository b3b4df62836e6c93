"""Storage: SQLAlchemy Core tables, migrations and query functions. The only place SQL lives."""
