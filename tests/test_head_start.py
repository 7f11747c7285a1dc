"""A harvest starts reading before it opens the catalog (`head_start`): it stores what it would
have stored without the head start; a head start from a state that changed meanwhile is ended
and the harvest reads from the state it finds; a refused or failed harvest ends it; no process
outlives the command."""

from __future__ import annotations

import gc
import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from monalia.api.records import Record
from monalia.api.source import RawItem, Source
from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow, RunRow
from monalia.catalog.run_tracking import CatalogBusy, RunTracker
from monalia.stages.harvest import HarvestOptions, harvest
from monalia.stages.harvest.head_start import start_ahead, stored_state
from monalia.stages.harvest.parse_worker import can_fork
from monalia.testing import configure

pytestmark = pytest.mark.skipif(not can_fork(), reason="no fork, or a single CPU: one process")

ITEMS = 300


class LoggedSource(Source):
    """Items 0..ITEMS-1, resumable; each reading writes down the checkpoint it started from."""

    name = "logged-source"
    batch_size = 40

    def items(self, state):
        start = state.checkpoint or 0
        with open(self.context.project_dir / "starts", "a", encoding="utf-8") as log:
            log.write(f"{start}\n")
        # where it reads, the cycle collector runs between chunks only (parsing took 2.6 times
        # as long with it on)
        (self.context.project_dir / "collector").write_text("on" if gc.isenabled() else "off")
        for number in range(start, ITEMS):
            yield RawItem(key=f"item {number}", payload=number, checkpoint=number + 1)

    def parse(self, item):
        return Record(source_id=str(item.payload), title=f"Item {item.payload}")


def starts(folder) -> list[int]:
    path = folder / "starts"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def stored(catalog: Catalog) -> tuple[int, int]:
    """(records, distinct ids) in the catalog."""
    with catalog.session() as session:
        return (
            session.scalar(select(func.count(RecordRow.id))),
            session.scalar(select(func.count(func.distinct(RecordRow.source_id)))),
        )


def test_a_head_start_from_the_stored_state_is_the_harvest_s_reading(tmp_path, catalog_url):
    catalog = Catalog.open(catalog_url)
    configured = configure(LoggedSource, {}, tmp_path, "logged")
    first = harvest(catalog, configured, options=HarvestOptions(limit=100))
    assert first.counts["seen"] >= 100
    checkpoint = stored_state(catalog_url, "logged").checkpoint
    assert checkpoint == first.counts["seen"]

    options = HarvestOptions()
    head = start_ahead(catalog_url, configured, None, options)
    assert head is not None and head.state.checkpoint == checkpoint
    run = harvest(catalog, configured, options=options, head_start=head)

    assert run.status == "done"
    assert run.counts["seen"] == run.counts["new"] == ITEMS - checkpoint
    assert stored(catalog) == (ITEMS, ITEMS)
    assert starts(tmp_path) == [0, checkpoint]  # the head start's reading was the run's
    assert (tmp_path / "collector").read_text() == "off"
    assert not multiprocessing.active_children()


def test_a_head_start_from_a_state_that_changed_is_ended(tmp_path, catalog_url):
    catalog = Catalog.open(catalog_url)
    configured = configure(LoggedSource, {}, tmp_path, "logged")
    harvest(catalog, configured, options=HarvestOptions(limit=50))
    head = start_ahead(catalog_url, configured, None, HarvestOptions())
    assert head is not None
    started = head.state.checkpoint
    # another command harvests the source before this one has opened the catalog
    harvest(catalog, configured, options=HarvestOptions(limit=100, parse_in_worker=False))
    moved = stored_state(catalog_url, "logged").checkpoint
    assert moved > started

    run = harvest(catalog, configured, options=HarvestOptions(), head_start=head)

    assert run.counts["seen"] == run.counts["new"] == ITEMS - moved  # nothing read twice
    assert stored(catalog) == (ITEMS, ITEMS)
    assert starts(tmp_path)[-2:] == [started, moved]  # the head start's, then the run's own
    assert not multiprocessing.active_children()
    assert not head.source_open


