"""Writes ``sqlite_head.sql`` again: what every migration makes of an empty SQLite database, as
the script new SQLite catalogs are made from (see `monalia.catalog.schema`). Run it after adding
a migration: ``python -m monalia.catalog.schema_dump``."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from monalia.catalog.database import Catalog
from monalia.catalog.schema import SQLITE_HEAD_FILE, migrations_dir, script_header


def dump_sqlite_head() -> str:
    """What every migration makes of an empty SQLite database, as the script that makes it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.sqlite"
        catalog = Catalog.connect(f"sqlite:///{path}")
        try:
            catalog.upgrade()
        finally:
            catalog.close()
        connection = sqlite3.connect(path)
        try:
            statements = [
                line
                for line in connection.iterdump()
                if line not in ("BEGIN TRANSACTION;", "COMMIT;") and not line.startswith("PRAGMA")
            ]
        finally:
            connection.close()
    return script_header() + "\n".join(statements) + "\n"


if __name__ == "__main__":
    target = Path(migrations_dir()) / SQLITE_HEAD_FILE
    target.write_text(dump_sqlite_head(), encoding="utf-8")
    print(f"wrote {target}")
