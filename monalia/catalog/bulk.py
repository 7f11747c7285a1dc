"""Rows written in bulk, in the session's own transaction: predictions and harvested records.

A GPU scores thousands of images a second, 40 rows each: one INSERT statement per row would make
the catalog the limit. PostgreSQL gets the rows through `COPY ... FROM STDIN` (psycopg 3's copy
API; the predictions as one binary buffer packed by numpy); SQLite through one `executemany` of
plain tuples; any other database through SQLAlchemy. All write on the session's connection, so
the rows commit with whatever else the transaction holds (the delete of the chunk's old rows,
the run's counts): a chunk is stored whole or not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

PREDICTION_COLUMNS = ("model_id", "image_id", "class_index", "score")
SCORED_IMAGE_COLUMNS = ("model_id", "image_id", "record_id", "image_sha256", "run_id", "scored_at")

# PostgreSQL's binary COPY: a signature, flags and header extension, then per row the number of
# fields and each field's length and big-endian value, then -1. Rows of four fixed-width numbers
# are one numpy structured array: a chunk of 40,000 rows is packed in a millisecond.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_COPY_TRAILER = b"\xff\xff"


@functools.cache
def _copy_row():
    # numpy is imported when scores are written, not by a harvest that only inserts rows
    import numpy as np

    return np.dtype(
        [
            ("fields", ">i2"),
            ("model_length", ">i4"),
            ("model_id", ">i4"),
            ("image_length", ">i4"),
            ("image_id", ">i4"),
            ("class_length", ">i4"),
            ("class_index", ">i2"),
            ("score_length", ">i4"),
            ("score", ">f8"),
        ]
    )


def write_scores(
    session,
    table: str,
    model_id: int,
    image_ids: Sequence[int],
    record_ids: Sequence[int],
    hashes: Sequence[str | None],
    scores: np.ndarray,
    run_id: int | None,
    scored_at: datetime,
) -> None:
    """Replace the scores of these images under the model, in the session's transaction: their
    old rows deleted, one `scored_images` row each, one prediction per image and class (row i
    of `scores` is image i, column k class k). `table`: where the predictions go, as
    `prepare_model` said."""
    if not len(image_ids):
        return
    import numpy as np
    from sqlalchemy import delete, select

    from monalia.catalog.models import PredictionRow, RegionRow, ScoredImageRow

    ids = [int(i) for i in image_ids]
    # Only images scored before have rows to replace. They are asked of the small table, by
    # the chunk's id range (a chunk's ids are close: enrich reads images in id order), so that
    # the usual chunk of new images sends no DELETE to the large table, and no list of
    # hundreds of ids to a planner whose statistics lag behind a table growing by millions.
    wanted = set(ids)
    if max(ids) - min(ids) < 50 * len(ids):
        ranges = [ScoredImageRow.image_id.between(min(ids), max(ids))]
    else:  # ids spread far apart: asked by list, 500 at a time
        ranges = [ScoredImageRow.image_id.in_(ids[i : i + 500]) for i in range(0, len(ids), 500)]
    scored_before = [
        image
        for where in ranges
        for image in session.scalars(
            select(ScoredImageRow.image_id).where(ScoredImageRow.model_id == model_id, where)
        )
        if image in wanted
    ]
    for start in range(0, len(scored_before), 500):
        replaced = scored_before[start : start + 500]
        for row in (PredictionRow, ScoredImageRow, RegionRow):  # a new score, a new region
            session.execute(
                delete(row)
                .where(row.model_id == model_id, row.image_id.in_(replaced))
                .execution_options(synchronize_session=False)
            )
    stamp = scored_at.astimezone(UTC).replace(tzinfo=None) if scored_at.tzinfo else scored_at
    insert_rows(
        session,
        "scored_images",
        SCORED_IMAGE_COLUMNS,
        [
            (model_id, image, int(record), sha, run_id, stamp)
            for image, record, sha in zip(ids, record_ids, hashes, strict=True)
        ],
        times=("scored_at",),
    )
    insert_predictions(session, model_id, np.asarray(ids), scores, table)


def insert_predictions(
    session, model_id: int, image_ids: np.ndarray, scores: np.ndarray, table: str = "predictions"
) -> None:
    """Insert one prediction per image and class (`scores[i, k]`: image i, class k) in the
    session's transaction: a binary COPY into `table` on PostgreSQL (the model's partition,
    which skips routing each row), one executemany on SQLite, SQLAlchemy's bulk insert
    elsewhere."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    images, classes = scores.shape
    if not images or not classes:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    if dialect == "postgresql" and _is_psycopg3(driver):
        # class by class: the ranking index (model, class, score) then grows in few places
        rows = np.empty(images * classes, dtype=_copy_row())
        rows["fields"] = 4
        rows["model_length"], rows["image_length"] = 4, 4
        rows["class_length"], rows["score_length"] = 2, 8
        rows["model_id"] = model_id
        rows["image_id"] = np.tile(np.asarray(image_ids, dtype=np.int64), classes)
        rows["class_index"] = np.repeat(np.arange(classes), images)
        rows["score"] = scores.T.ravel()
        columns = ", ".join(PREDICTION_COLUMNS)
        statement = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(_COPY_HEADER + rows.tobytes() + _COPY_TRAILER)
        return
    flat = zip(
        [model_id] * (images * classes),
        np.repeat(np.asarray(image_ids, dtype=np.int64), classes).tolist(),
        np.tile(np.arange(classes), images).tolist(),
        scores.ravel().tolist(),
        strict=True,
    )
    insert_rows(session, "predictions", PREDICTION_COLUMNS, list(flat))


