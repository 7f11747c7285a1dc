"""Fixtures shared by the tests: catalogs on SQLite and PostgreSQL, project folders, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
REAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"  # see fixtures/PROVENANCE.md
POSTGRES_URL = os.environ.get(
    "MONALIA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text
    except ImportError as exc:
        return f"no PostgreSQL driver: {exc}"
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {str(exc).splitlines()[0]}"
    return None


_PG_REASON: list[str | None] = []


def postgres_reason() -> str | None:
    if not _PG_REASON:
        _PG_REASON.append(_postgres_unreachable())
    return _PG_REASON[0]


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose tables live in a fresh schema, dropped afterwards."""
    reason = postgres_reason()
    if reason:
        pytest.skip(reason)
    from sqlalchemy import create_engine, text

    schema = f"monalia_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request, tmp_path):
    """A catalog URL for a new, empty catalog: on SQLite, and on PostgreSQL where reachable."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_url(tmp_path):
    """A new SQLite catalog, for tests whose subject does not depend on the database."""
    return f"sqlite:///{tmp_path / 'catalog.sqlite'}"


@pytest.fixture
def real_fixtures() -> Path:
    """The folder of real public data the tests read (tests/fixtures, with its provenance)."""
    return REAL_FIXTURES


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    """Write records (dicts, or raw lines for malformed input) as JSON Lines."""
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(record if isinstance(record, str) else json.dumps(record, ensure_ascii=False))
            out.write("\n")
    return path


def sample_records(count: int, start: int = 0) -> list[dict]:
    return [
        {
            "id": f"obj-{i:06d}",
            "title": f"Objet {i}",
            "creators": [f"Artiste {i % 7}"],
            "date": f"vers {1500 + i % 400}",
            "institution": "Musée d'essai",
            "images": [f"https://images.example.org/{i}.jpg"],
            "subjects": ["cheval", "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-2037"]
            if i % 2
            else ["arbre"],
        }
        for i in range(start, start + count)
    ]


@pytest.fixture
def project(tmp_path, catalog_url):
    """A project folder with a JSON Lines source and a Turtle sink; returns its folder."""
    write_jsonl(tmp_path / "records.jsonl", sample_records(20))
    (tmp_path / "monalia.toml").write_text(
        f"""
[project]
name = "test"
catalog = "{catalog_url}"
base_iri = "https://data.example.org/t/"

[sources.local]
plugin = "jsonl"
path = "records.jsonl"

[sinks.files]
plugin = "turtle"
path = "out/{{graph}}.ttl"
""",
        encoding="utf-8",
    )
    return tmp_path


@pytest.fixture
def cli(monkeypatch):
    """Run the CLI in-process: cli("harvest", project=folder) -> click Result."""
    from monalia.cli import cli as command

    monkeypatch.delenv("MONALIA_CATALOG", raising=False)
    monkeypatch.delenv("MONALIA_PROJECT", raising=False)

    def run(*args: str, project: Path | None = None):
        prefix = ["--project", str(project), "-q"] if project else ["-q"]
        return CliRunner().invoke(command, [*prefix, *args], catch_exceptions=False)

    return run


def run_monalia(
    *args: str, cwd: Path, site: Path | None = None, cache: Path | None = None
) -> subprocess.CompletedProcess:
    """Run the monalia CLI in a fresh process, with no MONALIA_* variables from the caller;
    `site` is put on PYTHONPATH (a folder packages were installed into); `cache`: the folder
    of the plugin manifest."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    if cache is not None:
        env["MONALIA_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "monalia", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="session")
def oxigraph_server():
    """One Oxigraph SPARQL server for the session; tests clear it before loading their data."""
    from support.servers import OxigraphServer, oxigraph_binary

    binary = oxigraph_binary()
    if binary is None:
        pytest.skip("the oxigraph server is not installed (pip install oxigraph)")
    server = OxigraphServer(binary)
    yield server
    server.stop()


@pytest.fixture
def loopback_only():
    """Only this machine is reachable in the test: a connection elsewhere fails it. Yields
    the list of names looked up."""
    from support.network_guard import loopback_only as guard

    lookups: list[str] = []
    with guard(lookups):
        yield lookups


@pytest.fixture
def oxigraph(oxigraph_server):
    oxigraph_server.clear()
    return oxigraph_server


def records_of(catalog) -> dict:
    """The catalog's records by source id, with their subjects and images loaded."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from monalia.catalog.models import RecordRow

    with catalog.session() as session:
        rows = session.scalars(
            select(RecordRow).options(
                selectinload(RecordRow.subjects), selectinload(RecordRow.images)
            )
        ).all()
        session.expunge_all()
    return {row.source_id: row for row in rows}
