"""Two stages at once on one catalog, and the database going away mid-run.

Whatever happens, each command finishes or says in one line what stopped it (the catalog busy,
its database gone), no row is lost or doubled, and the next run goes on exactly where the last
commit left off. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import POSTGRES_URL, sample_records, write_jsonl
from PIL import Image
from sqlalchemy import create_engine, delete, func, select, text

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, RecordRow, RunRow

pytestmark = pytest.mark.slow  # processes racing each other


def monalia(folder: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "monalia", "--project", str(folder), "-q", *args]
    return subprocess.Popen(
        command,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error")]


def counts_add_up(catalog: Catalog) -> list[RunRow]:
    with catalog.session() as session:
        runs = session.scalars(select(RunRow).order_by(RunRow.id)).all()
    for run in runs:
        assert run.seen == run.new + run.changed + run.unchanged + run.failed, run.id
    return runs


def write_collection(folder: Path, catalog_url: str, total: int, pictures: int = 0) -> None:
    """`total` JSON Lines records; the first `pictures` with a real picture as a file: URL."""
    records = sample_records(total)
    images = folder / "pictures"
    images.mkdir(exist_ok=True)
    for number, record in enumerate(records[:pictures]):
        path = images / f"{number}.jpg"
        noise = random.Random(number).randbytes(48 * 40 * 3)  # a picture of its own
        Image.frombytes("RGB", (48, 40), noise).save(path, "JPEG")
        record["images"] = [path.as_uri()]
    for record in records[pictures:]:
        record["images"] = []
    write_jsonl(folder / "records.jsonl", records)
    (folder / "monalia.toml").write_text(
        f'[project]\ncatalog = "{catalog_url}"\nallow_file_urls = true\n'
        '[sources.local]\nplugin = "jsonl"\npath = "records.jsonl"\n'
        "[images]\nmin_side = 8\n",
        encoding="utf-8",
    )


def wait_for_records(catalog_url: str, at_least: int, process: subprocess.Popen) -> None:
    engine = create_engine(catalog_url)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with engine.connect() as connection:
                    if connection.execute(text("select count(*) from records")).scalar() >= (
                        at_least
                    ):
                        return
            except Exception:
                pass  # the catalog is still being made
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"the harvest ended before {at_least} records: {process.stdout.read()}")


# -- two stages at once -------------------------------------------------------------------------


def test_two_harvests_of_one_source_at_once(tmp_path, catalog_url):
    total = 4000
    write_collection(tmp_path, catalog_url, total)
    first, second = monalia(tmp_path, "harvest"), monalia(tmp_path, "harvest")
    outcomes = [finished(first), finished(second)]
    for code, output in outcomes:
        assert code == 0 or (
            len(error_lines(output)) == 1 and "the catalog is busy" in error_lines(output)[0]
        ), output
    assert any(code == 0 for code, _ in outcomes)
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        ids = session.scalars(select(RecordRow.source_id)).all()
    assert len(ids) == len(set(ids)) == total
    runs = counts_add_up(catalog)
    assert sum(run.new for run in runs) == total  # each record stored new exactly once
    catalog.engine.dispose()


def test_images_fetched_while_the_harvest_goes_on(tmp_path, catalog_url):
    total = 3000
    write_collection(tmp_path, catalog_url, total, pictures=total)
    harvest = monalia(tmp_path, "harvest")
    wait_for_records(catalog_url, 500, harvest)
    images = monalia(tmp_path, "images")
    for code, output in (finished(harvest), finished(images)):
        assert code == 0, output
    again = monalia(tmp_path, "images")  # what the harvest stored after the images run began
    code, output = finished(again)
    assert code == 0, output
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        rows = session.execute(select(ImageRow.status, ImageRow.path)).all()
    assert len(rows) == total
    assert {status for status, _ in rows} == {"fetched"}
    paths = [path for _, path in rows]
    assert len(set(paths)) == total  # one file each, none fetched twice into two rows
    runs = counts_add_up(catalog)
    fetched = sum(run.new for run in runs if run.stage == "images")
    assert fetched == total, [(run.stage, run.new, run.unchanged) for run in runs]
    catalog.engine.dispose()


# -- the database going away ----------------------------------------------------------------


@pytest.fixture
def victim_url(postgres_url):
    """The test's PostgreSQL catalog, its connections named so that they can be ended."""
    name = f"monalia-victim-{uuid.uuid4().hex[:8]}"
    return f"{postgres_url}&application_name={name}", name


