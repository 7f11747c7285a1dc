"""The image stage against a local server: IIIF level 1 and level 0 services, plain URLs, local
files, and every way an image can be bad or a server can fail."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_jsonl
from PIL import Image
from sqlalchemy import select
from support.iiif_server import IiifServer, jpeg, picture, slow_images
from support.processes import children_of
from support.servers import Reply

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, RunRow
from monalia.learning.image_check import ImageLimits, ImageRejected, prepare

BOX = 128


def png(width: int, height: int, mode: str = "1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, "PNG", optimize=True)
    return out.getvalue()


BAD = {
    "/bad/html.jpg": Reply(
        body="<!DOCTYPE html><html><body>Not found</body></html>",
        headers={"Content-Type": "text/html"},
    ),
    "/bad/html-as-jpeg.jpg": Reply(
        body=b"<html><body>error</body></html>", headers={"Content-Type": "image/jpeg"}
    ),
    "/bad/empty.jpg": Reply(body=b"", headers={"Content-Type": "image/jpeg"}),
    "/bad/bomb.png": Reply(body=png(6000, 6000), headers={"Content-Type": "image/png"}),
    "/bad/truncated-file.jpg": Reply(
        body=jpeg(picture("t", 400, 300))[:3000], headers={"Content-Type": "image/jpeg"}
    ),
    "/bad/sliver.png": Reply(body=png(2000, 10, "RGB"), headers={"Content-Type": "image/png"}),
    # bytes that are no image and cannot pass for markup ("{" or "<" first would be read as a
    # text page): random bytes started with one about one time in a hundred
    "/bad/garbage.jpg": Reply(
        body=b"\x01" + random.Random(49).randbytes(3999), headers={"Content-Type": "image/jpeg"}
    ),
    "/bad/huge.jpg": Reply(
        body=b"\xff\xd8" + b"\0" * 300_000, headers={"Content-Type": "image/jpeg"}
    ),
    "/bad/gone.jpg": Reply(status=404, body="gone"),
    "/bad/broken.jpg": Reply(status=500, body="oops"),
    "/bad/slow.jpg": Reply(
        body=jpeg(picture("slow", 50, 50)), delay=1.5, headers={"Content-Type": "image/jpeg"}
    ),
    "/bad/cut.jpg": Reply(
        body=jpeg(picture("cut", 300, 300)), cut=True, headers={"Content-Type": "image/jpeg"}
    ),
}
# what each bad URL must end as: status and a word of the reason
EXPECTED = {
    "/bad/html.jpg": ("rejected", "not an image"),
    "/bad/html-as-jpeg.jpg": ("rejected", "not an image"),
    "/bad/empty.jpg": ("rejected", "empty body"),
    "/bad/bomb.png": ("rejected", "decompression bomb"),
    "/bad/truncated-file.jpg": ("rejected", "truncated"),
    "/bad/sliver.png": ("rejected", "absurd size"),
    "/bad/garbage.jpg": ("rejected", "not a decodable image"),
    "/bad/huge.jpg": ("rejected", "size"),
    "/bad/gone.jpg": ("rejected", "HTTP 404"),
    "/bad/broken.jpg": ("failed", "HTTP 500"),
    "/bad/slow.jpg": ("failed", "timed out"),
    "/bad/cut.jpg": ("failed", "cut short"),
}


def project_file(folder: Path, catalog_url: str, records: list[dict], images: str = "") -> Path:
    write_jsonl(folder / "records.jsonl", records)
    (folder / "monalia.toml").write_text(
        f"""
[project]
catalog = "{catalog_url}"
data_dir = "data"
allow_file_urls = true          # a local source naming local files
allow_private_addresses = true  # the test's image server is on this machine

[sources.local]
plugin = "jsonl"
path = "records.jsonl"

