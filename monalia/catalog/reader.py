"""Reading the catalog without SQLAlchemy, for the commands a user waits on at the terminal
(`runs`, `search`, `report noise` and `report silence`).

Importing SQLAlchemy's ORM takes about 0.4 s on a small machine: more than these commands'
own work. The reader speaks the DB-API of the two databases monalia ships for (the standard
library's sqlite3, psycopg for PostgreSQL) and only to a catalog at the schema revision this
monalia writes (`SCHEMA_HEAD`). Any other catalog (another database, an older or a newer
schema, none yet) goes through `Catalog.open`, which creates, refuses or explains; so does a
catalog with runs marked running, whose processes are checked the usual way.

`monalia.catalog.orm_reader.OrmReader` offers the same lookups over an open `Catalog`, so the code
that uses them takes either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from monalia.catalog.schema import SCHEMA_HEAD
from monalia.errors import MonaliaError

BATCH = 500  # values per IN (...): well below SQLite's limit on bound parameters


@dataclass
class ModelView:
    """A registered model, as `monalia search` and `report` need it (the columns of ModelRow)."""

    id: int
    name: str
    trainer: str
    backbone: str | None
    dataset_id: int | None
    classes: list[Any]
    thresholds: dict[str, Any] | None
    metrics: dict[str, Any] | None
    card: dict[str, Any] | None
    path: str | None
    created_at: datetime | None


@dataclass
class RunView:
    """One stage run, as `monalia runs` lists it (the columns of RunRow it shows)."""

    id: int
    stage: str
    plugin: str | None
    target: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    seen: int
    new: int
    changed: int
    unchanged: int
    failed: int


MODEL_COLUMNS = (
    "id, name, trainer, backbone, dataset_id, classes, thresholds, metrics, card, path, created_at"
)
RUN_COLUMNS = (
    "id, stage, plugin, target, status, started_at, ended_at, seen, new, changed, unchanged, failed"
)


SCORED_RECORDS_SQL = (
    "SELECT DISTINCT r.iri FROM scored_images s JOIN records r ON r.id = s.record_id "
    "WHERE s.model_id = ? AND r.deleted_at IS NULL"
)
# images a model scored that a score set did not: those the thresholds still judge
SCORED_OUTSIDE_SQL = (
    "SELECT count(*) FROM scored_images s WHERE s.model_id = ? AND NOT EXISTS "
    "(SELECT 1 FROM scored_images o WHERE o.model_id = ? AND o.image_id = s.image_id)"
)
CONFIDENT_FINDINGS_SQL = (
    "SELECT f.kind, f.class_uri, f.image_id, r.iri, i.url, f.rank, f.score "
    "FROM confident_findings f JOIN images i ON i.id = f.image_id "
    "JOIN records r ON r.id = i.record_id "
    "WHERE f.score_set_id = ? AND f.kind = ? AND r.deleted_at IS NULL ORDER BY f.id"
)


def image_file(data_dir: Path, stored: str | None) -> Path | None:
    """Where an image's file is: catalog paths are relative to the project's data folder."""
    if not stored:
        return None
    path = Path(stored)
    return path if path.is_absolute() else data_dir / path


SCORE_SET_KIND = "out-of-sample"  # see monalia.stages.train.crossfit
# score sets are named MODEL-oosK: only rows whose name is LIKE this can be one, so listing them
# parses no other model's card
SCORE_SET_NAME_LIKE = "%-oos%"


def score_set_name(model_name: str, folds: int) -> str:
    return f"{model_name}-oos{folds}"


def is_score_set(card: dict[str, Any] | None) -> bool:
    """Whether a registered model's card is that of a set of out-of-sample scores."""
    return bool(card) and card.get("kind") == SCORE_SET_KIND


def pick_model(
    names: list[str],
    reference: str | None,
    score_sets: frozenset[str] = frozenset(),
    dataset: str | None = None,
) -> str:
    """The model a reference names: the exact name, else the only name it starts; the newest
    model when there is no reference (never a set of out-of-sample scores, `score_sets`).
    `names` are newest first (those of one task's `dataset` when it is given)."""
    if not reference:
        models = [name for name in names if name not in score_sets]
        if not models:
            raise MonaliaError(
                f"the catalog holds no model of dataset {dataset!r} yet: run `monalia train "
                "--task ...`"
                if dataset
                else "the catalog holds no model yet: run `monalia train`"
            )
        return models[0]
    exact = [name for name in names if name == reference]
    matching = exact or [name for name in names if name.startswith(reference)]
    models = [name for name in matching if name not in score_sets]
    if len(matching) > 1 and len(models) == 1:
        # a model's name starts the names of its score sets: the start names the model
        return models[0]
    if not matching:
        raise MonaliaError(
            f"no model {reference!r} in the catalog"
            + (f" for dataset {dataset!r}" if dataset else "")
            + (f" (it has: {', '.join(names)})" if names else "")
        )
    if len(matching) > 1:
        raise MonaliaError(f"{reference!r} starts several model names: {', '.join(matching)}")
    return matching[0]


