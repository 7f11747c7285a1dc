"""Where the catalog's Alembic migrations are, the schema revision this monalia writes, and the
script that makes a new SQLite catalog at that revision in one step.

Replaying every migration to make a new, empty catalog imports Alembic and runs each script:
about a third of a second, which every first command of a new project paid. A new SQLite catalog
is made instead from ``sqlite_head.sql`` beside the migrations: what the migrations make,
dumped (as Rails loads ``schema.rb`` instead of replaying its migrations). A test keeps it equal
to the migrations' result; ``python -m monalia.catalog.schema_dump`` writes it again after a new
migration. PostgreSQL catalogs, and any catalog that is not new, go through Alembic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from monalia.errors import CatalogError

# The newest catalog migration (alembic/versions). A catalog stamped with it is read and written
# without loading Alembic at all; a test keeps it equal to the migrations' head.
SCHEMA_HEAD = "0013"


def migrations_dir() -> str:
    # Installed, the migrations are monalia/alembic; in a source checkout (and an editable
    # install) they are the repository's alembic/ folder, which is not an import package so
    # that it never shadows the alembic library.
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "alembic", package_dir.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return str(candidate)
    raise CatalogError("monalia's migrations are not installed (reinstall monalia)")


SQLITE_HEAD_FILE = "sqlite_head.sql"


def script_header() -> str:
    return f"-- a new monalia catalog at schema revision {SCHEMA_HEAD}; made by the migrations\n"


def sqlite_head_script() -> str | None:
    """The script that makes an empty SQLite catalog at `SCHEMA_HEAD`; None when it is not
    shipped or was made at another revision (the migrations then make the catalog)."""
    try:
        script = (Path(migrations_dir()) / SQLITE_HEAD_FILE).read_text(encoding="utf-8")
    except (OSError, CatalogError):
        return None
    return script if script.startswith(script_header()) else None


def script_statements(script: str) -> Iterator[str]:
    """The script's SQL statements, one at a time (comment lines left out)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        if not statement and line.startswith("--"):
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
