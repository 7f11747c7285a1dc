"""A paged source (an OAI-PMH list) read by one process and parsed by several: the catalog, the
counts, the failures and the bookmark are exactly those of a harvest in one process, every page
is read once and in order, and an error, a lost process or --limit ends the run as before, the
next run resuming without a gap or a duplicate."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest
from sqlalchemy import select
from support.oai_server import OaiServer, list_records
from test_parse_worker import catalog_content

from monalia.api.records import Record
from monalia.api.source import RawItem, Source
from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow, SourceStateRow
from monalia.errors import RecordError, SourceUnavailable
from monalia.plugins.sources.oai_pmh import OaiPmhSource
from monalia.stages.harvest import HarvestOptions, harvest
from monalia.stages.harvest.parse_worker import WorkerLost, can_fork
from monalia.testing import configure

pytestmark = pytest.mark.skipif(not can_fork(), reason="no fork, or a single CPU: one process")

PAGES, PER_PAGE = 60, 40
TEXT = "A long description of the object, as museum records have them. " * 150


class PagedSource(Source):
    """Pages of 40 records of about 10 KB (a page fills a pipe), each page naming
    the next. Told by the file `plan` in the project folder, it fails reading a page, fails
    parsing one, or kills the process that reads or parses one; it notes which processes read
    and parsed pages."""

    name = "paged"
    batch_size = 50

    def plan(self, action: str, page: int) -> bool:
        plan = self.context.project_dir / "plan"
        try:
            planned = plan.read_text()
        except FileNotFoundError:  # none, or another process just took it away
            return False
        if planned == f"{action} {page}":
            if action.endswith("dies"):
                plan.unlink()  # the next run goes on
            return True
        return False

    def note(self, name: str) -> None:
        with open(self.context.project_dir / name, "a") as notes:
            notes.write(f"{os.getpid()}\n")

    def page_cursor(self, state):
        checkpoint = state.checkpoint or {"page": 0, "done": 0}
        return checkpoint["page"], checkpoint["done"]

    def read_page(self, cursor):
        number, done = cursor
        if self.plan("fail", number):
            raise SourceUnavailable(f"the service went away at page {number}")
        if self.plan("reader dies", number):
            os.kill(os.getpid(), signal.SIGKILL)
        self.note("read-by")
        self.last_page = number
        page = {"number": number, "done": done}
        return page, ((number + 1, 0) if number + 1 < PAGES else None)

    def page_items(self, page):
        number = page["number"]
        if self.plan("broken", number):
            raise SourceUnavailable(f"page {number} is not well-formed")
        if self.plan("parser dies", number):
            os.kill(os.getpid(), signal.SIGKILL)
        self.note("parsed-by")
        for index in range(page["done"], PER_PAGE):
            yield RawItem(
                key=f"page {number} record {index}",
                payload=(number, index),
                checkpoint={"page": number, "done": index + 1},
            )

    def parse(self, item):
        number, index = item.payload
        if (number * PER_PAGE + index) % 97 == 5:
            raise RecordError("a record without a title")  # one in 97: failed, the run goes on
        return Record(
            source_id=f"{number:03d}-{index:02d}",
            title=f"Object {number}.{index}",
            description=TEXT,
            subjects=[],
        )

    def new_bookmark(self):
        return f"read up to page {self.last_page}"


def stored_ids(catalog: Catalog) -> list[str]:
    with catalog.session() as session:
        return sorted(session.scalars(select(RecordRow.source_id)))


def every_id(failed: bool = False) -> list[str]:
    """The ids of the whole source, in order; with `failed`, those that fail too."""
    return [
        f"{number:03d}-{index:02d}"
        for number in range(PAGES)
        for index in range(PER_PAGE)
        if failed or (number * PER_PAGE + index) % 97 != 5
    ]


def before_page(page: int) -> list[str]:
    return [source_id for source_id in every_id() if int(source_id[:3]) < page]


def bookmark(catalog: Catalog) -> str | None:
    with catalog.session() as session:
        return session.scalar(select(SourceStateRow.bookmark))


def pids(folder, name: str) -> set[int]:
    path = folder / name
    return {int(line) for line in path.read_text().split()} if path.exists() else set()


@pytest.mark.parametrize("commit_records", [None, 30])
def test_pages_parsed_side_by_side_store_exactly_what_one_process_stores(tmp_path, commit_records):
    results = {}
    for processes in (None, 1, 2, 3):  # None: no worker at all
        folder = tmp_path / f"p{processes}"
        folder.mkdir()
        catalog = Catalog.open(f"sqlite:///{folder / 'c.sqlite'}")
        configured = configure(PagedSource, {}, folder, "paged")
        options = HarvestOptions(
            commit_records=commit_records,
            parse_in_worker=processes is not None,
            parse_processes=processes,
        )
        first = harvest(catalog, configured, options=options)
        again = harvest(catalog, configured, options=options)
        results[processes] = (
            first.counts,
            again.counts,
            catalog_content(catalog),
            bookmark(catalog),
        )
        assert not multiprocessing.active_children()  # every process ended with its run
        if processes is not None and processes > 1:
            readers, parsers = pids(folder, "read-by"), pids(folder, "parsed-by")
            # one process read every page, `processes` others parsed them, the writer neither
            assert len(readers) == 2  # one per run
            assert len(parsers) == 2 * processes and not parsers & readers
            assert os.getpid() not in readers | parsers
    assert results[2] == results[None] and results[3] == results[None] and results[1] == results[2]
    counts = results[2][0]
    failed = PAGES * PER_PAGE - len(every_id())
    assert (counts["seen"], counts["new"], counts["failed"]) == (
        PAGES * PER_PAGE,
        PAGES * PER_PAGE - failed,
        failed,
    )
    assert results[2][1]["unchanged"] == PAGES * PER_PAGE - failed
    assert results[2][3] == f"read up to page {PAGES - 1}"


def test_a_writer_slower_than_its_parsers_still_gets_every_record(tmp_path, monkeypatch):
    """The parsers run ahead until the pipes are full and their messages wait; when the pages
    end, what waits still reaches the writer (a parser that left then lost its last page)."""
    import time

    from monalia.stages.harvest.record_store import RecordStore

    commit = RecordStore.commit

    def slow_commit(self, *args, **kwargs):
        time.sleep(0.02)  # a busy database
        return commit(self, *args, **kwargs)

    monkeypatch.setattr(RecordStore, "commit", slow_commit)
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PagedSource, {}, tmp_path, "paged")
    run = harvest(catalog, configured, options=HarvestOptions(parse_processes=2))
    assert run.status == "done" and stored_ids(catalog) == every_id()


@pytest.mark.parametrize("plan", ["fail 31", "broken 31"])
def test_an_error_at_a_page_fails_the_run_after_the_pages_before_it(tmp_path, plan):
    """Reading the page fails, or parsing it: the run fails with the error in one line, with
    every record of the pages before it that was committed stored (a gap-free beginning), and
    the next run stores the rest."""
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PagedSource, {}, tmp_path, "paged")
    (tmp_path / "plan").write_text(plan)
    options = HarvestOptions(commit_records=30, parse_processes=2)
    with pytest.raises(SourceUnavailable, match=r"at page 31|page 31 is not well-formed"):
        harvest(catalog, configured, options=options)
    stored = stored_ids(catalog)
    assert stored == every_id()[: len(stored)] and 0 < len(stored) <= len(before_page(31))
    assert not multiprocessing.active_children()
    (tmp_path / "plan").unlink()
    run = harvest(catalog, configured, options=options)
    assert run.status == "done" and run.counts["new"] == len(every_id()) - len(stored)
    assert stored_ids(catalog) == every_id()


@pytest.mark.parametrize("plan", ["reader dies 25", "parser dies 25"])
def test_a_process_killed_mid_list_is_one_clear_error_and_the_next_run_resumes(tmp_path, plan):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PagedSource, {}, tmp_path, "paged")
    (tmp_path / "plan").write_text(plan)
    options = HarvestOptions(commit_records=30, parse_processes=2)
    with pytest.raises(WorkerLost, match="parsing process ended without a word") as raised:
        harvest(catalog, configured, options=options)
    assert "\n" not in raised.value.message
    stored = stored_ids(catalog)
    assert stored == every_id()[: len(stored)] and len(stored) <= len(before_page(25))
    assert not multiprocessing.active_children()
    run = harvest(catalog, configured, options=options)
    assert run.status == "done" and run.counts["new"] == len(every_id()) - len(stored)
    assert stored_ids(catalog) == every_id()


def test_a_limit_ends_every_process_and_the_next_run_goes_on_from_there(tmp_path):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(PagedSource, {}, tmp_path, "paged")
    options = HarvestOptions(limit=300, parse_processes=3)
    run = harvest(catalog, configured, options=options)
    assert run.counts["seen"] == 300 and not multiprocessing.active_children()
    for pid in pids(tmp_path, "read-by") | pids(tmp_path, "parsed-by"):
        with pytest.raises(ProcessLookupError):  # ended and reaped, none left behind
            os.kill(pid, 0)
    harvest(catalog, configured, options=HarvestOptions(parse_processes=3))
    assert stored_ids(catalog) == every_id()


def dc_record(number: int) -> bytes:
    return (
        f"<record><header><identifier>oai:museum.example.org:{number}</identifier>"
        f"<datestamp>2026-0{1 + number % 9}-10</datestamp><setSpec>paintings</setSpec>"
        "</header><metadata>"
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:title xml:lang="en">Landscape, study {number}</dc:title>'
        f"<dc:creator>Painter {number % 7}</dc:creator><dc:date>{1600 + number}</dc:date>"
        "<dc:subject>landscape</dc:subject><dc:description>"
        + "Oil on canvas. "
        * 100
        + "</dc:description>"
        f"<dc:identifier>https://images.museum.example.org/{number}.jpg</dc:identifier>"
        "</oai_dc:dc></metadata></record>"
    ).encode()


def test_an_oai_pmh_list_parsed_side_by_side_is_read_once_in_order(tmp_path):
    pages, per_page = 25, 30
    served = {
        None if page == 0 else f"t{page}": list_records(
            [dc_record(page * per_page + n) for n in range(per_page)],
            f"t{page + 1}" if page + 1 < pages else None,
        )
        for page in range(pages)
    }
    contents = {}
    with OaiServer(served) as server:
        for processes in (None, 2):
            folder = tmp_path / f"p{processes}"
            folder.mkdir()
            catalog = Catalog.open(f"sqlite:///{folder / 'c.sqlite'}")
            configured = configure(
                OaiPmhSource, {"url": server.endpoint, "granularity": "day"}, folder, "repository"
            )
            options = HarvestOptions(
                commit_records=100,
                parse_in_worker=processes is not None,
                parse_processes=processes,
            )
            server.requests.clear()
            run = harvest(catalog, configured, options=options)
            assert run.counts["new"] == pages * per_page
            tokens = [r.get("resumptionToken") for r in server.requests]
            assert tokens == [None] + [f"t{page}" for page in range(1, pages)]  # once, in order
            contents[processes] = (catalog_content(catalog), bookmark(catalog))
    assert contents[2] == contents[None]
    assert contents[2][1] == "2026-11-30T12:00:00Z"  # the first page's response date
