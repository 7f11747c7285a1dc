"""Alembic environment of the monalia catalog.

monalia runs migrations from code (`monalia db upgrade`) and hands over its open connection in
``config.attributes["connection"]``; the ``alembic`` command line works too, with
``MONALIA_CATALOG`` set to the catalog's URL.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine

from alembic import context
from monalia.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = os.environ.get("MONALIA_CATALOG") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set MONALIA_CATALOG to the catalog's SQLAlchemy URL")
    engine = create_engine(url)
    with engine.connect() as connection:
        run_migrations(connection)


if context.is_offline_mode():
    context.configure(
        url=os.environ.get("MONALIA_CATALOG") or config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
