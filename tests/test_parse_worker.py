"""A harvest reads and parses in a second process while it writes: the catalog, the counts and the
failures are exactly those of a harvest in one process; an error or a lost worker ends the run
as before, and the next run resumes without a gap or a duplicate."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
from conftest import sample_records, write_jsonl
from sqlalchemy import func, select

from monalia.api.records import Record
from monalia.api.source import RawItem, Source
from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, RecordRow, RunEventRow, SubjectRow
from monalia.errors import SourceUnavailable
from monalia.stages.harvest import HarvestOptions, harvest
from monalia.stages.harvest.parse_worker import WorkerLost, can_fork
from monalia.testing import configure

pytestmark = pytest.mark.skipif(not can_fork(), reason="no fork, or a single CPU: one process")


def catalog_content(catalog: Catalog):
    with catalog.session() as session:
        records = session.execute(
            select(
                RecordRow.source_id,
                RecordRow.iri,
                RecordRow.title,
                RecordRow.creators,
                RecordRow.date_start,
                RecordRow.raw,
                RecordRow.content_hash,
            ).order_by(RecordRow.source_id)
        ).all()
        subjects = session.execute(
            select(RecordRow.source_id, SubjectRow.position, SubjectRow.uri, SubjectRow.label)
            .join(SubjectRow, SubjectRow.record_id == RecordRow.id)
            .order_by(RecordRow.source_id, SubjectRow.position)
        ).all()
        images = session.execute(
            select(RecordRow.source_id, ImageRow.position, ImageRow.url, ImageRow.is_main)
            .join(ImageRow, ImageRow.record_id == RecordRow.id)
            .order_by(RecordRow.source_id, ImageRow.position)
        ).all()
        events = session.execute(
            select(RunEventRow.item, RunEventRow.level, RunEventRow.message).order_by(
                RunEventRow.id
            )
        ).all()
    return records, subjects, images, events


def mixed_input(path) -> None:
    """Good records, malformed lines, a duplicate id, a record with a refused image."""
    records = sample_records(1200)
    records[7]["images"] = ["file:///etc/passwd", "https://images.example.org/7.jpg"]
    lines = [*records[:500], "{not json", records[3], *records[500:], '{"title": "no id"}']
    write_jsonl(path, lines)


@pytest.mark.parametrize("commit_records", [None, 100])
def test_the_worker_stores_exactly_what_one_process_stores(tmp_path, commit_records):
    mixed_input(tmp_path / "r.jsonl")
    from monalia.plugins.sources.jsonl import JsonLinesSource

    configured = configure(JsonLinesSource, {"path": "r.jsonl"}, tmp_path, "local")
    results = {}
    for parse_in_worker in (True, False):
        catalog = Catalog.open(f"sqlite:///{tmp_path / f'{parse_in_worker}.sqlite'}")
        options = HarvestOptions(commit_records=commit_records, parse_in_worker=parse_in_worker)
        first = harvest(catalog, configured, options=options)
        again = harvest(catalog, configured, options=options)
        results[parse_in_worker] = (first.counts, again.counts, catalog_content(catalog))
    assert results[True] == results[False]
    counts = results[True][0]
    assert (counts["seen"], counts["new"], counts["failed"]) == (1203, 1200, 3)
    assert results[True][1]["unchanged"] == 1200
    assert not multiprocessing.active_children()  # the worker ended with its run


class PidSource(Source):
    """Writes down the process that parses it; fails or dies at a given item when told."""

    name = "pid-source"
    batch_size = 50

    def items(self, state):
        start = state.checkpoint or 0
        folder = self.context.project_dir
        for number in range(start, 400):
            plan = folder / "plan"
            if plan.exists() and plan.read_text() == f"fail {number}":
                raise SourceUnavailable(f"the service went away at item {number}")
            if plan.exists() and plan.read_text() == f"die {number}":
                plan.unlink()
                os.kill(os.getpid(), signal.SIGKILL)
            yield RawItem(key=f"item {number}", payload=number, checkpoint=number + 1)

    def parse(self, item):
        (self.context.project_dir / "parsed-by").write_text(str(os.getpid()))
        return Record(source_id=str(item.payload), title=f"Item {item.payload}")


def stored_ids(catalog: Catalog) -> list[str]:
    with catalog.session() as session:
        return sorted(session.scalars(select(RecordRow.source_id)), key=int)


def test_a_source_error_in_the_worker_fails_the_run_in_one_line_and_the_next_resumes(tmp_path):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PidSource, {}, tmp_path, "pids")
    (tmp_path / "plan").write_text("fail 230")
    with pytest.raises(SourceUnavailable, match="the service went away at item 230"):
        harvest(catalog, configured)
    assert int((tmp_path / "parsed-by").read_text()) != os.getpid()  # read by the worker
    # the batches committed before it, whole: the items from the first on, no gap
    stored = len(stored_ids(catalog))
    assert stored_ids(catalog) == [str(n) for n in range(stored)] and 0 < stored <= 230
    (tmp_path / "plan").unlink()
    run = harvest(catalog, configured)
    assert run.counts["new"] == 400 - stored
    assert stored_ids(catalog) == [str(n) for n in range(400)]
    assert not multiprocessing.active_children()


def test_a_worker_killed_mid_run_is_one_clear_error_and_the_next_run_resumes(tmp_path):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PidSource, {}, tmp_path, "pids")
    (tmp_path / "plan").write_text("die 120")
    with pytest.raises(WorkerLost, match="parsing process ended without a word") as raised:
        harvest(catalog, configured)
    assert "\n" not in raised.value.message
    # whole batches, as far as the worker's last message reached: where is up to the timing
    stored = len(stored_ids(catalog))
    assert stored % 50 == 0 and stored <= 100
    assert stored_ids(catalog) == [str(n) for n in range(stored)]
    run = harvest(catalog, configured)
    assert run.counts["new"] == 400 - stored
    assert stored_ids(catalog) == [str(n) for n in range(400)]


def test_a_limit_ends_the_worker_and_the_next_run_goes_on_from_there(tmp_path):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PidSource, {}, tmp_path, "pids")
    run = harvest(catalog, configured, options=HarvestOptions(limit=120))
    assert run.counts["new"] == 120 and not multiprocessing.active_children()
    harvest(catalog, configured)
    assert stored_ids(catalog) == [str(n) for n in range(400)]


def test_hooks_and_the_setting_keep_the_harvest_in_one_process(tmp_path):
    from monalia import hookimpl
    from monalia.api.registry import get_plugin_manager

    class Stamp:
        @hookimpl
        def prepare_record(self, record, source):
            record.institution = "stamped"

    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PidSource, {}, tmp_path, "pids")
    manager = get_plugin_manager()
    manager.register(Stamp())
    harvest(catalog, configured, hooks=manager.hook)
    assert int((tmp_path / "parsed-by").read_text()) == os.getpid()
    harvest(catalog, configured, options=HarvestOptions(parse_in_worker=False, restart=True))
    assert int((tmp_path / "parsed-by").read_text()) == os.getpid()


@pytest.mark.postgres
def test_a_long_harvest_into_postgresql_keeps_the_lookup_on_the_index(
    postgres_url, tmp_path, monkeypatch
):
    """The planner's statistics follow the table as a harvest grows it (ANALYZE each time the
    records doubled), so that a batch's lookup by source id keeps reading the index."""
    from sqlalchemy import text

    from monalia.plugins.sources.jsonl import JsonLinesSource
    from monalia.stages.harvest import record_store

    monkeypatch.setattr(record_store, "ANALYZE_AFTER", 300)
    write_jsonl(tmp_path / "r.jsonl", sample_records(3000))
    catalog = Catalog.open(postgres_url)
    configured = configure(JsonLinesSource, {"path": "r.jsonl"}, tmp_path, "local")
    run = harvest(catalog, configured, options=HarvestOptions(commit_records=100))
    assert run.counts["new"] == 3000
    with catalog.engine.connect() as connection:
        estimate = connection.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('records')")
        )
        analyzed = connection.scalar(
            text(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relid = to_regclass('records')"
            )
        )
    # analyzed by the harvest, late in the run: the planner knows the table's size (at
    # 300,000 records a stale estimate of a few hundred made each lookup read the whole source)
    assert analyzed is not None and estimate >= 1500