def test_a_refused_harvest_ends_its_head_start(tmp_path, sqlite_url):
    catalog = Catalog.open(sqlite_url)
    configured = configure(LoggedSource, {}, tmp_path, "logged")
    head = start_ahead(sqlite_url, configured, None, HarvestOptions())
    assert head is not None and multiprocessing.active_children()
    with (
        RunTracker(catalog, "harvest", "logged-source", "logged", exclusive="target"),
        pytest.raises(CatalogBusy, match="harvest of logged is already running"),
    ):
        harvest(catalog, configured, head_start=head)
    assert not multiprocessing.active_children()
    assert not head.source_open
    assert stored(catalog) == (0, 0)


def test_no_head_start_where_only_opening_the_catalog_can_tell(tmp_path, sqlite_url):
    """An older schema, or a run marked running (its process may be gone: opening the catalog
    checks), gets no head start; a SQLite catalog not made yet starts from nothing."""
    import sqlite3

    configured = configure(LoggedSource, {}, tmp_path, "logged")
    assert stored_state(sqlite_url, "logged").checkpoint is None  # no file yet
    catalog = Catalog.open(sqlite_url)
    harvest(catalog, configured, options=HarvestOptions(limit=50))
    catalog.close()
    path = tmp_path / "catalog.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE runs SET status = 'running'")
    assert start_ahead(sqlite_url, configured, None, HarvestOptions()) is None
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE runs SET status = 'done'")
        connection.execute("UPDATE alembic_version SET version_num = '0004'")
    assert start_ahead(sqlite_url, configured, None, HarvestOptions()) is None
    assert not multiprocessing.active_children()
    # and where a run's hooks or the settings keep the harvest in one process
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (head_revision(),))
    assert start_ahead(sqlite_url, configured, None, HarvestOptions(parse_in_worker=False)) is None
    head = start_ahead(sqlite_url, configured, None, HarvestOptions())
    assert head is not None
    head.end()
    assert not multiprocessing.active_children()


def head_revision() -> str:
    from monalia.catalog.schema import SCHEMA_HEAD

    return SCHEMA_HEAD


def test_a_harvest_command_reads_before_it_loads_the_catalog_libraries(tmp_path):
    """In a fresh process, the reading process is forked before SQLAlchemy is imported, and the
    harvest stores every record once, first into a new catalog and then again into it."""
    lines = [f'{{"id": "{n}", "title": "Record {n}"}}' for n in range(500)]
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///catalog.sqlite"\n\n'
        '[sources.local]\nplugin = "jsonl"\npath = "r.jsonl"\n',
        encoding="utf-8",
    )
    watch = textwrap.dedent(
        """
        import os, sys
        fork = os.fork
        def watched():
            if not getattr(watched, "seen", False):
                watched.seen = True
                print("first fork; sqlalchemy loaded:", "sqlalchemy" in sys.modules,
                      file=sys.stderr)
            return fork()
        os.fork = watched
        from monalia.cli import main
        main()
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    for expected in ({"new": 500, "unchanged": 0}, {"new": 0, "unchanged": 500}):
        done = subprocess.run(
            [sys.executable, "-c", watch, "harvest"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "first fork; sqlalchemy loaded: False" in done.stderr
        catalog = Catalog.open(catalog_url)
        with catalog.session() as session:
            run = session.scalars(select(RunRow).order_by(RunRow.id.desc())).first()
            counts = {"new": run.new, "unchanged": run.unchanged}
        assert (run.status, run.seen, counts) == ("done", 500, expected)
        assert stored(catalog) == (500, 500)
        catalog.close()


def test_a_source_that_cannot_open_fails_in_its_own_run(tmp_path, sqlite_url):
    """The head start does not report the source's error: the harvest meets it in its run."""
    from monalia.plugins.sources.jsonl import JsonLinesSource

    configured = configure(JsonLinesSource, {"path": "missing.jsonl"}, tmp_path, "local")
    assert start_ahead(sqlite_url, configured, None, HarvestOptions()) is None
    assert not multiprocessing.active_children()