class CatalogReader:
    """Read-only queries on a SQLite or PostgreSQL catalog through the DB-API."""

    def __init__(self, connection: Any, placeholder: str):
        self.connection = connection
        self.placeholder = placeholder

    @classmethod
    def open(cls, url: str) -> CatalogReader | None:
        """A reader of the catalog at `url`, or None where `Catalog.open` must take over."""
        reader = cls._connect(url)
        if reader is None:
            return None
        try:
            if reader._revision() != SCHEMA_HEAD or reader._has_running_runs():
                reader.close()
                return None
        except Exception:
            reader.close()
            return None  # no schema yet, or not a catalog: Catalog.open says which
        return reader

    @classmethod
    def _connect(cls, url: str) -> CatalogReader | None:
        from monalia.catalog.db_url import parse_db_url

        try:
            parsed = parse_db_url(url)
        except ValueError:
            return None
        if parsed.drivername in SQLITE_DRIVERS:
            path = _sqlite_file(parsed)
            if path is None or not Path(path).is_file():
                return None  # a new catalog is created by Catalog.open
            import sqlite3

            try:
                connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=30)
            except sqlite3.Error:
                return None
            return cls(connection, "?")
        if parsed.drivername in ("postgresql", "postgresql+psycopg", "postgres"):
            try:
                import psycopg
            except ImportError:
                return None
            try:
                connection = psycopg.connect(
                    parsed.set(drivername="postgresql").render(), connect_timeout=10
                )
            except psycopg.Error:
                return None
            connection.read_only = True
            connection.autocommit = True
            return cls(connection, "%s")
        return None

    def close(self) -> None:
        self.connection.close()

    def rows(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """The rows of a query written with `?` placeholders, whatever the database's style."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql.replace("?", self.placeholder), tuple(params))
            return cursor.fetchall()
        finally:
            cursor.close()

    def _revision(self) -> str | None:
        found = self.rows("SELECT version_num FROM alembic_version")
        return found[0][0] if len(found) == 1 else None

    def _has_running_runs(self) -> bool:
        return bool(self.rows("SELECT 1 FROM runs WHERE status = 'running' LIMIT 1"))

    # -- what the commands read ---------------------------------------------------------------

    def find_model(self, reference: str | None, dataset: str | None = None) -> ModelView:
        """A registered model by name (or its start); the newest when `reference` is None; with
        `dataset`, only the models trained on a dataset of that name (a task's)."""
        if dataset is None:
            rows = self.rows("SELECT name FROM models ORDER BY id DESC")
        else:
            rows = self.rows(
                "SELECT m.name FROM models m JOIN datasets d ON d.id = m.dataset_id "
                "WHERE d.name = ? ORDER BY m.id DESC",
                (dataset,),
            )
        names = [name for (name,) in rows]
        sets = frozenset(name for _, name, _ in self.score_sets())
        name = pick_model(names, reference, sets, dataset)
        (row,) = self.rows(f"SELECT {MODEL_COLUMNS} FROM models WHERE name = ?", (name,))
        values = list(row)
        for index in (5, 6, 7, 8):  # the JSON columns
            values[index] = _json(values[index])
        values[10] = _timestamp(values[10])
        return ModelView(*values)

    def score_sets(self) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, name, card) of every set of out-of-sample scores, newest first."""
        rows = self.rows(
            "SELECT id, name, card FROM models WHERE name LIKE ? ORDER BY id DESC",
            (SCORE_SET_NAME_LIKE,),
        )
        cards = [(id_, name, _json(card) or {}) for id_, name, card in rows]
        return [entry for entry in cards if is_score_set(entry[2])]

    def dataset_images(self, dataset_id: int) -> list[tuple[int, str, str, list[str]]]:
        """(image id, record IRI, image URL, labels) of a dataset's images whose records are
        still at their source."""
        rows = self.rows(
            "SELECT m.image_id, r.iri, i.url, m.labels FROM dataset_members m "
            "JOIN records r ON r.id = m.record_id JOIN images i ON i.id = m.image_id "
            "WHERE m.dataset_id = ? AND r.deleted_at IS NULL ORDER BY m.id",
            (dataset_id,),
        )
        return [(image, iri, url, _json(labels) or []) for image, iri, url, labels in rows]

    def set_scores(self, model_id: int) -> list[tuple[int, str, float]]:
        """(image id, class URI, score) of every score a model or score set holds."""
        return [
            (image, uri, float(score))
            for image, uri, score in self.rows(
                "SELECT p.image_id, c.uri, p.score FROM predictions p JOIN model_classes c "
                "ON c.model_id = p.model_id AND c.class_index = p.class_index "
                "WHERE p.model_id = ?",
                (model_id,),
            )
        ]

    def confident_findings(self, set_id: int, kind: str) -> list[tuple]:
        """(kind, class URI, image id, record IRI, image URL, rank, score) of the findings of
        one kind ("noise" or "silence") stored with a score set, in the order they were found;
        records deleted at their source are left out."""
        return self.rows(CONFIDENT_FINDINGS_SQL, (set_id, kind))

    def scored_outside(self, model_id: int, set_id: int) -> int:
        """How many images the model scored that the score set did not."""
        return int(self.rows(SCORED_OUTSIDE_SQL, (model_id, set_id))[0][0])

    def scored_records(self, model_id: int) -> list[str]:
        """The IRIs of the records (still at their source) a model or score set scored."""
        return [iri for (iri,) in self.rows(SCORED_RECORDS_SQL, (model_id,))]

    def class_concepts(self, dataset_id: int | None) -> dict[str, Any] | None:
        """What each class of a dataset covered when it was labelled (None before datasets kept
        it)."""
        if dataset_id is None:
            return None
        found = self.rows("SELECT class_concepts FROM datasets WHERE id = ?", (dataset_id,))
        return _json(found[0][0]) if found else None

    def image_paths(self, urls: list[str]) -> dict[str, str]:
        """The stored file (relative to the data folder) of each image URL that has one."""
        paths: dict[str, str] = {}
        for start in range(0, len(urls), BATCH):
            batch = urls[start : start + BATCH]
            marks = ", ".join("?" * len(batch))
            for url, path in self.rows(
                f"SELECT url, path FROM images WHERE path IS NOT NULL AND url IN ({marks})", batch
            ):
                paths[url] = path
        return paths

    def source_state(self, instance: str) -> tuple[Any, Any]:
        """A source's harvest checkpoint and bookmark; both None before its first harvest."""
        found = self.rows(
            "SELECT checkpoint, bookmark FROM source_states WHERE source = ?", (instance,)
        )
        return (_json(found[0][0]), _json(found[0][1])) if found else (None, None)

    def runs(self, stage: str | None, status: str | None, limit: int) -> list[RunView]:
        """The newest runs first, optionally of one stage or status."""
        where, params = [], []
        if stage:
            where.append("stage = ?")
            params.append(stage)
        if status:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        views = []
        for row in self.rows(sql, [*params, limit]):
            values = list(row)
            values[5], values[6] = _timestamp(values[5]), _timestamp(values[6])
            views.append(RunView(*values))
        return views


def sqlite_catalog_not_made(url: str) -> bool:
    """Whether `url` names a SQLite catalog file that does not exist yet (`Catalog.open` makes
    it)."""
    from monalia.catalog.db_url import parse_db_url

    try:
        parsed = parse_db_url(url)
    except ValueError:
        return False
    path = _sqlite_file(parsed) if parsed.drivername in SQLITE_DRIVERS else None
    return path is not None and not Path(path).exists()


SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")


def _sqlite_file(parsed) -> str | None:
    """The file a SQLite URL names; None for an in-memory database."""
    path = parsed.database or ""
    return None if not path or path == ":memory:" else path


def _json(value: Any) -> Any:
    # SQLite hands JSON columns back as text, psycopg as the decoded value
    return json.loads(value) if isinstance(value, str | bytes) else value


def _timestamp(value: Any) -> datetime | None:
    # stored as naive UTC (see catalog.models.UTCDateTime); SQLite hands back text
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)