def terminate(application_name: str) -> int:
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        ended = connection.execute(
            text(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where application_name = :name"
            ),
            {"name": application_name},
        ).scalar()
    engine.dispose()
    return int(ended or 0)


@pytest.mark.postgres
def test_the_database_ended_mid_harvest_then_the_next_run_resumes(tmp_path, victim_url):
    url, name = victim_url
    total = 8000
    write_collection(tmp_path, url, total)
    harvest = monalia(tmp_path, "harvest")
    wait_for_records(url, 1000, harvest)
    # idle connections are replaced when next used: ending them until one is caught in the
    # middle of a transaction (the harvest then stops), or the harvest is over
    ended = 0
    while harvest.poll() is None:
        ended += terminate(name)
        time.sleep(0.02)
    assert ended >= 1
    code, output = finished(harvest)
    assert code != 0
    [line] = error_lines(output)
    assert "database went away" in line and "run the command again" in line
    resumed = monalia(tmp_path, "harvest")
    code, output = finished(resumed)
    assert code == 0, output
    catalog = Catalog.open(url)
    with catalog.session() as session:
        ids = session.scalars(select(RecordRow.source_id)).all()
    assert len(ids) == len(set(ids)) == total
    runs = counts_add_up(catalog)
    first, second = runs
    assert first.status in ("failed", "interrupted") and second.status == "done"
    assert second.new == total - first.new and second.changed == 0
    catalog.engine.dispose()


def test_the_sqlite_catalog_locked_past_the_timeout_then_the_next_run_resumes(tmp_path):
    path = tmp_path / "catalog.sqlite"
    url = f"sqlite:///{path}?timeout=1"
    total = 8000
    write_collection(tmp_path, url, total)
    harvest = monalia(tmp_path, "harvest")
    wait_for_records(f"sqlite:///{path}", 1000, harvest)
    holder = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # another writer, holding the lock for 5 s
    release = threading.Timer(5.0, lambda: holder.execute("COMMIT"))
    release.start()
    code, output = finished(harvest)
    release.join()
    holder.close()
    assert code != 0
    [line] = error_lines(output)
    assert "the catalog is busy" in line
    resumed = monalia(tmp_path, "harvest")
    code, output = finished(resumed)
    assert code == 0, output
    catalog = Catalog.open(f"sqlite:///{path}")
    with catalog.session() as session:
        ids = session.scalars(select(RecordRow.source_id)).all()
        statuses = session.scalars(select(RunRow.status).order_by(RunRow.id)).all()
    assert len(ids) == len(set(ids)) == total
    assert statuses[0] in ("failed", "interrupted") and statuses[-1] == "done"
    runs = counts_add_up(catalog)
    assert sum(run.new for run in runs) == total
    catalog.engine.dispose()


@pytest.mark.postgres
def test_the_database_ended_mid_enrich_then_the_next_run_resumes(tmp_path, victim_url, cli):
    from support.drawn_catalog import SHAPE_OF, build_project

    from monalia.catalog import bulk
    from monalia.catalog.models import PredictionRow

    url, name = victim_url
    extra = "\n[enrich]\nchunk_size = 16\nbatch_size = 8\nworkers = 0\n"
    catalog = build_project(tmp_path, url, cli, count=60, extra=extra, epochs=1)
    assert cli("train", project=tmp_path).exit_code == 0
    original, written = bulk.write_scores, []

    def ended_in_the_third_chunk(session, *args, **kwargs):
        if len(written) == 2:
            session.execute(text("select 1"))  # the chunk's transaction is open ...
            terminate(name)  # ... when the server ends every connection of this catalog
        written.append(original(session, *args, **kwargs))
        return written[-1]

    bulk.write_scores = ended_in_the_third_chunk
    try:
        first = cli("enrich", project=tmp_path)
    finally:
        bulk.write_scores = original
    assert first.exit_code != 0
    assert "database went away" in first.output and len(first.output.strip().splitlines()) <= 3
    second = cli("enrich", project=tmp_path)
    assert second.exit_code == 0, second.output
    with catalog.session() as session:
        images = session.scalar(select(func.count()).select_from(ImageRow))
        keys = session.execute(select(PredictionRow.image_id, PredictionRow.class_index)).all()
        statuses = session.scalars(
            select(RunRow.status).where(RunRow.stage == "enrich").order_by(RunRow.id)
        ).all()
    assert len(keys) == len(set(keys)) == images * len(SHAPE_OF)
    assert statuses[0] in ("failed", "interrupted") and statuses[-1] == "done"
    catalog.engine.dispose()


