"""Where monalia's Alembic migrations are: the catalog's, and the SQL sink's in ``sink/``."""

from __future__ import annotations

from pathlib import Path

from monalia.errors import CatalogError

# The newest catalog migration (alembic/versions). A catalog stamped with it is read and written
# without loading Alembic at all; a test keeps it equal to the migrations' head.
SCHEMA_HEAD = "0008"


def migrations_dir() -> str:
    # Installed, the migrations are monalia/migrations; in a source checkout (and an editable
    # install) they are the repository's alembic/ folder, which is not an import package so
    # that it never shadows the alembic library.
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "migrations", package_dir.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return str(candidate)
    raise CatalogError("monalia's migrations are not installed (reinstall monalia)")
