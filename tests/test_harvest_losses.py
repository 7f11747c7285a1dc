"""Nothing lost in silence: every item read is a stored record or a failed item with its reason,
duplicates and bad bytes are reported, one failing source does not stop the others, and a slow
source commits by time so a kill loses only seconds."""

from __future__ import annotations

import time

import pytest
from conftest import sample_records, write_jsonl
from sqlalchemy import func, select

from monalia.api.records import Record
from monalia.api.source import RawItem, Source
from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow, RunEventRow, RunRow
from monalia.stages.harvest import HarvestOptions, dry_run, harvest
from monalia.testing import configure


def adds_up(run) -> bool:
    counts = run.counts
    return counts["seen"] == sum(counts[k] for k in ("new", "changed", "unchanged", "failed"))


@pytest.mark.parametrize("commit_records", [None, 1], ids=["one batch", "a batch per record"])
def test_duplicate_ids_in_one_file_are_failed_items_and_the_dry_run_agrees(
    tmp_path, commit_records
):
    records = sample_records(4)
    second_copy = dict(records[1], title="Objet 1, une autre version")
    write_jsonl(tmp_path / "r.jsonl", [*records, second_copy, records[3]])
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    from monalia.plugins.sources.jsonl import JsonLinesSource

    configured = configure(JsonLinesSource, {"path": "r.jsonl"}, tmp_path, "local")
    preview = dry_run(catalog, configured)
    run = harvest(catalog, configured, options=HarvestOptions(commit_records=commit_records))
    assert preview["counts"] == {
        "seen": 6,
        "new": 4,
        "changed": 0,
        "unchanged": 0,
        "failed": 2,
    }
    assert {k: run.counts[k] for k in preview["counts"]} == preview["counts"] and adds_up(run)
    with catalog.session() as session:
        events = session.execute(
            select(RunEventRow.item, RunEventRow.message).where(RunEventRow.run_id == run.id)
        ).all()
        kept = session.scalar(select(RecordRow.title).where(RecordRow.source_id == "obj-000001"))
    assert [item for item, _ in events] == ["line 5", "line 6"]
    # the harvest asks the catalog which run stored an id (nothing kept per id in memory)
    assert (
        "duplicate id 'obj-000001': an earlier item of this run already gave it" in (events[0][1])
    )
    # the dry run stores nothing, so it keeps the ids it read and names the first item
    assert "duplicate id 'obj-000001': already read by line 2" in preview["failures"][0][1]
    assert kept == "Objet 1"  # the first stays; the later copy did not replace it silently
    # a second harvest of the same file: the copies are duplicates again, the rest unchanged
    again = harvest(catalog, configured, options=HarvestOptions(commit_records=commit_records))
    assert (again.counts["unchanged"], again.counts["failed"]) == (4, 2) and adds_up(again)


def write_csv(path, rows: list[bytes]) -> None:
    path.write_bytes(b"id,title,creation_date\n" + b"".join(rows))


def test_an_undecodable_byte_fails_its_csv_row_and_the_rest_is_stored(tmp_path):
    from monalia.plugins.sources.cleveland import ClevelandCsvSource

    write_csv(
        tmp_path / "data.csv",
        [
            b"1,Still life,1900\n",
            b"2,Caf\xe9 scene,1901\n",  # latin-1 in a UTF-8 file
            b"3,Landscape,1902\n",
        ],
    )
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(
        ClevelandCsvSource, {"path": "data.csv", "with_image_only": False}, tmp_path, "cma"
    )
    run = harvest(catalog, configured)
    assert run.status == "done" and adds_up(run)
    assert (run.counts["new"], run.counts["failed"]) == (2, 1)
    with catalog.session() as session:
        titles = session.scalars(select(RecordRow.title).order_by(RecordRow.source_id)).all()
        [event] = session.scalars(select(RunEventRow).where(RunEventRow.run_id == run.id)).all()
    assert titles == ["Still life", "Landscape"]
    assert event.item == "row 3" and "byte 0xe9 in column 'title'" in event.message


