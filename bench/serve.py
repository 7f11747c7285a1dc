#!/usr/bin/env python3
"""bench/serve.py: the curators' workbench over 30,000 notices x 40 classes, as a browser asks it.

Builds the project bench/query.py builds (an embedded store with the records graph and a model graph
of 30,000 notices scored on 40 classes, with curation bands; the catalog with the model and its
dataset), adds what the workbench reads from the catalog (the records and their images) and a
model that can explain itself: EfficientNet-Lite0 with its packaged ImageNet weights and a head
of 40 classes, registered as the CNN trainer registers it, and one notice's image on disk.

Then starts `monalia serve` as a user does (a process of its own, on a free port) and asks it,
each --repeat times in turn, with one HTTP session as a browser keeps:
- a findings page of 50 (the search list of a class: its best-scored records, thumbnails'
  addresses, subjects and decisions), a different class each time;
- the noise page of a class (fewer than 50 findings a class here);
- a heat map of the notice's image for a class not asked before (Grad-CAM on the CPU, computed
  and cached; the first heat map, which loads the model, is reported apart).
Targets (absolute): findings page median <= 300 ms, heat map median <= 1 s on the CPU.

With --reviewers N, N reviewers work at once for --seconds S instead, each with its own session,
pausing --think seconds between actions as a person reading a page would: a findings page (a
random class, search or noise list), a decision on one of its cards (each with a comment of its
own), and every fifth turn a heat map. Then every decision answered 200 is looked up in the
catalog: it must be there exactly once. Reported: p95 and median page time, decisions, heat
maps, and any 5xx. Target: no 5xx, no decision lost or doubled, page p95 <= 300 ms. With
--catalog postgresql the catalog is a fresh schema of the PostgreSQL test database.

Usage: .venv/bin/python bench/serve.py [--notices N] [--classes C] [--repeat R]
       .venv/bin/python bench/serve.py --reviewers 20 --seconds 60 [--catalog sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from benchlib import MONALIA, Criterion, Samples, verdict  # noqa: E402

PAGE_TARGET_S = 0.3
HEAT_TARGET_S = 1.0
MODEL = "bench-efficientnet_lite0"


def load_query_bench():
    """bench/query.py's builders (bench/ is on the path)."""
    return importlib.import_module("query")


def add_records(catalog_url: str, rows, picture: Path, data_dir: Path) -> int:
    """The notices and their images in the catalog, as harvest and images leave them; the first
    notice's image fetched (the heat maps' image). Returns that image's id."""
    from sqlalchemy import insert

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import ImageRow, RecordRow
    from monalia.hashing import file_sha256

    now = datetime(2026, 1, 2, tzinfo=UTC)
    digest = file_sha256(picture)
    stored = data_dir / "images" / digest[:2] / f"{digest}.jpg"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(picture.read_bytes())
    catalog = Catalog.open(catalog_url)
    with catalog.engine.begin() as connection:
        connection.execute(
            insert(RecordRow),
            [
                {
                    "id": n + 1,
                    "source": row.source,
                    "source_id": row.source_id,
                    "iri": row.iri,
                    "title": row.title,
                    "creators": row.creators,
                    "content_hash": hashlib.sha256(row.iri.encode()).hexdigest(),
                    "first_seen": now,
                    "last_seen": now,
                    "landing_page": row.landing_page,
                }
                for n, row in enumerate(rows)
            ],
        )
        connection.execute(
            insert(ImageRow),
            [
                {
                    "id": n + 1,
                    "record_id": n + 1,
                    "position": 0,
                    "url": row.images[0].url,
                    "is_main": True,
                    "status": "fetched" if n == 0 else "pending",
                    "sha256": digest if n == 0 else None,
                    "path": f"images/{digest[:2]}/{digest}.jpg" if n == 0 else None,
                }
                for n, row in enumerate(rows)
            ],
        )
    catalog.engine.dispose()
    return 1


