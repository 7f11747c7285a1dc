#!/usr/bin/env python3
"""bench/catalog.py: prediction rows per second into the catalog, as enrich writes them.

monalia: `monalia.stages.enrich.write_predictions` for every chunk of scored images (default
20,000 images x 40 classes, chunks of 1,000 images): delete the chunk's old rows, insert the
new ones in bulk (COPY into PostgreSQL, executemany into SQLite), write the run's counts, commit.
That is what one enrich process does behind a GPU.
Reference, same run, same rows into the same table with its indexes: a bare COPY per chunk on
PostgreSQL (psycopg 3, one transaction per chunk, nothing else), a bare executemany per chunk on
SQLite (the standard library's sqlite3).
Runs alternate, --repeat times (default 3); the table is emptied before each.
Targets: >= 0.8x the bare writer on each database; >= 250,000 rows/s into PostgreSQL (one fast
GPU scoring 5,000 images/s with 40 classes).

PostgreSQL: the server at --postgres (default the local one), in a database `monalia_bench`
that the bench creates and drops.

Usage: .venv/bin/python bench/catalog.py [--images N] [--classes C] [--chunk K] [--repeat R]
       [--postgres URL] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from benchlib import Criterion, alternate, verdict  # noqa: E402
from sqlalchemy import text  # noqa: E402

from monalia.api.trainer import ChunkScores  # noqa: E402
from monalia.catalog.bulk import (  # noqa: E402
    PREDICTION_COLUMNS,
    SCORED_IMAGE_COLUMNS,
    prepare_model,
)
from monalia.catalog.database import Catalog  # noqa: E402
from monalia.catalog.run_tracking import RunTracker  # noqa: E402
from monalia.stages.enrich import PendingImage, write_predictions  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def populate(catalog: Catalog, images: int, classes: int):
    """Records, images and a model to score: the rows the predictions point to."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with catalog.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO records (id, source, source_id, iri, creators, content_hash, "
                "first_seen, last_seen) VALUES (:id, 's', :sid, :iri, '[]', 'h', :now, :now)"
            ),
            [{"id": n + 1, "sid": f"r{n}", "iri": f"urn:r{n}", "now": now} for n in range(images)],
        )
        connection.execute(
            text(
                "INSERT INTO images (id, record_id, url, position, is_main, status) "
                "VALUES (:id, :id, :url, 0, true, 'fetched')"
            ),
            [{"id": n + 1, "url": f"https://img/{n}.jpg"} for n in range(images)],
        )
        uris = [f"urn:class/{k}" for k in range(classes)]
        connection.execute(
            text(
                "INSERT INTO models (id, name, trainer, classes, created_at) "
                "VALUES (1, 'bench', 'bench', :classes, :now)"
            ),
            {
                "classes": "[" + ",".join(f'{{"uri": "{u}", "label": "{u}"}}' for u in uris) + "]",
                "now": now,
            },
        )
    from monalia.catalog.lookups import find_model

    return find_model(catalog, "bench"), uris


def chunks(images: int, classes: int, size: int):
    rng = np.random.default_rng(0)
    for start in range(0, images, size):
        ids = range(start + 1, min(images, start + size) + 1)
        items = [PendingImage(n, n, Path(f"/x/{n}.jpg"), f"{n:064x}", f"u{n}") for n in ids]
        scores = rng.random((len(items), classes), dtype=np.float32)
        yield ChunkScores(items, scores, np.arange(len(items)), [])


def empty(catalog: Catalog) -> None:
    if catalog.engine.dialect.name == "postgresql":
        with catalog.engine.begin() as connection:
            connection.execute(text("TRUNCATE predictions, scored_images"))
        return
    with catalog.engine.begin() as connection:
        connection.execute(text("DELETE FROM predictions"))
        connection.execute(text("DELETE FROM scored_images"))


def monalia_writer(catalog, model, prepared, total_rows):
    def run() -> float:
        empty(catalog)
        with RunTracker(catalog, "enrich", "bench", "bench", {}) as tracker:
            started = time.perf_counter()
            for chunk in prepared:
                write_predictions(catalog, model, chunk, tracker)
            seconds = time.perf_counter() - started
        return total_rows / seconds

    return run


