"""Predictions written in bulk, in the session's own transaction.

A GPU scores thousands of images a second, 40 rows each: one INSERT statement per row would make
the catalog the limit. PostgreSQL gets the rows through `COPY ... FROM STDIN` (psycopg 3's copy
API); SQLite through one `executemany` of plain tuples; any other database through SQLAlchemy's
bulk insert. All three write on the session's connection, so the rows commit with whatever else
the transaction holds (the delete of the chunk's old rows, the run's counts): a chunk is stored
whole or not at all, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

PREDICTION_COLUMNS = (
    "model_id",
    "image_id",
    "record_id",
    "class_uri",
    "score",
    "image_sha256",
    "run_id",
    "scored_at",
)


def insert_predictions(session, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert prediction rows (tuples in `PREDICTION_COLUMNS` order) in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    columns = ", ".join(PREDICTION_COLUMNS)
    if dialect == "postgresql" and _is_psycopg3(driver):
        statement = f"COPY predictions ({columns}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(_naive_utc(row))
        return
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in PREDICTION_COLUMNS)
        cursor = driver.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO predictions ({columns}) VALUES ({marks})",
                [_sqlite_row(_naive_utc(row)) for row in rows],
            )
        finally:
            cursor.close()
        return
    from sqlalchemy import insert

    from monalia.catalog.models import PredictionRow

    session.execute(
        insert(PredictionRow), [dict(zip(PREDICTION_COLUMNS, row, strict=True)) for row in rows]
    )


def _is_psycopg3(connection: Any) -> bool:
    return type(connection).__module__.startswith("psycopg")


def _naive_utc(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # the catalog keeps times as naive UTC (see monalia.catalog.models.UTCDateTime)
    scored_at = row[7]
    if isinstance(scored_at, datetime) and scored_at.tzinfo is not None:
        return (*row[:7], scored_at.astimezone(UTC).replace(tzinfo=None))
    return row


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # as SQLAlchemy's SQLite dialect writes a DateTime: always with microseconds
    scored_at = row[7]
    if isinstance(scored_at, datetime):
        return (*row[:7], scored_at.strftime("%Y-%m-%d %H:%M:%S.%f"))
    return row
