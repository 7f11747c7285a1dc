"""Where the catalog's Alembic migrations are, and the schema revision this monalia writes."""

from __future__ import annotations

from pathlib import Path

from monalia.errors import CatalogError

# The newest catalog migration (alembic/versions). A catalog stamped with it is read and written
# without loading Alembic at all; a test keeps it equal to the migrations' head.
SCHEMA_HEAD = "0012"


def migrations_dir() -> str:
    # Installed, the migrations are monalia/alembic; in a source checkout (and an editable
    # install) they are the repository's alembic/ folder, which is not an import package so
    # that it never shadows the alembic library.
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "alembic", package_dir.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return str(candidate)
    raise CatalogError("monalia's migrations are not installed (reinstall monalia)")
