#!/usr/bin/env python3
"""bench/map.py: the workbench's map of the collection at 100,000 images.

Builds a catalog the way `monalia images` and `monalia enrich` leave it: 100,000 records, each
with a fetched image, a model's scores for 10 classes (a million predictions), and the image
vectors of the `[similarity]` embedder (128 dimensions here, in 40 clusters, so the projection has
something to find). Then, as a user meets it:
- `monalia map` from a cold process: UMAP over every vector, once (kept for the next time), and
  again from the cache;
- the first opening of the Map page after the workbench starts: the map read from the cache and
  every point's class, finding, problem and source (`MapViews.map_payload`), as JSON;
- each later opening: the page's data as JSON (the workbench keeps it), and, when Debian's
  chromium is here, the browser fetching it and drawing every point (time to `data-drawn`).
Target: a later opening (data and drawing) under 2 s at 100,000 images; the first opening and the
projection are reported.

Usage: .venv/bin/python bench/map.py [--images N] [--classes C] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import shutil
import socketserver
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from benchlib import MONALIA, Criterion, timed_process, verdict  # noqa: E402

PROJECT = """
[project]
name = "map"
catalog = "sqlite:///{folder}/catalog.sqlite"
"""
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="csrf-token" content="x"><script src="workbench.js" defer></script></head><body>
<select id="map-colour"><option value="class">class</option></select><span id="map-status"></span>
<canvas id="map" width="900" height="700" data-points="points.json"></canvas>
<img id="map-preview"><ul id="map-legend"></ul></body></html>"""


def build(folder: Path, images: int, classes: int, seed: int = 0):
    from sqlalchemy import insert

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import (
        ImageRow,
        ModelClassRow,
        ModelRow,
        PredictionRow,
        RecordRow,
        utcnow,
    )
    from monalia.similarity.vectors import VectorStore

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "monalia.toml").write_text(PROJECT.format(folder=folder), encoding="utf-8")
    catalog = Catalog.open(f"sqlite:///{folder}/catalog.sqlite")
    now = utcnow()
    rng = np.random.default_rng(seed)
    keys = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(images)]
    with catalog.session() as session:
        session.execute(
            insert(RecordRow),
            [
                {
                    "id": n + 1,
                    "source": f"s{n % 3}",
                    "source_id": f"r{n}",
                    "iri": f"urn:bench:r{n}",
                    "title": f"Record {n}",
                    "raw": None,
                    "content_hash": "0",
                    "first_seen": now,
                    "last_seen": now,
                }
                for n in range(images)
            ],
        )
        session.execute(
            insert(ImageRow),
            [
                {
                    "id": n + 1,
                    "record_id": n + 1,
                    "position": 0,
                    "url": f"https://img/{n}.jpg",
                    "is_main": True,
                    "status": "fetched",
                    "sha256": keys[n],
                    "path": f"images/{keys[n][:2]}/{keys[n]}.jpg",
                }
                for n in range(images)
            ],
        )
        model = ModelRow(
            name="bench-model",
            trainer="cnn",
            backbone="bench",
            dataset_id=None,
            classes=[{"uri": f"urn:c{c}", "label": f"class {c}"} for c in range(classes)],
            thresholds={f"urn:c{c}": 0.5 for c in range(classes)},
            metrics={},
            card={},
            path=None,
            created_at=now,
        )
        session.add(model)
        session.flush()
        for c in range(classes):
            session.add(ModelClassRow(model_id=model.id, class_index=c, uri=f"urn:c{c}"))
        scores = rng.uniform(size=(images, classes)).astype(np.float32)
        for start in range(0, images, 20_000):
            session.execute(
                insert(PredictionRow),
                [
                    {
                        "model_id": model.id,
                        "image_id": n + 1,
                        "class_index": c,
                        "score": float(scores[n, c]),
                    }
                    for n in range(start, min(images, start + 20_000))
                    for c in range(classes)
                ],
            )
        session.commit()
        model_id = model.id
    centres = rng.normal(size=(40, 128))
    vectors = centres[rng.integers(0, 40, images)] + 0.3 * rng.normal(size=(images, 128))
    store = VectorStore(
        folder / ".monalia" / "similarity" / "imagenet-efficientnet_lite0",
        "imagenet-efficientnet_lite0",
        128,
    )
    store.add(keys, vectors.astype(np.float32))
    catalog.engine.dispose()
    return model_id