class PausingSource(Source):
    """Thirty items at once, then a long wait (a slow page) before the rest; at item 40 it
    writes down how many records the catalog holds (it runs in the worker)."""

    name = "pausing"

    def items(self, state):
        folder = self.context.data_dir.parent
        for number in range(50):
            if number == 30:
                time.sleep(0.1)  # the first thirty go to the writer
            if number == 31:
                time.sleep(1.0)  # a slow page: the writer has nothing more to read
            if number == 40:
                with Catalog.open(folder.joinpath("u").read_text()).session() as session:
                    count = session.scalar(select(func.count()).select_from(RecordRow))
                folder.joinpath("seen").write_text(str(count))
            yield RawItem(key=f"item {number}", payload=number, checkpoint=number)

    def parse(self, item):
        return Record(source_id=str(item.payload), title=f"Item {item.payload}")


def test_a_writer_with_nothing_more_to_read_stores_what_it_holds(tmp_path):
    """Rather than wait for a whole batch, a writer that has caught up with its worker commits
    what it holds, from a fifth of a batch: records show up while a slow source is read (and
    the first batch of a fast one is stored at once)."""
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    (tmp_path / "u").write_text(url)
    catalog = Catalog.open(url)
    configured = configure(PausingSource, {}, tmp_path, "pausing")
    options = HarvestOptions(commit_records=100, commit_seconds=60)
    run = harvest(catalog, configured, options=options)
    assert run.counts["new"] == 50 and run.counts["seen"] == 50
    assert int((tmp_path / "seen").read_text()) >= 20  # not 0: no batch of 100 was reached
    assert sorted(stored_ids(catalog), key=int) == [str(n) for n in range(50)]