def bare_rows(prepared, model_id):
    """Each chunk's rows, built before the clock starts: (predictions, scored_images)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return [
        (
            [
                (model_id, item.image_id, k, float(score))
                for item, scores in zip(chunk.items, chunk.scores.tolist(), strict=True)
                for k, score in enumerate(scores)
            ],
            [
                (model_id, item.image_id, item.record_id, item.sha256, None, now)
                for item in chunk.items
            ],
        )
        for chunk in prepared
    ]


def bare_postgres(catalog, rows_per_chunk, total_rows, dsn: str, table: str):
    import psycopg

    predictions = f"COPY {table} ({', '.join(PREDICTION_COLUMNS)}) FROM STDIN"
    scored = f"COPY scored_images ({', '.join(SCORED_IMAGE_COLUMNS)}) FROM STDIN"

    def run() -> float:
        empty(catalog)
        with psycopg.connect(dsn) as connection:
            started = time.perf_counter()
            for rows, images in rows_per_chunk:
                with connection.transaction(), connection.cursor() as cursor:
                    with cursor.copy(predictions) as copy:
                        for row in rows:
                            copy.write_row(row)
                    with cursor.copy(scored) as copy:
                        for row in images:
                            copy.write_row(row)
            seconds = time.perf_counter() - started
        return total_rows / seconds

    return run


def bare_sqlite(catalog, rows_per_chunk, total_rows, path: Path):
    predictions = ", ".join(PREDICTION_COLUMNS)
    scored = ", ".join(SCORED_IMAGE_COLUMNS)

    def run() -> float:
        empty(catalog)
        connection = sqlite3.connect(path)
        started = time.perf_counter()
        for rows, images in rows_per_chunk:
            with connection:
                connection.executemany(
                    f"INSERT INTO predictions ({predictions}) VALUES (?, ?, ?, ?)", rows
                )
                connection.executemany(
                    f"INSERT INTO scored_images ({scored}) VALUES (?, ?, ?, ?, ?, ?)",
                    [(*row[:5], row[5].strftime("%Y-%m-%d %H:%M:%S.%f")) for row in images],
                )
        seconds = time.perf_counter() - started
        connection.close()
        return total_rows / seconds

    return run


def query_times(catalog, model, classes: int) -> str:
    """Milliseconds of what the stages ask the table, at the size it holds (medians of 5, each
    a different class or image): a class's first 50 by score (search), a class's scores in a
    band (noise and silence), one image's scores (a record page)."""
    import statistics

    asked = {
        "top 50 of a class": "SELECT image_id, score FROM predictions WHERE model_id = :m "
        "AND class_index = :k ORDER BY score DESC LIMIT 50",
        "a class's band 0.40-0.41": "SELECT count(*) FROM predictions WHERE model_id = :m "
        "AND class_index = :k AND score BETWEEN 0.40 AND 0.41",
        "one image": "SELECT class_index, score FROM predictions WHERE model_id = :m "
        "AND image_id = :i",
    }
    figures = []
    with catalog.engine.connect() as connection:
        for what, sql in asked.items():
            took = []
            for n in range(5):
                started = time.perf_counter()
                connection.execute(
                    text(sql), {"m": model.id, "k": (n * 7) % classes, "i": 1 + n * 9973}
                ).all()
                took.append((time.perf_counter() - started) * 1000)
            figures.append(f"{what} {statistics.median(took):.1f} ms")
    return ", ".join(figures)


def grown_table(catalog, args) -> str:
    """The table grown to --query-images images (written as enrich writes them, the records and
    images added first), then the queries timed; the figures for the last line."""
    from sqlalchemy import text as sql

    images = args.query_images
    with catalog.engine.begin() as connection:
        connection.execute(sql("TRUNCATE predictions, scored_images"))
    for start in range(args.images, images, 100_000):
        add_images(catalog, start, min(images, start + 100_000))
    from monalia.catalog.lookups import find_model

    model = find_model(catalog, "bench")
    started = time.perf_counter()
    with RunTracker(catalog, "enrich", "bench", "bench", {}) as tracker:
        for chunk in chunks(images, args.classes, 10_000):
            write_predictions(catalog, model, chunk, tracker)
    seconds = time.perf_counter() - started
    with catalog.engine.begin() as connection:
        connection.execute(sql("ANALYZE predictions"))
        size = connection.execute(
            sql("SELECT pg_total_relation_size(:t)"), {"t": f"predictions_m{model.id}"}
        ).scalar()
    rows = images * args.classes
    print(f"grown to {rows:,} rows in {seconds:.0f} s ({rows / seconds:,.0f} rows/s)")
    return (
        f"at {rows:,} rows ({size / 1e9:.1f} GB with indexes, written at "
        f"{rows / seconds:,.0f} rows/s): {query_times(catalog, model, args.classes)}"
    )