def test_enrich_while_curators_decide_on_each_database(tmp_path, catalog_url, cli):
    """enrich scores every image again while four curators record decisions in the workbench:
    both finish, each decision answered 200 is stored once, each image has one score a class."""
    from starlette.testclient import TestClient
    from support.drawn_catalog import SHAPE_OF, build_project

    from monalia.api.registry import default_registry
    from monalia.catalog.models import PredictionRow, ReviewDecisionRow, ScoredImageRow
    from monalia.project import load_project
    from monalia.web.app import Settings, create_app
    from monalia.web.workbench import Workbench

    extra = (
        '\n[sinks.store]\nplugin = "embedded-store"\npath = "store"\n'
        "[enrich]\nchunk_size = 8\nbatch_size = 8\nworkers = 0\n"
        '[report]\nmethod = "threshold"\nnoise_below = 0.999\nsilence_above = 0.001\n'
    )
    catalog = build_project(tmp_path, catalog_url, cli, count=60, extra=extra, epochs=1)
    for stage in ("train", "enrich", "publish"):
        result = cli(stage, project=tmp_path)
        assert result.exit_code == 0, result.output
    project = load_project(tmp_path / "monalia.toml", default_registry())
    workbench = Workbench(catalog, project)
    settings = Settings(
        "marie", False, False, tmp_path / "users.txt", allowed_hosts=("testserver",)
    )
    app = create_app(workbench, settings)
    page = TestClient(app).get("/findings", params={"class": 0, "kind": "noise"})
    found = re.findall(r'data-record="([^"]+)" data-class="([^"]+)"', page.text)
    assert found
    with catalog.session() as session:  # as if the model had never scored them
        session.execute(delete(PredictionRow))
        session.execute(delete(ScoredImageRow))
    enrich = monalia(tmp_path, "enrich")
    answered: list[str] = []
    problems: list[str] = []

    def curator(number: int) -> None:
        client = TestClient(app)
        turn = 0
        try:
            while enrich.poll() is None or turn < 3:
                turn += 1
                home = client.get("/")
                token = re.search(r'name="csrf-token" content="([^"]+)"', home.text).group(1)
                record, cls = found[(number + turn) % len(found)]
                comment = f"curator-{number}-{turn}"
                answer = client.post(
                    "/decide",
                    data={
                        "record": record,
                        "class": cls,
                        "kind": "noise",
                        "decision": "skip",
                        "comment": comment,
                    },
                    headers={"X-CSRF-Token": token, "Accept": "application/json"},
                )
                if answer.status_code == 200:
                    answered.append(comment)
                else:
                    problems.append(f"decide {answer.status_code}: {answer.text[:200]}")
        except Exception as exc:  # reported by the test, not lost in the thread
            problems.append(repr(exc))

    curators = [threading.Thread(target=curator, args=(n,)) for n in range(4)]
    for thread in curators:
        thread.start()
    code, output = finished(enrich)
    for thread in curators:
        thread.join()
    assert code == 0, output
    assert not problems, problems[:5]
    assert len(answered) >= 12
    with catalog.session() as session:
        stored = session.scalars(select(ReviewDecisionRow.comment)).all()
        images = session.scalar(
            select(func.count()).select_from(ImageRow).where(ImageRow.status == "fetched")
        )
        keys = session.execute(select(PredictionRow.image_id, PredictionRow.class_index)).all()
    assert sorted(stored) == sorted(answered)
    assert len(keys) == len(set(keys)) == images * len(SHAPE_OF)
    counts_add_up(catalog)
    catalog.engine.dispose()