[images]
width = {BOX}
height = {BOX}
retries = 2
backoff = 0.01
timeout = 0.5
max_pixels = 20_000_000
max_bytes = 200_000
{images}
""",
        encoding="utf-8",
    )
    return folder


def image_rows(catalog_url: str) -> dict[str, ImageRow]:
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        rows = session.scalars(select(ImageRow)).all()
        session.expunge_all()
    return {row.url.split("127.0.0.1:", 1)[-1].split("/", 1)[-1]: row for row in rows}


def stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "data" / "images").rglob("*") if p.is_file())


@pytest.fixture
def server():
    with IiifServer(extra=lambda path: BAD.get(path)) as server:
        yield server


def test_images_come_at_the_box_size_through_each_kind_of_service(
    server, tmp_path, catalog_url, cli
):
    for name in ("a", "b", "c", "d"):
        server.images[name] = (1000, 600)
    local = tmp_path / "local.png"
    picture("local", 300, 200).save(local)
    records = [
        # level 1: the service scales
        {
            "id": "r1",
            "images": [
                {
                    "url": f"{server.url}/image/a/full/max/0/default.jpg",
                    "iiif_service": f"{server.url}/image/a",
                }
            ],
        },
        # level 0: only the sizes info.json lists exist; two images of one host
        {
            "id": "r2",
            "images": [
                {
                    "url": f"{server.url}/static/b/full/1000,/0/default.jpg",
                    "iiif_service": f"{server.url}/static/b",
                }
            ],
        },
        {
            "id": "r3",
            "images": [
                {
                    "url": f"{server.url}/static/c/full/1000,/0/default.jpg",
                    "iiif_service": f"{server.url}/static/c",
                }
            ],
        },
        # no service: fetched whole, scaled down here
        {"id": "r4", "images": [f"{server.url}/image/d/full/max/0/default.jpg"]},
        # a local file
        {"id": "r5", "images": [local.as_uri()]},
        # the same URL on two records: fetched once
        {"id": "r6", "images": [f"{server.url}/image/d/full/max/0/default.jpg"]},
    ]
    project = project_file(tmp_path, catalog_url, records)
    assert cli("harvest", project=project).exit_code == 0
    result = cli("images", project=project)
    assert result.exit_code == 0, result.output
    rows = image_rows(catalog_url)
    assert all(row.status == "fetched" for row in rows.values()), {
        k: r.error for k, r in rows.items()
    }
    for row in rows.values():
        assert max(row.width, row.height) <= BOX and max(row.width, row.height) >= BOX // 2
        path = tmp_path / "data" / row.path
        assert path.name.startswith(row.sha256) and path.stat().st_size == row.bytes
        with Image.open(path) as image:
            assert image.size == (row.width, row.height)
        assert row.http_status in (200, None) and row.fetched_at is not None
    asked = [seen.path for seen in server.seen]
    assert "/image/a/full/!128,128/0/default.jpg" in asked
    # level 0: the sized request is refused, info.json lists the sizes, the nearest is taken
    assert "/static/b/info.json" in asked
    assert (
        "/static/b/full/250,/0/default.jpg" in asked
        and "/static/c/full/250,/0/default.jpg" in asked
    )
    assert asked.count("/image/d/full/max/0/default.jpg") == 1
    # files named by hash, one per distinct image, nothing else on disk
    assert {p.stem for p in stored_files(tmp_path)} == {row.sha256 for row in rows.values()}
    # a second run has nothing to do
    before = len(server.seen)
    assert cli("images", project=project).exit_code == 0
    assert len(server.seen) == before


@pytest.mark.slow
def test_every_bad_image_is_recorded_with_its_reason_and_never_stored(
    server, tmp_path, sqlite_url, cli
):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test
    server.images["good"] = (400, 300)
    records = [{"id": f"bad{i}", "images": [f"{server.url}{path}"]} for i, path in enumerate(BAD)]
    records.append(
        {
            "id": "good",
            "images": [
                {
                    "url": f"{server.url}/image/good/full/max/0/default.jpg",
                    "iiif_service": f"{server.url}/image/good",
                }
            ],
        }
    )
    project = project_file(tmp_path, catalog_url, records)
    cli("harvest", project=project)
    result = cli("images", project=project)
    assert result.exit_code == 0, result.output
    rows = image_rows(catalog_url)
    for path, (status, reason) in EXPECTED.items():
        row = rows[path.lstrip("/")]
        assert (row.status, reason in (row.error or "")) == (status, True), (
            path,
            row.status,
            row.error,
        )
        assert row.sha256 is None and row.path is None
    assert rows["image/good/full/max/0/default.jpg"].status == "fetched"
    assert [p.stem for p in stored_files(tmp_path)] == [
        rows["image/good/full/max/0/default.jpg"].sha256
    ]
    # the run counts them and keeps each reason
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        run = session.scalars(select(RunRow).where(RunRow.stage == "images")).one()
        assert (run.status, run.seen, run.new, run.failed) == ("done", len(BAD) + 1, 1, len(BAD))
    assert "item(s) failed and were skipped" in result.output
    # the 500 was tried 3 times (2 retries); a re-run retries transient failures only
    assert sum(seen.path == "/bad/broken.jpg" for seen in server.seen) == 3
    cli("images", project=project)
    assert sum(seen.path == "/bad/broken.jpg" for seen in server.seen) == 6
    assert sum(seen.path == "/bad/gone.jpg" for seen in server.seen) == 1
    # --retry-failed also retries what was refused
    cli("images", "--retry-failed", project=project)
    assert sum(seen.path == "/bad/gone.jpg" for seen in server.seen) == 2


def test_retry_after_is_obeyed(server, tmp_path, sqlite_url, cli):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test
    server.images["x"] = (200, 200)
    url = f"{server.url}/image/x/full/max/0/default.jpg"
    project = project_file(tmp_path, catalog_url, [{"id": "x", "images": [url]}])
    cli("harvest", project=project)
    server.fail_next(Reply(status=429, body="slow down", headers={"Retry-After": "1"}))
    assert cli("images", project=project).exit_code == 0
    tries = [seen.at for seen in server.seen if seen.path.startswith("/image/x/")]
    assert len(tries) == 2 and tries[1] - tries[0] >= 1.0
    assert image_rows(catalog_url)["image/x/full/max/0/default.jpg"].status == "fetched"


def test_a_too_long_retry_after_fails_the_image_with_the_reason(server, tmp_path, sqlite_url, cli):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test
    server.images["y"] = (200, 200)
    url = f"{server.url}/image/y/full/max/0/default.jpg"
    project = project_file(
        tmp_path, catalog_url, [{"id": "y", "images": [url]}], "max_retry_after = 5"
    )
    cli("harvest", project=project)
    server.fail_next(Reply(status=429, body="come back tomorrow", headers={"Retry-After": "86400"}))
    started = time.monotonic()
    assert cli("images", project=project).exit_code == 0
    assert time.monotonic() - started < 30
    row = image_rows(catalog_url)["image/y/full/max/0/default.jpg"]
    assert row.status == "failed" and "86400" in row.error and "429" in row.error


def test_limit_takes_that_many_and_the_next_run_goes_on(server, tmp_path, sqlite_url, cli):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test
    for i in range(10):
        server.images[f"n{i}"] = (200, 150)
    records = [
        {"id": f"n{i}", "images": [f"{server.url}/image/n{i}/full/max/0/default.jpg"]}
        for i in range(10)
    ]
    project = project_file(tmp_path, catalog_url, records)
    cli("harvest", project=project)
    cli("images", "--limit", "4", project=project)
    assert sum(row.status == "fetched" for row in image_rows(catalog_url).values()) == 4
    cli("images", project=project)
    assert sum(row.status == "fetched" for row in image_rows(catalog_url).values()) == 10


@pytest.mark.slow
def test_a_run_killed_mid_way_ends_with_every_image_exactly_once(tmp_path):
    """Two crawl processes share the work; one is killed outright. The run ends interrupted
    with what was stored counted, and the next run fetches what is left, nothing twice."""
    count = 200

    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    with IiifServer(extra=slow_images) as server:
        records = [{"id": f"k{i}", "images": [f"{server.url}/slow/k{i}.jpg"]} for i in range(count)]
        project = project_file(
            tmp_path, catalog_url, records, "processes = 2\nconcurrency = 2\nper_host = 2"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
        command = [sys.executable, "-m", "monalia", "-q", "--project", str(project)]
        subprocess.run([*command, "harvest"], env=env, check=True, capture_output=True)
        first = subprocess.Popen(
            [*command, "images"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        catalog = Catalog.open(catalog_url)
        deadline = time.monotonic() + 60
        killed = None
        while time.monotonic() < deadline and killed is None:
            time.sleep(0.1)
            with catalog.session() as session:
                fetched = session.query(ImageRow).filter(ImageRow.status == "fetched").count()
            children = children_of(first.pid)
            if fetched >= 20 and len(children) == 2:
                killed = children[0]
                os.kill(killed, signal.SIGKILL)
        assert killed is not None, "the first run fetched nothing"
        out, err = first.communicate(timeout=60)
        rows = image_rows(catalog_url)
        done_first = sum(row.status == "fetched" for row in rows.values())
        assert 20 <= done_first < count
        assert first.returncode != 0 and "interrupted" in out + err
        second = subprocess.run([*command, "images"], env=env, capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
    rows = image_rows(catalog_url)
    assert len(rows) == count and all(row.status == "fetched" for row in rows.values())
    hashes = [row.sha256 for row in rows.values()]
    assert len(set(hashes)) == count
    files = stored_files(tmp_path)
    assert sorted(p.stem for p in files) == sorted(hashes)  # one file each, no partial file left
    with catalog.session() as session:
        runs = session.scalars(
            select(RunRow).where(RunRow.stage == "images").order_by(RunRow.id)
        ).all()
        assert [run.status for run in runs] == ["interrupted", "done"]
        assert "crawl process" in runs[0].message and "without finishing" in runs[0].message
        # what each run counted is what it stored: together, every image once
        assert runs[0].new == done_first and runs[1].new == count - done_first


# -- the checks themselves ---------------------------------------------------------------------


def test_prepare_keeps_an_image_that_fits_and_scales_one_that_does_not():
    small = jpeg(picture("s", 100, 80))
    kept = prepare(small, "image/jpeg", (128, 128))
    assert kept.data == small and (kept.width, kept.height) == (100, 80) and not kept.scaled
    large = jpeg(picture("l", 1000, 500))
    scaled = prepare(large, "image/jpeg", (128, 128))
    assert (scaled.width, scaled.height) == (128, 64) and scaled.scaled
    assert scaled.extension == "jpg" and len(scaled.sha256) == 64


def test_prepare_refuses_a_bomb_before_decoding_it():
    limits = ImageLimits(max_pixels=1_000_000)
    started = time.monotonic()
    with pytest.raises(ImageRejected, match="decompression bomb"):
        prepare(png(30000, 30000), "image/png", (128, 128), limits)
    assert time.monotonic() - started < 5  # 900 million pixels were never allocated


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
def test_runs_killed_outright_count_exactly_what_they_stored(tmp_path):
    """The `monalia images` process itself is killed, twice: its crawls stop with it, and each
    run's counts, written with the images they count, add up to every image once."""
    count = 120
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    with IiifServer(extra=slow_images) as server:
        records = [{"id": f"k{i}", "images": [f"{server.url}/slow/k{i}.jpg"]} for i in range(count)]
        project = project_file(
            tmp_path, catalog_url, records, "processes = 2\nconcurrency = 2\nper_host = 2"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
        command = [sys.executable, "-m", "monalia", "-q", "--project", str(project)]
        subprocess.run([*command, "harvest"], env=env, check=True, capture_output=True)
        catalog = Catalog.open(catalog_url)
        for _ in range(2):
            with catalog.session() as session:
                before = session.query(ImageRow).filter(ImageRow.status == "fetched").count()
            kill_after = before + 10
            run = subprocess.Popen([*command, "images"], env=env, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.05)
                with catalog.session() as session:
                    fetched = session.query(ImageRow).filter(ImageRow.status == "fetched").count()
                if fetched >= kill_after:
                    break
            children = children_of(run.pid)
            run.send_signal(signal.SIGKILL)
            run.wait()
            # they stop with their parent and record what they did
            while any(alive(child) for child in children):
                assert time.monotonic() < deadline, "a crawl outlived its killed parent"
                time.sleep(0.05)
        last = subprocess.run([*command, "images"], env=env, capture_output=True, text=True)
        assert last.returncode == 0, last.stderr
    with catalog.session() as session:
        runs = session.scalars(
            select(RunRow).where(RunRow.stage == "images").order_by(RunRow.id)
        ).all()
    assert [run.status for run in runs] == ["interrupted", "interrupted", "done"]
    assert all(run.seen == run.new + run.failed for run in runs)
    assert sum(run.new for run in runs) == count, [run.new for run in runs]