def add_images(catalog, first: int, last: int) -> None:
    """Records and images first+1..last, as populate makes them."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with catalog.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO records (id, source, source_id, iri, creators, content_hash, "
                "first_seen, last_seen) VALUES (:id, 's', :sid, :iri, '[]', 'h', :now, :now)"
            ),
            [
                {"id": n, "sid": f"r{n}", "iri": f"urn:r{n}", "now": now}
                for n in range(first + 1, last + 1)
            ],
        )
        connection.execute(
            text(
                "INSERT INTO images (id, record_id, url, position, is_main, status) "
                "VALUES (:id, :id, :url, 0, true, 'fetched')"
            ),
            [{"id": n, "url": f"https://img/{n}.jpg"} for n in range(first + 1, last + 1)],
        )


def postgres_database(server_url: str) -> str:
    """A fresh database `monalia_bench` on the server; its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS monalia_bench")
        connection.execute("CREATE DATABASE monalia_bench")
    return url.set(database="monalia_bench").render_as_string(hide_password=False)


def drop_postgres_database(server_url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS monalia_bench")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--query-images",
        type=int,
        default=0,
        help="then grow PostgreSQL's table to this many images and time the stages' queries",
    )
    args = parser.parse_args()
    total = args.images * args.classes
    print(
        f"bench/catalog.py: {args.images:,} images x {args.classes} classes = {total:,} rows, "
        f"chunks of {args.chunk:,} images"
    )
    criteria, figures = [], []
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        for dialect in ("sqlite", "postgresql"):
            if args.only and dialect != args.only:
                continue
            if dialect == "sqlite":
                path = Path(tmp) / "catalog.sqlite"
                url = f"sqlite:///{path}"
            else:
                url = postgres_database(args.postgres)
            catalog = Catalog.open(url)
            model, uris = populate(catalog, args.images, args.classes)
            prepared = list(chunks(args.images, args.classes, args.chunk))
            rows = bare_rows(prepared, model.id)
            table = prepare_model(catalog.engine, model.id, uris)  # the model's partition
            if dialect == "sqlite":
                bare = bare_sqlite(catalog, rows, total, path)
                bare_name = "bare executemany"
            else:
                from sqlalchemy.engine import make_url

                dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
                bare = bare_postgres(catalog, rows, total, dsn, table)
                bare_name = "bare COPY"
            samples = alternate(
                {"monalia": monalia_writer(catalog, model, prepared, total), bare_name: bare},
                args.repeat,
                "rows/s",
            )
            ours, theirs = samples["monalia"], samples[bare_name]
            print(f"{dialect}: monalia {ours.spread(0)}, {bare_name} {theirs.spread(0)}")
            criteria.append(
                Criterion(f"{dialect}: monalia / {bare_name}", ours.median / theirs.median, 0.8)
            )
            if dialect == "postgresql":
                criteria.append(
                    Criterion("postgresql: monalia rows/s", ours.median, 250_000, unit="rows/s")
                )
            figures.append(
                f"{dialect} {ours.median:,.0f} rows/s vs {bare_name} {theirs.median:,.0f}"
            )
            if dialect == "postgresql" and args.query_images:
                figures.append(grown_table(catalog, args) + f" ({table})")
            catalog.engine.dispose()
            if dialect == "postgresql":
                drop_postgres_database(args.postgres)
    print(
        verdict(
            "catalog", criteria, "; ".join(figures) + f"; {total:,} rows, medians of {args.repeat}"
        )
    )


if __name__ == "__main__":
    main()
