"""Alembic environment of the SQL sink's tables (in the institution's database, not the catalog).

The sink runs these migrations itself when it opens, on its own connection, with its table
prefix in ``config.attributes["table_prefix"]``; the version is kept in ``PREFIXsink_version``.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
prefix = config.attributes.get("table_prefix", "monalia_")

context.configure(connection=connection, version_table=f"{prefix}sink_version")
with context.begin_transaction():
    context.run_migrations()
