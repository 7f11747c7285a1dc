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

# the PostgreSQL types of those columns, for a binary COPY
PREDICTION_TYPES = ("int4", "int4", "int4", "varchar", "float8", "varchar", "int4", "timestamp")


def insert_predictions(
    session, rows: Sequence[tuple[Any, ...]], table: str = "predictions"
) -> None:
    """Insert prediction rows (tuples in `PREDICTION_COLUMNS` order) in the session's transaction;
    `table`: on PostgreSQL, the model's partition when `ensure_model_partition` gave it (a COPY
    straight into it skips routing each row)."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    columns = ", ".join(PREDICTION_COLUMNS)
    if dialect == "postgresql" and _is_psycopg3(driver):
        # binary COPY with the column types given: psycopg packs each row in C, no text
        statement = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(PREDICTION_TYPES)
            write = copy.write_row
            for row in rows:
                write(row if row[7].tzinfo is None else _naive_utc(row))
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


_PARTITIONS: dict[tuple[str, int], str] = {}


def ensure_model_partition(engine, model_id: int) -> str:
    """The table a model's predictions go into: on PostgreSQL its own partition, made on its
    first write in a short transaction of its own (several writers may race to make it: the
    loser finds it made); elsewhere, and when it cannot be made (the default partition already
    holds rows of the model), ``predictions``."""
    if engine.dialect.name != "postgresql":
        return "predictions"
    key = (str(engine.url), int(model_id))
    known = _PARTITIONS.get(key)
    if known is not None:
        return known
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    name = f"predictions_m{int(model_id)}"
    exists = text("SELECT to_regclass(:name) IS NOT NULL")
    try:
        with engine.begin() as connection:
            if not connection.execute(exists, {"name": name}).scalar():
                connection.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF predictions "
                        f"FOR VALUES IN ({int(model_id)})"
                    )
                )
    except DBAPIError:
        with engine.connect() as connection:
            made = connection.execute(exists, {"name": name}).scalar()
        if not made:
            _PARTITIONS[key] = "predictions"
            return "predictions"
    _PARTITIONS[key] = name
    return name


def insert_rows(
    session,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    times: Sequence[str] = (),
) -> None:
    """Insert rows (tuples in `columns` order, values as stored: JSON already text, times naive
    UTC, `times` naming the columns that hold them) into `table` in the session's transaction, through the driver: a COPY on PostgreSQL,
    one `executemany` on SQLite. SQLAlchemy's own executemany compiles and processes every
    parameter of every row, which costs more than the database's work on large harvests."""
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
            values[i] = values[i].strftime("%Y-%m-%d %H:%M:%S.%f")
    return tuple(values)


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