def payload_maker(folder: Path, model_id: int, classes: int):
    """The workbench's map views over the catalog, without the curation store."""
    from monalia.api.registry import default_registry
    from monalia.catalog.database import Catalog
    from monalia.project import load_project
    from monalia.web.map_views import MapViews

    project = load_project(folder / "monalia.toml", default_registry())
    views = MapViews()
    views.catalog = Catalog.open(project.catalog_url)
    views.project = project
    views.model = SimpleNamespace(id=model_id)
    views.classes = [
        SimpleNamespace(uri=f"urn:c{c}", label=f"class {c}", threshold=0.5) for c in range(classes)
    ]
    views._lists = {}
    views.warm = lambda: None
    return views


def browser_draw(folder: Path, data: bytes) -> float | None:
    try:
        from test_curation import browser
    except Exception:
        return None
    site = folder / "site"
    site.mkdir(exist_ok=True)
    (site / "map.html").write_text(PAGE, encoding="utf-8")
    (site / "points.json").write_bytes(data)
    shutil.copy(REPO / "monalia" / "templates" / "workbench" / "workbench.js", site)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args):
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        driver = browser()
    except Exception:
        server.shutdown()
        return None
    try:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/map.html")
            while not driver.find_element("css selector", "#map").get_attribute("data-drawn"):
                time.sleep(0.01)
            times.append(time.perf_counter() - started)
        return sorted(times)[1]
    finally:
        driver.quit()
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-map-") as tmp:
        folder = args.keep or Path(tmp)
        started = time.perf_counter()
        model_id = build(folder, args.images, args.classes)
        print(
            f"bench/map.py: {args.images:,} images, {args.classes} classes, 128-d vectors "
            f"(built in {time.perf_counter() - started:.0f} s)"
        )
        projected, done = timed_process([str(MONALIA), "--project", str(folder), "map"])
        print(
            f"monalia map, cold process, projection computed: {projected:.1f} s ({done.stdout.strip()})"
        )
        cached, done = timed_process([str(MONALIA), "--project", str(folder), "map"])
        print(f"monalia map, cold process, from the cache: {cached:.1f} s")
        views = payload_maker(folder, model_id, args.classes)
        started = time.perf_counter()
        data = orjson.dumps(views.map_payload())
        first = time.perf_counter() - started
        warm = []
        for _ in range(5):
            started = time.perf_counter()
            data = orjson.dumps(views.map_payload())
            warm.append(time.perf_counter() - started)
        later = sorted(warm)[2]
        print(
            f"first opening's data: {first:.2f} s; later openings: {later * 1000:.0f} ms "
            f"({len(data) / 1e6:.1f} MB of JSON)"
        )
        drawn = browser_draw(folder, data)
        if drawn is not None:
            print(
                f"browser: page, data and {args.images:,} points drawn in {drawn:.2f} s (median of 3)"
            )
        else:
            print("browser: no chromium here, drawing not timed")
    opening = later + (drawn or 0.0)
    criteria = [
        Criterion(
            "a later opening of the Map page (data and drawing)",
            opening,
            2.0,
            at_most=True,
            unit="s",
        )
    ]
    figures = (
        f"{args.images:,} images: later opening {opening:.2f} s"
        + (f" (data {later:.2f} s, browser {drawn:.2f} s)" if drawn is not None else " (data only)")
        + f", first opening {first:.2f} s, UMAP {projected:.0f} s once (cache read {cached:.1f} s)"
    )
    print(verdict("map", criteria, figures))


if __name__ == "__main__":
    main()
