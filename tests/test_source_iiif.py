"""Harvesting IIIF: real v2 and v3 manifests and collections served locally (ids rewritten to
the local server), crawled in their own process, with the server's failures and a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import records_of
from sqlalchemy import select
from support.iiif_server import IiifServer, fixture, local_copy
from support.servers import Reply

from monalia.catalog.database import Catalog
from monalia.catalog.models import RunEventRow, RunRow

V3 = "http://iiif.io/api/presentation/3/context.json"


def project_file(
    folder: Path, catalog_url: str, url: str, extra: str = "", retries: int = 2
) -> Path:
    (folder / "monalia.toml").write_text(
        f"""
[project]
catalog = "{catalog_url}"

[sources.museum]
plugin = "iiif"
url = "{url}"
languages = ["en", "fr"]
{extra}

[sources.museum.http]
retries = {retries}
backoff = 0.01
timeout = 2
""",
        encoding="utf-8",
    )
    return folder


def runs(catalog_url: str) -> list[RunRow]:
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        rows = session.scalars(select(RunRow).order_by(RunRow.id)).all()
        session.expunge_all()
    return rows


def serve_shared(server: IiifServer, shared: Path) -> dict[str, str]:
    """Put the shared fixtures on the local server: a top collection (v3) nesting the real v2
    collection (cut to the manifests served here) and the cookbook's v3 collection; returns the
    local id of each manifest by fixture name."""
    base = server.url
    local: dict[str, str] = {}

    def put(name: str, doc) -> str:
        path = f"/{name}"
        server.documents[path] = doc
        return base + path

    v2_manifests = [
        "mirador_v2_299843",
        "mirador_v2_BibliographicResource_3000126341277",
        "cookbook_0057-publishing-v2-and-v3_manifest-v2",
    ]
    for name in v2_manifests:
        doc = fixture(shared / "iiif" / "v2" / f"{name}.json")
        doc = local_copy(doc, {doc["@id"]: f"{base}/v2/{name}.json"})
        local[name] = put(f"v2/{name}.json", doc)
    collection = fixture(shared / "iiif" / "v2" / "mirador_v2_collection.json")
    collection["manifests"] = [
        dict(entry, **{"@id": local[name]})
        for entry, name in zip(collection["manifests"], v2_manifests, strict=False)
    ]
    collection = local_copy(collection, {collection["@id"]: f"{base}/v2/collection.json"})
    put("v2/collection.json", collection)

    v3_named = {
        "manifest-01.json": "cookbook_0005-image-service_manifest",
        "manifest-02.json": "cookbook_0006-text-language_manifest",
    }
    for member, name in v3_named.items():
        text = (shared / "iiif" / "v3" / f"{name}.json").read_text(encoding="utf-8")
        text = text.replace("{{ id.url }}", f"{base}/v3/cookbook/{member}").replace(
            "{{ id.path }}", f"{base}/v3/cookbook/{name}"
        )
        local[name] = put(f"v3/cookbook/{member}", json.loads(text))
    text = (shared / "iiif" / "v3" / "cookbook_0032-collection_collection.json").read_text(
        encoding="utf-8"
    )
    text = text.replace("{{ id.url }}", f"{base}/v3/cookbook/collection.json").replace(
        "{{ id.path }}", f"{base}/v3/cookbook"
    )
    put("v3/cookbook/collection.json", json.loads(text))

    direct = ["cookbook_0008-rights_manifest", "cookbook_0033-choice_manifest", "mirador_v3_001"]
    for name in direct:
        text = (shared / "iiif" / "v3" / f"{name}.json").read_text(encoding="utf-8")
        text = text.replace("{{ id.url }}", f"{base}/v3/{name}.json").replace(
            "{{ id.path }}", f"{base}/v3/{name}"
        )
        doc = json.loads(text)
        doc = local_copy(doc, {doc["id"]: f"{base}/v3/{name}.json"})
        local[name] = put(f"v3/{name}.json", doc)
    put(
        "top.json",
        {
            "@context": V3,
            "id": f"{base}/top.json",
            "type": "Collection",
            "label": {"en": ["Everything"]},
            "items": [
                {"id": f"{base}/v2/collection.json", "type": "Collection"},
                {"id": f"{base}/v3/cookbook/collection.json", "type": "Collection"},
                *({"id": local[name], "type": "Manifest"} for name in direct),
                # listed twice: fetched once
                {"id": local["cookbook_0008-rights_manifest"], "type": "Manifest"},
            ],
        },
    )
    return local


@pytest.mark.slow
def test_real_v2_and_v3_collections_and_manifests_are_harvested(
    real_fixtures, tmp_path, catalog_url, cli
):
    with IiifServer() as server:
        local = serve_shared(server, real_fixtures)
        project = project_file(tmp_path, catalog_url, f"{server.url}/top.json")
        result = cli("harvest", project=project)
        assert result.exit_code == 0, result.output
        fetched = [seen.path for seen in server.seen]
        # a second crawl reads everything again (to see changes) and finds it unchanged
        assert cli("harvest", project=project).exit_code == 0
    catalog = Catalog.open(catalog_url)
    records = records_of(catalog)
    assert set(records) == set(local.values())
    assert len(fetched) == len(set(fetched))  # every document once, the one listed twice too
    harvard = records[local["mirador_v2_299843"]]
    assert harvard.title == "Self-Portrait Dedicated to Paul Gauguin"
    assert harvard.images[0].iiif_service == "https://ids.lib.harvard.edu/ids/iiif/47174896"
    assert (
        records[local["cookbook_0008-rights_manifest"]].rights
        == "http://creativecommons.org/licenses/by-sa/3.0/"
    )
    whistler = records[local["cookbook_0006-text-language_manifest"]]
    assert whistler.title == "Whistler's Mother"
    assert {s.lang for s in whistler.subjects} == {"en", "fr"}
    bodleian = records[local["mirador_v3_001"]]
    assert [s.label for s in bodleian.subjects][:2] == ["Curiosities and wonders", "Dwarfs"]
    assert all(record.images and record.images[0].is_main for record in records.values())
    first, second = runs(catalog_url)
    assert (first.stage, first.plugin, first.target, first.status) == (
        "harvest",
        "iiif",
        "museum",
        "done",
    )
    assert (first.new, first.failed) == (len(local), 0)
    assert (second.status, second.new, second.unchanged) == ("done", 0, len(local))


def manifest(base: str, n: int, **extra) -> dict:
    return {
        "@context": V3,
        "id": f"{base}/m/{n}.json",
        "type": "Manifest",
        "label": {"en": [f"Object {n}"]},
        "metadata": [{"label": {"en": ["Subject"]}, "value": {"en": ["horse; tree"]}}],
        "items": [
            {
                "id": f"{base}/m/{n}/canvas/{c}",
                "type": "Canvas",
                "label": {"none": [f"view {c}"]},
                "items": [
                    {
                        "id": f"{base}/m/{n}/page/{c}",
                        "type": "AnnotationPage",
                        "items": [
                            {
                                "id": f"{base}/m/{n}/anno/{c}",
                                "type": "Annotation",
                                "motivation": "painting",
                                "body": {
                                    "id": f"{base}/image/o{n}-{c}/full/max/0/default.jpg",
                                    "type": "Image",
                                    "service": [
                                        {
                                            "id": f"{base}/image/o{n}-{c}",
                                            "type": "ImageService3",
                                            "profile": "level1",
                                        }
                                    ],
                                },
                                "target": f"{base}/m/{n}/canvas/{c}",
                            }
                        ],
                    }
                ],
            }
            for c in (1, 2)
        ],
        **extra,
    }


def collection(base: str, numbers, path: str = "/c.json", extra_items=()) -> dict:
    return {
        "@context": V3,
        "id": f"{base}{path}",
        "type": "Collection",
        "label": {"en": ["test"]},
        "items": [{"id": f"{base}/m/{n}.json", "type": "Manifest"} for n in numbers]
        + list(extra_items),
    }


def test_server_failures_are_retried_or_recorded_and_the_crawl_goes_on(tmp_path, sqlite_url, cli):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test

    def failures(path: str) -> Reply | None:
        return {
            "/m/bad-json.json": Reply(
                body='{"type": "Manifest", "id": ', headers={"Content-Type": "application/json"}
            ),
            "/m/not-iiif.json": Reply(body={"hello": "world"}),
            "/m/no-id.json": Reply(body={"@context": V3, "type": "Manifest", "label": "x"}),
            "/m/gone.json": Reply(status=404, body="gone"),
        }.get(path)

    with IiifServer(extra=failures) as server:
        base = server.url
        for n in range(6):
            server.documents[f"/m/{n}.json"] = manifest(base, n)
        server.documents["/c.json"] = collection(
            base,
            range(6),
            extra_items=[
                {"id": f"{base}/m/{name}.json", "type": "Manifest"}
                for name in ("bad-json", "not-iiif", "no-id", "gone")
            ],
        )
        # the first request (the collection) meets a 500, a 429 with Retry-After and a cut
        # body before its answer: 3 retries get it
        server.fail_next(
            Reply(status=500, body="oops"),
            Reply(status=429, body="slow down", headers={"Retry-After": "1"}),
            Reply(body=json.dumps(manifest(base, 0)), cut=True),
        )
        project = project_file(tmp_path, catalog_url, f"{base}/c.json", retries=3)
        result = cli("harvest", project=project)
        assert result.exit_code == 0, result.output
        tries = [seen.at for seen in server.seen if seen.path == "/c.json"]
    assert len(tries) == 4 and tries[2] - tries[1] >= 1.0  # Retry-After obeyed
    records = records_of(Catalog.open(catalog_url))
    assert sorted(records) == sorted(f"{base}/m/{n}.json" for n in range(6))
    [run] = runs(catalog_url)
    assert (run.status, run.new, run.failed) == ("done", 6, 4)
    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        events = {
            e.item.rsplit("/", 1)[-1]: e.message for e in session.scalars(select(RunEventRow))
        }
    assert "not JSON" in events["bad-json.json"]
    assert "not a IIIF collection or manifest" in events["not-iiif.json"]
    assert "has no id" in events["no-id.json"]
    assert "HTTP 404" in events["gone.json"]
    assert "4 item(s) failed" in result.output


def test_an_unreachable_start_url_fails_the_run_with_the_reason(tmp_path, sqlite_url, cli):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test
    with IiifServer() as server:
        project = project_file(tmp_path, catalog_url, f"{server.url}/nothing-here.json")
        result = cli("harvest", project=project)
    [run] = runs(catalog_url)
    assert run.status == "failed" and "nothing-here.json" in run.message and "404" in run.message
    assert "failed" in result.output


@pytest.mark.slow
def test_one_record_per_canvas_and_limit(tmp_path, sqlite_url, cli):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test
    with IiifServer() as server:
        base = server.url
        for n in range(5):
            server.documents[f"/m/{n}.json"] = manifest(base, n)
        server.documents["/c.json"] = collection(base, range(5))
        project = project_file(
            tmp_path, catalog_url, f"{base}/c.json", 'records = "canvas"\nconcurrency = 1'
        )
        assert cli("harvest", "--limit", "2", project=project).exit_code == 0
        first = records_of(Catalog.open(catalog_url))
        assert 2 <= len(first) < 10
        assert cli("harvest", project=project).exit_code == 0
    records = records_of(Catalog.open(catalog_url))
    assert len(records) == 10
    # a canvas record is keyed by the manifest it was fetched from, then the canvas
    record = records[f"{base}/m/3.json#canvas={base}/m/3/canvas/2"]
    assert record.title == "Object 3 — view 2"
    assert [image.iiif_service for image in record.images] == [f"{base}/image/o3-2"]
    assert runs(catalog_url)[0].message.startswith("stopped at --limit 2")


def test_the_dry_run_of_a_crawled_source_counts_what_the_harvest_then_stores(
    tmp_path, sqlite_url, cli
):
    catalog_url = sqlite_url  # PostgreSQL is covered by the first test
    with IiifServer() as server:
        base = server.url
        for n in range(4):
            server.documents[f"/m/{n}.json"] = manifest(base, n)
        server.documents["/c.json"] = collection(
            base, range(5), extra_items=[{"id": "{{ id.path }}/x.json", "type": "Manifest"}]
        )
        project = project_file(tmp_path, catalog_url, f"{base}/c.json", retries=0)
        preview = cli("harvest", "--dry-run", project=project)
        assert preview.exit_code == 0, preview.output
        assert "6 read, 4 new, 0 changed, 0 unchanged, 2 failed" in preview.output
        assert "is not an absolute http(s) URL" in preview.output
        assert runs(catalog_url) == []  # nothing written, not even a run
        assert cli("harvest", project=project).exit_code == 0
        [run] = runs(catalog_url)
        assert (run.seen, run.new, run.failed) == (6, 4, 2)
        again = cli("harvest", "--dry-run", project=project)
        assert "6 read, 0 new, 0 changed, 4 unchanged, 2 failed" in again.output


def test_members_that_are_not_urls_fail_one_by_one_and_the_rest_is_harvested(
    real_fixtures, tmp_path, sqlite_url, cli
):
    """The cookbook's multi-volume collection (recipe 0030) lists its volumes by template ids,
    as the newspaper one (0068) does: each is one failed item with its reason, and the members
    listed after them are still read."""
    with IiifServer() as server:
        base = server.url
        newspaper = fixture(
            real_fixtures / "iiif" / "v3" / "cookbook_0030-multi-volume_collection.json"
        )
        server.documents["/m/1.json"] = manifest(base, 1)
        newspaper["items"].append({"id": f"{base}/m/1.json", "type": "Manifest"})
        server.documents["/news.json"] = newspaper
        project = project_file(tmp_path, sqlite_url, f"{base}/news.json", retries=0)
        assert cli("harvest", project=project).exit_code == 0
    [run] = runs(sqlite_url)
    templated = len(newspaper["items"]) - 1
    assert (run.status, run.new, run.failed) == ("done", 1, templated)
    assert run.seen == run.new + run.failed
    with Catalog.open(sqlite_url).session() as session:
        messages = session.scalars(
            select(RunEventRow.message).where(RunEventRow.level == "error")
        ).all()
    assert len(messages) == templated
    assert all("is not an absolute http(s) URL" in m for m in messages)


def test_two_manifests_claiming_one_id_stay_two_records_and_the_clash_is_reported(
    tmp_path, sqlite_url, cli
):
    with IiifServer() as server:
        base = server.url
        for n in range(3):
            server.documents[f"/m/{n}.json"] = manifest(base, n)
        # a copy published at another address, still claiming the first manifest's id
        server.documents["/copy/0.json"] = dict(manifest(base, 0), label={"en": ["Copy"]})
        server.documents["/c.json"] = collection(
            base, range(3), extra_items=[{"id": f"{base}/copy/0.json", "type": "Manifest"}]
        )
        project = project_file(tmp_path, sqlite_url, f"{base}/c.json", "concurrency = 1")
        result = cli("harvest", project=project)
        assert result.exit_code == 0 and "1 warning(s)" in result.output
    [run] = runs(sqlite_url)
    assert (run.seen, run.new, run.failed, run.warnings) == (4, 4, 0, 1)
    records = records_of(Catalog.open(sqlite_url))
    assert records[f"{base}/copy/0.json"].title == "Copy"
    assert records[f"{base}/m/0.json"].title == "Object 0"
    with Catalog.open(sqlite_url).session() as session:
        [event] = session.scalars(select(RunEventRow)).all()
    assert event.level == "warning" and f"claims id {base}/m/0.json" in event.message


@pytest.mark.slow
def test_limit_repeated_goes_through_manifests_whose_ids_differ_from_their_urls(
    tmp_path, sqlite_url, cli
):
    """Manifests reached through a redirect, claiming ids that are not where they were
    fetched from: each --limit run goes further, and together they read everything once."""

    def moved(path: str) -> Reply | None:
        if path.startswith("/old/"):
            return Reply(status=301, headers={"Location": f"{server.url}/new/{path[5:]}"}, body="")
        if path.startswith("/new/"):
            number = int(path[5:].split(".")[0])
            return Reply(body=manifest(server.url, number, id=f"urn:museum:object:{number}"))
        return None

    with IiifServer(extra=moved) as server:
        base = server.url
        server.documents["/c.json"] = {
            **collection(base, ()),
            "items": [{"id": f"{base}/old/{n}.json", "type": "Manifest"} for n in range(6)],
        }
        project = project_file(tmp_path, sqlite_url, f"{base}/c.json", "concurrency = 1")
        for _ in range(3):
            assert cli("harvest", "--limit", "2", project=project).exit_code == 0
    records = records_of(Catalog.open(sqlite_url))
    assert sorted(records) == sorted(f"{base}/old/{n}.json" for n in range(6))
    assert sum(run.new for run in runs(sqlite_url)) == 6


@pytest.mark.slow
def test_a_crawl_killed_mid_way_resumes_without_gaps_or_duplicates(tmp_path):
    count = 300

    def slow(path: str) -> Reply | None:
        # manifests answered slowly, so the kill falls in the middle of the crawl
        if path.startswith("/m/"):
            number = int(path[3:].split(".")[0])
            return Reply(body=manifest(server.url, number), delay=0.03)
        return None

    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    with IiifServer(extra=slow) as server:
        base = server.url
        server.documents["/c.json"] = collection(base, range(count))
        project = project_file(
            tmp_path, catalog_url, f"{base}/c.json", "concurrency = 2\nper_host = 2"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
        command = [sys.executable, "-m", "monalia", "-q", "--project", str(project), "harvest"]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        catalog = Catalog.open(catalog_url)
        deadline, pid = time.monotonic() + 60, None
        while time.monotonic() < deadline and pid is None:
            time.sleep(0.1)
            with catalog.session() as session:
                run = session.scalars(select(RunRow)).first()
                if run is not None and run.new >= 20:
                    pid = run.pid
        assert pid is not None, "the first crawl stored nothing"
        os.kill(pid, signal.SIGKILL)
        first.wait(30)
        stored_first = len(records_of(catalog))
        assert 20 <= stored_first < count
        seen_before = len(server.seen)
        second = subprocess.run(command, env=env, capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
        asked_again = [s.path for s in server.seen[seen_before:] if s.path.startswith("/m/")]
    records = records_of(catalog)
    assert sorted(records) == sorted(f"{base}/m/{n}.json" for n in range(count))
    # the resumed crawl skipped what the killed one had stored
    assert len(asked_again) <= count - stored_first + 4
    first_run, second_run = runs(catalog_url)
    assert first_run.status == "interrupted" and second_run.status == "done"
    assert second_run.new == count - stored_first
    assert "skipped" in second_run.message


def test_images_on_the_host_the_source_names_are_fetched_without_allowing_private_ones(
    tmp_path, sqlite_url, cli
):
    """The manual: the host you configured may be a private address, its images included."""
    from sqlalchemy import select

    from monalia.catalog.models import ImageRow

    with IiifServer() as server:
        base = server.url  # 127.0.0.1: private, and the host the source names
        for n in range(3):
            server.documents[f"/m/{n}.json"] = manifest(base, n)
            for c in (1, 2):  # the manifests' two canvases
                server.images[f"o{n}-{c}"] = (400, 300)
        server.documents["/c.json"] = collection(base, range(3))
        project = project_file(tmp_path, sqlite_url, f"{base}/c.json", "concurrency = 1")
        assert cli("harvest", project=project).exit_code == 0
        result = cli("images", project=project)
        assert result.exit_code == 0, result.output
    catalog = Catalog.open(sqlite_url)
    with catalog.session() as session:
        statuses = session.scalars(select(ImageRow.status)).all()
    assert statuses and set(statuses) == {"fetched"}, statuses