def test_a_change_in_a_column_monalia_does_not_map_is_a_change(tmp_path):
    from monalia.plugins.sources.joconde import JocondeCsvSource

    def write(note: str) -> None:
        (tmp_path / "j.csv").write_text(
            f"REF;TITR;Note interne\nM0001;Nature morte;{note}\n", encoding="utf-8"
        )

    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(JocondeCsvSource, {"path": "j.csv"}, tmp_path, "joconde")
    write("a")
    assert harvest(catalog, configured).counts["new"] == 1
    write("a")
    assert harvest(catalog, configured).counts["unchanged"] == 1
    write("b")
    assert harvest(catalog, configured).counts["changed"] == 1
    with catalog.session() as session:
        assert session.scalar(select(RecordRow.raw))["Note interne"] == "b"


class SlowSource(Source):
    """Yields an item every 50 ms; after the fifth it writes down what the catalog holds (in a
    file: the source may be read in a process of its own)."""

    name = "slow"

    def items(self, state):
        folder = self.context.data_dir.parent
        for number in range(8):
            if number == 6:
                catalog = Catalog.open(folder.joinpath("u").read_text())
                with catalog.session() as session:
                    count = session.scalar(select(func.count()).select_from(RecordRow))
                folder.joinpath("seen").write_text(str(count))
            time.sleep(0.05)
            yield RawItem(key=f"item {number}", payload=number, checkpoint=number)

    def parse(self, item):
        return Record(source_id=str(item.payload), title=f"Item {item.payload}")


def test_a_slow_source_commits_by_time_not_only_by_count(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    (tmp_path / "u").write_text(url)
    catalog = Catalog.open(url)
    configured = configure(SlowSource, {}, tmp_path, "slow")
    run = harvest(catalog, configured, options=HarvestOptions(commit_seconds=0.1))
    assert run.counts["new"] == 8
    # batch_size is 500: without the time bound nothing would be stored before the end
    assert int((tmp_path / "seen").read_text()) >= 4


def test_harvest_runs_every_source_and_fails_at_the_end_when_one_failed(tmp_path, cli):
    write_jsonl(tmp_path / "b.jsonl", sample_records(3))
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "c.sqlite"}"\n'
        '[sources.a]\nplugin = "jsonl"\npath = "missing.jsonl"\n'
        '[sources.b]\nplugin = "jsonl"\npath = "b.jsonl"\n',
        encoding="utf-8",
    )
    from click.testing import CliRunner

    from monalia.cli import cli as command

    result = CliRunner().invoke(command, ["--project", str(tmp_path), "-q", "harvest"])
    assert result.exit_code != 0
    assert "1 of 2 sources did not finish: a failed" in result.output
    assert "no such file" in result.output
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with catalog.session() as session:
        runs = session.execute(select(RunRow.target, RunRow.status, RunRow.new)).all()
    assert sorted(runs) == [("a", "failed", 0), ("b", "done", 3)]


def test_items_the_settings_leave_out_keep_the_counts_adding_up(tmp_path):
    """A source may leave an item out by its own settings (not CC0, no image): that item is
    not seen, as if the service had filtered it; the counts still add up."""
    from monalia.plugins.sources.cleveland import ClevelandCsvSource

    (tmp_path / "data.csv").write_text(
        "id,title,share_license_status,image_web\n"
        "1,Open,CC0,https://img.example.org/1.jpg\n"
        "2,Closed,Copyrighted,https://img.example.org/2.jpg\n"
        "3,Open but no image,CC0,\n",
        encoding="utf-8",
    )
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(
        ClevelandCsvSource, {"path": "data.csv", "cc0_only": True}, tmp_path, "cma"
    )
    preview = dry_run(catalog, configured)
    run = harvest(catalog, configured)
    assert (run.counts["seen"], run.counts["new"], run.counts["failed"]) == (1, 1, 0)
    assert adds_up(run) and preview["counts"]["seen"] == 1