def write_model(folder: Path, catalog_url: str, classes) -> None:
    """EfficientNet-Lite0 (packaged ImageNet weights) with a 40-class head, as `monalia train`
    leaves a model: its folder with card and weights, the catalog row pointing at it."""
    import torch

    from monalia.hashing import file_sha256
    from monalia.learning.backbones import IMAGENET_MEAN, build_model  # noqa: F401

    model = build_model("efficientnet_lite0", len(classes), 0.2, weights="imagenet")
    target = folder / ".monalia" / "models" / MODEL
    target.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), target / "model.pt")
    card = {
        "name": MODEL,
        "trainer": "cnn",
        "backbone": "efficientnet_lite0",
        "classes": [{"uri": c.uri, "label": c.label, "threshold": 0.5} for c in classes],
        "input": {"size": 224, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "settings": {"dropout": 0.2, "channels_last": True},
        "weights": "model.pt",
        "weights_sha256": file_sha256(target / "model.pt"),
    }
    (target / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    from sqlalchemy import update

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import ModelRow

    catalog = Catalog.open(catalog_url)
    with catalog.engine.begin() as connection:
        connection.execute(
            update(ModelRow).where(ModelRow.name == MODEL).values(path=f"models/{MODEL}", card=card)
        )
    catalog.engine.dispose()


def postgres_catalog(args) -> str | None:
    """A fresh schema in the PostgreSQL test database, for --catalog postgresql."""
    if args.catalog != "postgresql":
        return None
    from sqlalchemy import create_engine, text

    base = os.environ.get(
        "MONALIA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    schema = f"bench_serve_{os.getpid()}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    atexit.register(drop)  # the bench leaves nothing in the database
    return f"{base}?options=-csearch_path%3D{schema}"


CARD = re.compile(r'class="card [^"]*"[^>]*data-record="([^"]+)" data-class="([^"]+)"')
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def reviewer(number: int, base: str, until: float, think: float, classes: int, image_id: int):
    """One reviewer's turns until `until`: what each request took and answered."""
    import requests

    rng = random.Random(number)
    session = requests.Session()
    seen = {"pages": [], "heat": [], "statuses": [], "decided": [], "errors": []}
    turn = 0
    while time.perf_counter() < until:
        turn += 1
        index, kind = rng.randrange(classes), rng.choice(["search", "noise"])
        try:
            began = time.perf_counter()
            page = session.get(
                f"{base}/findings",
                params={"class": index, "kind": kind, "reviewed": "all"},
                timeout=60,
            )
            seen["pages"].append(time.perf_counter() - began)
            seen["statuses"].append(page.status_code)
            cards = CARD.findall(page.text)
            token = CSRF.search(page.text)
            if cards and token:
                record, cls = rng.choice(cards)
                comment = f"bench-{number}-{turn}"
                answer = session.post(
                    f"{base}/decide",
                    data={
                        "record": record,
                        "class": cls,
                        "kind": kind,
                        "decision": rng.choice(["accept", "reject", "skip"]),
                        "comment": comment,
                    },
                    headers={"X-CSRF-Token": token.group(1), "Accept": "application/json"},
                    timeout=60,
                )
                seen["statuses"].append(answer.status_code)
                if answer.status_code == 200:
                    seen["decided"].append(comment)
            if turn % 5 == 0:
                began = time.perf_counter()
                heat = session.get(f"{base}/explain/{image_id}/{index}/heat", timeout=300)
                seen["heat"].append(time.perf_counter() - began)
                seen["statuses"].append(heat.status_code)
        except requests.RequestException as exc:
            seen["errors"].append(str(exc)[:200])
        time.sleep(think)
    return seen


def under_load(args, base: str, classes: int, image_id: int, environment, project: Path) -> None:
    """--reviewers: many reviewers at once, then every decision looked up in the catalog."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import ReviewDecisionRow
    from monalia.project import load_project

    until = time.perf_counter() + args.seconds
    with ThreadPoolExecutor(args.reviewers) as pool:
        work = [
            pool.submit(reviewer, n, base, until, args.think, classes, image_id)
            for n in range(args.reviewers)
        ]
        results = [future.result() for future in work]
    pages = Samples("page", "s")
    heat = Samples("heat map", "s")
    statuses: list[int] = []
    decided: list[str] = []
    errors: list[str] = []
    for seen in results:
        pages.values += seen["pages"]
        heat.values += seen["heat"]
        statuses += seen["statuses"]
        decided += seen["decided"]
        errors += seen["errors"]
    url = environment.get("MONALIA_CATALOG") or load_project(project).catalog_url
    catalog = Catalog.open(url)
    with catalog.session() as session:
        stored = dict(
            session.execute(
                select(ReviewDecisionRow.comment, func.count())
                .where(ReviewDecisionRow.comment.like("bench-%"))
                .group_by(ReviewDecisionRow.comment)
            ).all()
        )
    catalog.engine.dispose()
    lost = [comment for comment in decided if comment not in stored]
    doubled = [comment for comment, count in stored.items() if count > 1]
    server_errors = sum(status >= 500 for status in statuses)
    ordered = sorted(pages.values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")
    print(
        f"{args.reviewers} reviewers for {args.seconds:.0f} s on {args.catalog}: "
        f"{len(pages.values)} pages, {len(decided)} decisions, {len(heat.values)} heat maps; "
        f"5xx {server_errors}, connection errors {len(errors)}, decisions lost {len(lost)}, "
        f"doubled {len(doubled)}"
    )
    print(f"page: {pages.spread(3)}; p95 {p95 * 1000:.0f} ms")
    if heat.values:
        print(f"heat map: {heat.spread(3)}")
    criteria = [
        Criterion("page p95 under load", p95, PAGE_TARGET_S, True, "s"),
        Criterion("5xx answers", server_errors, 0, True, ""),
        Criterion("decisions lost or doubled", len(lost) + len(doubled), 0, True, ""),
    ]
    print(
        verdict(
            "serve under load",
            criteria,
            f"{args.reviewers} reviewers x {args.seconds:.0f} s ({args.think:g} s between "
            f"actions) on {args.catalog}, {args.notices:,} notices x {args.classes} classes: "
            f"page p95 {p95 * 1000:.0f} ms (median {pages.median * 1000:.0f} ms), "
            f"{len(decided)} decisions all stored once, {server_errors} 5xx",
        )
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=30_000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--keep", type=Path, help="build the project in DIR and keep it; reuse it when there"
    )
    parser.add_argument("--reviewers", type=int, default=0, help="reviewers at once (0: one)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they work")
    parser.add_argument("--think", type=float, default=1.0, help="pause between actions, s")
    parser.add_argument("--catalog", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.keep and args.catalog == "postgresql":
        parser.error("--keep keeps a SQLite catalog only")
    postgres = postgres_catalog(args)

    import requests
    from support.drawn_images import draw

    from monalia.rdf.scores import ModelClass, ModelInfo

    query = load_query_bench()
    classes = query.classes_of(args.classes)
    model = ModelInfo(
        name=MODEL,
        classes=tuple(ModelClass(c.uri, c.label, 0.5) for c in classes),
        backbone="efficientnet_lite0",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        bands=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = args.keep or Path(tmp)
        project = folder / "monalia.toml"
        image_id = 1
        if not project.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            rows, images = query.build(args.notices, classes)
            query.write_store(folder, rows, images, model)
            catalog_url = query.write_catalog(folder, model, classes, url=postgres)
            picture = folder / "picture.jpg"
            draw({"disc", "triangle"}, random.Random(3), size=800).save(picture, "JPEG", quality=90)
            image_id = add_records(catalog_url, rows, picture, folder / ".monalia")
            write_model(folder, catalog_url, classes)
            project = query.write_project(folder, catalog_url)
            text = project.read_text(encoding="utf-8")
            project.write_text(text + '\n[report]\nmethod = "threshold"\n', encoding="utf-8")
            del rows, images
            print(
                f"project: {args.notices:,} notices x {args.classes} classes "
                f"in {time.perf_counter() - started:.1f} s"
            )
        for cached in (folder / ".monalia" / "heatmaps").rglob("*.png"):
            cached.unlink()  # every heat map computed in the run

        port = free_port()
        started = time.perf_counter()
        environment = dict(os.environ)
        if postgres:
            environment["MONALIA_CATALOG"] = postgres
        server = subprocess.Popen(
            [MONALIA, "-p", str(project), "serve", "--port", str(port), "--reviewer", "bench"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit(f"monalia serve stopped: {server.stderr.read()}") from None
                    time.sleep(0.1)
            ready = time.perf_counter() - started
            print(f"monalia serve answering after {ready:.1f} s (findings of every class computed)")
            session = requests.Session()
            session.get(f"{base}/", timeout=60).raise_for_status()
            if args.reviewers:
                return under_load(args, base, len(classes), image_id, environment, project)

            pages = Samples("findings page of 50", "s")
            noise = Samples("noise page", "s")
            heat = Samples("heat map", "s")
            first_heat = None
            cards = 0
            for turn in range(args.repeat):
                index = turn % len(classes)
                began = time.perf_counter()
                answer = session.get(
                    f"{base}/findings",
                    params={"class": index, "kind": "search", "reviewed": "all"},
                    timeout=60,
                )
                pages.values.append(time.perf_counter() - began)
                answer.raise_for_status()
                cards = answer.text.count('class="card ')
                began = time.perf_counter()
                session.get(
                    f"{base}/findings", params={"class": index, "kind": "noise"}, timeout=60
                ).raise_for_status()
                noise.values.append(time.perf_counter() - began)
                began = time.perf_counter()
                made = session.get(f"{base}/explain/{image_id}/{index}/heat", timeout=120)
                seconds = time.perf_counter() - began
                made.raise_for_status()
                if first_heat is None:
                    first_heat = seconds  # loads the model
                else:
                    heat.values.append(seconds)
            if cards != 50:
                raise SystemExit(f"a findings page held {cards} findings, not 50")
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"findings page of 50: {pages.spread(3)}")
    print(f"noise page: {noise.spread(3)}")
    print(f"heat map: {heat.spread(3)}; the first, loading the model: {first_heat:.2f} s")
    criteria = [
        Criterion("findings page of 50 (median)", pages.median, PAGE_TARGET_S, True, "s"),
        Criterion("noise page (median)", noise.median, PAGE_TARGET_S, True, "s"),
        Criterion("heat map on the CPU (median)", heat.median, HEAT_TARGET_S, True, "s"),
    ]
    print(
        verdict(
            "serve",
            criteria,
            f"findings page {pages.median * 1000:.0f} ms, noise page {noise.median * 1000:.0f} ms, "
            f"heat map {heat.median:.2f} s (first {first_heat:.2f} s with the model's load), "
            f"server ready in {ready:.1f} s; {args.notices:,} notices x {args.classes} classes, "
            f"medians of {args.repeat}",
        )
    )


if __name__ == "__main__":
    main()