_PREPARED: dict[tuple[str, int], str] = {}


def prepare_model(engine, model_id: int, uris: Sequence[str]) -> str:
    """Make a model ready for its predictions, once per process, in short transactions of its
    own (several writers may race: the loser finds the work done): its classes in
    `model_classes`, and on PostgreSQL its own partition. Returns the table its predictions go
    into: the partition, else ``predictions`` (elsewhere, or when the partition cannot be made
    because the default partition already holds rows of the model)."""
    wanted = list(dict.fromkeys(uris))
    key = (str(engine.url), int(model_id), tuple(wanted))
    known = _PREPARED.get(key)
    if known is not None:
        return known
    from sqlalchemy import delete, insert, select
    from sqlalchemy.exc import DBAPIError

    from monalia.catalog.models import ModelClassRow, PredictionRow, RegionRow, ScoredImageRow

    stored = (
        select(ModelClassRow.uri)
        .where(ModelClassRow.model_id == model_id)
        .order_by(ModelClassRow.class_index)
    )
    try:
        with engine.begin() as connection:
            known_uris = list(connection.execute(stored).scalars())
            if known_uris != wanted:
                if known_uris:
                    # the set of scores was made again over other classes: the old scores
                    # name positions in the old list, and mean nothing under the new one
                    for row in (PredictionRow, ScoredImageRow, RegionRow, ModelClassRow):
                        connection.execute(delete(row).where(row.model_id == model_id))
                if wanted:
                    connection.execute(
                        insert(ModelClassRow),
                        [
                            {"model_id": model_id, "class_index": i, "uri": uri}
                            for i, uri in enumerate(wanted)
                        ],
                    )
    except DBAPIError:
        with engine.connect() as connection:
            if list(connection.execute(stored).scalars()) != wanted:
                raise
    table = "predictions"
    if engine.dialect.name == "postgresql":
        table = _partition(engine, int(model_id))
    _PREPARED[key] = table
    return table


def _partition(engine, model_id: int) -> str:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    name = f"predictions_m{model_id}"
    exists = text("SELECT to_regclass(:name) IS NOT NULL")
    try:
        with engine.begin() as connection:
            if not connection.execute(exists, {"name": name}).scalar():
                connection.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF predictions "
                        f"FOR VALUES IN ({model_id})"
                    )
                )
    except DBAPIError:
        with engine.connect() as connection:
            if not connection.execute(exists, {"name": name}).scalar():
                return "predictions"
    return name


def insert_rows(
    session,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    times: Sequence[str] = (),
) -> None:
    """Insert rows into `table` in the session's transaction, through the driver: a COPY on
    PostgreSQL, one `executemany` on SQLite. Rows are tuples in `columns` order with values as
    stored (JSON already text, times naive UTC; `times` names the columns that hold times).
    SQLAlchemy's own executemany compiles and processes every parameter of every row, which
    costs more than the database's work on large harvests."""
    if not rows:
        return
    connection = session.connection() if callable(session.connection) else session
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    names = ", ".join(columns)
    if dialect == "postgresql" and _is_psycopg3(driver):
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in columns)
        stamps = [columns.index(name) for name in times]
        if stamps:
            rows = [_sqlite_times(row, stamps) for row in rows]
        cursor = driver.cursor()
        try:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        finally:
            cursor.close()
        return
    from sqlalchemy import text

    connection.execute(
        text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + c for c in columns)})"),
        [dict(zip(columns, row, strict=True)) for row in rows],
    )


def _sqlite_times(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        if isinstance(values[i], datetime):
            values[i] = values[i].strftime(_SQLITE_TIME)
    return tuple(values)


_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy writes a DATETIME on SQLite


def stored_time(value: datetime, sqlite: bool) -> datetime | str:
    """A naive UTC time as `insert_rows` passes it to the driver: text on SQLite (where rows
    given without `times` are passed as they are), the time itself elsewhere."""
    return value.strftime(_SQLITE_TIME) if sqlite else value


def _is_psycopg3(connection: Any) -> bool:
    return type(connection).__module__.startswith("psycopg")