def test_a_worker_ahead_of_the_writer_fills_the_pipe_each_time_it_writes():
    """Once the writer has read, the worker hands it all the pipe takes, not one message: a
    worker that stopped writing as soon as it was back under its read-ahead fed the writer one
    chunk per chunk it parsed, and the writer waited with thousands of records made."""
    from monalia.stages.harvest.parse_worker import _Outbox

    reading, writing = os.pipe()
    os.set_blocking(writing, False)
    os.set_blocking(reading, False)
    outbox = _Outbox(writing, ahead=2)
    message = "x" * 10_000
    try:
        while not outbox.waiting:  # the pipe full, the rest waiting
            outbox.put("items", message, records=1)
        outbox.put("items", message, records=1)
        assert 1 <= outbox.records <= 2
        while True:  # the writer reads everything the pipe holds
            try:
                os.read(reading, 1 << 16)
            except BlockingIOError:
                break
        outbox.put("items", message, records=1)  # over its read-ahead: it writes, and then...
        assert not outbox.waiting  # ...all that waited went into the emptied pipe
    finally:
        os.close(reading)
        os.close(writing)


def test_a_worker_that_dies_in_the_middle_of_a_message_is_lost_not_garbled():
    """The writer reads a message whole or says the worker was lost (the next run resumes),
    never unpickles half of one."""
    from monalia.stages.harvest.parse_worker import _HEADER, _receive

    class Ended:  # the worker's process, killed
        exitcode = -9

        def join(self, timeout=None):
            pass

    reading, writing = os.pipe()
    os.write(writing, _HEADER.pack(1000) + b"\x80\x05 half of a message")
    os.close(writing)
    with os.fdopen(reading, "rb", buffering=0) as messages:
        with pytest.raises(WorkerLost, match=r"exit code -9"):
            _receive(messages, Ended())
