"""The harvest stage: idempotent, incremental, resumable after a kill, malformed input skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import sample_records, write_jsonl
from sqlalchemy import create_engine, func, select, text

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, RecordRow, RunEventRow, RunRow, SubjectRow
from monalia.project import load_project
from monalia.stages.harvest import HarvestOptions, harvest


def open_project(folder):
    project = load_project(folder / "monalia.toml")
    return project, Catalog.open(project.catalog_url)


def test_second_harvest_reports_everything_unchanged(project, cli):
    first = cli("harvest", project=project)
    assert first.exit_code == 0, first.output
    second = cli("harvest", project=project)
    assert second.exit_code == 0, second.output
    _, catalog = open_project(project)
    with catalog.session() as session:
        runs = session.scalars(select(RunRow).order_by(RunRow.id)).all()
        assert [(r.new, r.unchanged, r.changed) for r in runs] == [(20, 0, 0), (0, 20, 0)]
        assert session.scalar(select(func.count()).select_from(RecordRow)) == 20
        assert session.scalar(select(func.count()).select_from(ImageRow)) == 20
        assert all(r.status == "done" and r.ended_at for r in runs)


def test_records_are_normalised_with_subjects_images_and_raw_payload(project, cli):
    assert cli("harvest", project=project).exit_code == 0
    _, catalog = open_project(project)
    with catalog.session() as session:
        row = session.scalar(select(RecordRow).where(RecordRow.source_id == "obj-000003"))
        assert row.iri == "https://data.example.org/t/record/local/obj-000003"
        assert row.title == "Objet 3" and row.creators == ["Artiste 3"]
        assert (row.date, row.date_start, row.date_end) == ("vers 1503", 1503, 1503)
        assert [(s.uri, s.label) for s in row.subjects] == [
            (None, "cheval"),
            ("http://data.culture.fr/thesaurus/resource/ark:/67717/T523-2037", None),
        ]
        assert [(i.url, i.is_main, i.status) for i in row.images] == [
            ("https://images.example.org/3.jpg", True, "pending")
        ]
        assert row.raw["id"] == "obj-000003"


def test_changed_record_is_updated_and_counted(project, cli):
    assert cli("harvest", project=project).exit_code == 0
    records = sample_records(20)
    records[5]["title"] = "Objet 5, titre corrigé"
    records[5]["subjects"] = ["nuage"]
    write_jsonl(project / "records.jsonl", records + sample_records(2, start=100))
    assert cli("harvest", project=project).exit_code == 0
    _, catalog = open_project(project)
    with catalog.session() as session:
        run = session.scalar(select(RunRow).order_by(RunRow.id.desc()))
        assert (run.new, run.changed, run.unchanged) == (2, 1, 19)
        row = session.scalar(select(RecordRow).where(RecordRow.source_id == "obj-000005"))
        assert row.title == "Objet 5, titre corrigé"
        assert [s.label for s in row.subjects] == ["nuage"]
        assert (
            session.scalar(
                select(func.count()).select_from(SubjectRow).where(SubjectRow.record_id == row.id)
            )
            == 1
        )


def test_malformed_records_are_reported_and_skipped(project, cli):
    lines = [
        *sample_records(3),
        '{"id": "cut-short", "title": "Trunc',
        '["not", "an", "object"]',
        {"title": "no identifier"},
        {"id": "bad-image", "images": ["not a url"]},
        {"id": "bad-date", "date": {"year": 1900}},
        *sample_records(2, start=3),
    ]
    write_jsonl(project / "records.jsonl", lines)
    result = cli("harvest", project=project)
    assert result.exit_code == 0, result.output
    assert "line 4: invalid JSON" in result.output
    _, catalog = open_project(project)
    with catalog.session() as session:
        run = session.scalar(select(RunRow))
        # an image that cannot be fetched leaves its record, which is kept, with a warning
        assert (run.seen, run.new, run.failed, run.warnings) == (10, 6, 4, 1)
        events = session.scalars(select(RunEventRow).order_by(RunEventRow.id)).all()
        assert [(e.item, e.level) for e in events] == [
            ("line 4", "error"),
            ("line 5", "error"),
            ("line 6", "error"),
            ("line 7", "warning"),
            ("line 8", "error"),
        ]
        assert "expected a JSON object" in events[1].message
        assert "no identifier" in events[2].message
        assert "image 'not a url' is not fetched: scheme none" in events[3].message
        assert "date must be text" in events[4].message
        kept = session.scalar(select(RecordRow).where(RecordRow.source_id == "bad-image"))
        assert kept.images == [] and kept.raw["images"] == ["not a url"]
    shown = cli("runs", "show", str(run.id), project=project)
    assert "line 8" in shown.output and "failed 4" in shown.output


def test_limit_stops_early_and_the_next_run_goes_on(project):
    project_config, catalog = open_project(project)
    configured = project_config.sources["local"]
    first = harvest(catalog, configured, options=HarvestOptions(limit=7))
    assert first.counts["new"] == 7 and "--limit" in first.message
    second = harvest(catalog, configured)
    assert second.counts["new"] == 13 and second.counts["unchanged"] == 0
    third = harvest(catalog, configured)
    assert third.counts["unchanged"] == 20


def test_prepare_record_hook_can_extend_and_reject_records(project):
    from monalia import RecordError, hookimpl
    from monalia.api.registry import get_plugin_manager

    class Curator:
        @hookimpl
        def prepare_record(self, record, source):
            if record.source_id == "obj-000001":
                raise RecordError("withdrawn from the collection")
            record.institution = "Musée renommé"

    pm = get_plugin_manager()
    pm.register(Curator())
    project_config, catalog = open_project(project)
    run = harvest(catalog, project_config.sources["local"], hooks=pm.hook)
    assert (run.counts["new"], run.counts["failed"]) == (19, 1)
    with catalog.session() as session:
        assert set(session.scalars(select(RecordRow.institution))) == {"Musée renommé"}


def processes_running(marker: str) -> list[int]:
    """Processes whose command line names `marker` (Linux; none found elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in entry.joinpath("cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_killed_harvest_is_shown_interrupted_and_the_next_run_completes_it(tmp_path):
    total = 6000
    write_jsonl(tmp_path / "records.jsonl", sample_records(total))
    catalog_path = tmp_path / "catalog.sqlite"
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{catalog_path}"\n'
        '[sources.local]\nplugin = "jsonl"\npath = "records.jsonl"\n',
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "monalia", "--project", str(tmp_path), "-q", "harvest"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    engine = create_engine(f"sqlite:///{catalog_path}")
    stored = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with engine.connect() as connection:
                stored = connection.execute(text("select count(*) from records")).scalar()
        except Exception:
            stored = 0  # the catalog is still being created
        if stored >= 1000:
            break
        time.sleep(0.05)
    assert process.poll() is None, (
        f"the harvest finished before it could be killed: {process.stdout.read()}"
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    engine.dispose()
    # its parsing worker (forked, same command line) notices and ends: nothing left running
    deadline = time.monotonic() + 10
    while processes_running(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_running(str(tmp_path))

    listing = subprocess.run(
        [sys.executable, "-m", "monalia", "--project", str(tmp_path), "runs"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "interrupted" in listing.stdout + listing.stderr, listing.stdout + listing.stderr

    resumed = subprocess.run([*command[:-2], "harvest"], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    catalog = Catalog.open(f"sqlite:///{catalog_path}")
    with catalog.session() as session:
        first, second = session.scalars(select(RunRow).order_by(RunRow.id)).all()
        assert first.status == "interrupted"
        ids = session.scalars(select(RecordRow.source_id)).all()
        assert len(ids) == total and len(set(ids)) == total, "records are missing or duplicated"
        assert second.status == "done"
        # the second run went on from the checkpoint: it read only what was not committed
        assert second.new == total - first.new, (first.new, second.new)
        assert second.changed == 0
        assert first.new >= 1000
    state = json.loads(json.dumps(second.settings))
    assert state["resumed_from"]["line"] == first.new


def test_the_collections_between_batches_free_every_cycle():
    """Between two batches the cycle collector walks what the batch made; a cycle that outlived
    its batch is freed by the full collection that comes every FULL_EVERY batches."""
    import weakref

    from monalia.stages.harvest import gc_tuning

    class Node:
        pass

    with gc_tuning.batches_without_collections():
        left = Node()
        left.itself = left
        freed_at_once = weakref.ref(left)
        del left
        gc_tuning.between_batches()
        assert freed_at_once() is None
        kept = Node()
        kept.itself = kept
        freed_later = weakref.ref(kept)
        gc_tuning.between_batches()  # alive: it moves past the young generations
        del kept
        for _ in range(gc_tuning.FULL_EVERY):
            gc_tuning.between_batches()
        assert freed_later() is None
