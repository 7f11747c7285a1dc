"""The references bench/harvest.py runs beside `monalia harvest`, each in a fresh process as a user
would start it:

- ``floor``: the physical floor. The same pages fetched with one requests session, decoded with
  orjson, and one row per item (its id and its JSON text) inserted with `executemany` into an
  SQLite file, one transaction per page, with the pragmas the catalog uses. Nothing checked,
  normalised or hashed.
- ``dlt``: dlt loading the same pages into SQLite (its sqlalchemy destination), as a `dlt`
  resource that pages through the API with its own incremental cursor.

Usage: python bench/harvest_references.py floor|dlt europeana|sparql URL DATABASE [QUERIES_FILE]
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import orjson
import requests

KEY = "bench-key"


def europeana_pages(url: str):
    """Every page of the Europeana-format API, followed by its nextCursor."""
    session = requests.Session()
    cursor = "*"
    while cursor:
        response = session.get(url, params={"wskey": KEY, "rows": 100, "cursor": cursor})
        response.raise_for_status()
        page = orjson.loads(response.content)
        yield page["items"]
        cursor = page.get("nextCursor")


def sparql_pages(url: str, queries: list[str]):
    """The bindings of each recorded query, as monalia's harvest asked them."""
    session = requests.Session()
    for query in queries:
        response = session.post(
            url, data={"query": query}, headers={"Accept": "application/sparql-results+json"}
        )
        response.raise_for_status()
        bindings = orjson.loads(response.content)["results"]["bindings"]
        yield [{name: value["value"] for name, value in row.items()} for row in bindings]


def floor(pages, database: Path, key) -> int:
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("CREATE TABLE items (id TEXT, raw TEXT)")
    count = 0
    for items in pages:
        with connection:
            connection.executemany(
                "INSERT INTO items VALUES (?, ?)",
                [(key(item), orjson.dumps(item).decode()) for item in items],
            )
        count += len(items)
    connection.close()
    return count


def dlt_load(pages_of, database: Path, cursor: str, primary_key: str) -> int:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("LOAD__WORKERS", "1")  # SQLite takes one writer at a time
    import dlt

    @dlt.resource(name="items", primary_key=primary_key)
    def items(updated=dlt.sources.incremental(cursor)):
        yield from pages_of()

    pipeline = dlt.pipeline(
        pipeline_name="bench_harvest",
        pipelines_dir=str(database.parent / "dlt-pipelines"),
        destination=dlt.destinations.sqlalchemy(f"sqlite:///{database}"),
        dataset_name="harvest",
    )
    info = pipeline.run(items())
    info.raise_on_failed_jobs()
    return pipeline.last_trace.last_normalize_info.row_counts.get("items", 0)


def main() -> int:
    method, kind, url, database = sys.argv[1:5]
    database = Path(database)
    if kind == "europeana":

        def pages():
            return europeana_pages(url)

        key, cursor, primary_key = (lambda item: item["id"]), "timestamp_update", "id"
    else:
        queries = json.loads(Path(sys.argv[5]).read_text())

        def pages():
            return sparql_pages(url, queries)

        key, cursor, primary_key = (lambda row: row.get("item")), "item", None
    if method == "floor":
        count = floor(pages(), database, key)
    else:
        count = dlt_load(pages, database, cursor, primary_key)
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
