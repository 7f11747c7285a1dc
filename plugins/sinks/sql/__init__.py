"""Sink: scores as rows in any SQL database SQLAlchemy reaches (PostgreSQL, SQLite, ...).

Tables (created and upgraded by the sink's own migrations, version in ``PREFIXsink_version``):

- ``PREFIXscores``: one row per (record, model, class): score, label, the image it came from
  (a record with several images keeps its best), run and time. Publishing again upserts every
  row and then deletes the model's rows it did not touch, so the table always matches the
  catalog, with no duplicates, even after a publish cut short.
- ``PREFIXmodels``: one row per published model, with its classes and thresholds.
- ``PREFIXtriples``: RDF graphs (e.g. the harvested records) as N-Triples terms, a graph
  replaced as a whole.

The password, if any, is read from the environment variable ``password_env`` names.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

# SQLAlchemy is imported where it is used: listing plugins or reading a project never pays for it
from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.sink import Sink
from monalia.errors import ConfigError, MonaliaError
from monalia.rdf.scores import ImageScores, ModelInfo
from monalia.rdf.terms import Triple, nt_term

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy import Table

# The sink's own Alembic migrations, shipped inside this package.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SqlSettings(PluginSettings):
    url: str  # a SQLAlchemy URL, without the password
    password_env: str | None = None  # the variable holding the password (none in url)
    table_prefix: str = "monalia_"  # what the sink's table names start with
    chunk_rows: int = Field(5_000, ge=1)  # rows written per statement

    @field_validator("table_prefix")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,30}", value):
            raise ValueError("letters, digits and _ only, not starting with a digit")
        return value


def tables(prefix: str) -> tuple[Table, Table, Table]:
    """The sink's tables as its migration creates them."""
    from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    models = Table(
        f"{prefix}models",
        metadata,
        Column("name", String(200), primary_key=True),
        Column("trainer", String(100)),
        Column("backbone", String(100)),
        Column("dataset_hash", String(64)),
        Column("classes", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True)),
        Column("published_at", DateTime(timezone=True), nullable=False),
        Column("publish_id", String(36), nullable=False),
    )
    scores = Table(
        f"{prefix}scores",
        metadata,
        Column("key", String(64), primary_key=True),
        Column("record_iri", String(1000), nullable=False),
        Column("model", String(200), nullable=False),
        Column("class_uri", String(1000), nullable=False),
        Column("class_label", Text),
        Column("score", Float, nullable=False),
        Column("image_url", String(2000)),
        Column("image_sha256", String(64)),
        Column("run_id", Integer),
        Column("scored_at", DateTime(timezone=True)),
        Column("publish_id", String(36), nullable=False),
    )
    triples = Table(
        f"{prefix}triples",
        metadata,
        Column("key", String(64), primary_key=True),
        Column("graph", String(1000), nullable=False),
        Column("subject", Text, nullable=False),
        Column("predicate", Text, nullable=False),
        Column("object", Text, nullable=False),
    )
    return models, scores, triples


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


class SqlSink(Sink):
    """Scores (and RDF graphs) to SQL tables, upserted on (record, model, class)."""

    name = "sql"
    Settings = SqlSettings
    unit = "rows"

    @property
    def chunk_size(self) -> int:  # type: ignore[override]
        return self.settings.chunk_rows

    def _url(self):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.settings.url)
        except ArgumentError:
            raise ConfigError(f"{self.context.instance}: url is not a SQLAlchemy URL") from None
        if url.password is not None:
            raise ConfigError(
                f"{self.context.instance}: the url holds a password: set password_env to the "
                "name of the environment variable that holds it"
            )
        password = self.context.secret(self.settings.password_env, "the database password")
        if password is not None:
            url = url.set(password=password)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            path = self.context.path(url.database)
            path.parent.mkdir(parents=True, exist_ok=True)
            url = url.set(database=str(path))
        return url

    def location(self) -> str:
        try:
            return self._url().render_as_string(hide_password=True)
        except MonaliaError:
            return self.settings.url

    def open(self) -> None:
        from alembic.config import Config
        from sqlalchemy import create_engine
        from sqlalchemy.exc import NoSuchModuleError, OperationalError

        from alembic import command

        url = self._url()
        try:
            self.engine = create_engine(url)
            with self.engine.begin() as connection:
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = connection
                config.attributes["table_prefix"] = self.settings.table_prefix
                command.upgrade(config, "head")
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise ConfigError(f"{self.location()}: no database driver for it ({exc})") from None
        except OperationalError as exc:
            raise MonaliaError(
                f"cannot open {self.location()}: {str(exc.orig).strip().splitlines()[0]}"
            ) from None
        self.models, self.scores, self.triples = tables(self.settings.table_prefix)
        self.dialect = self.engine.dialect.name

    def close(self, ok: bool) -> None:
        self.engine.dispose()

    # -- upserts -----------------------------------------------------------------------------

    def _upsert(self, connection, table: Table, rows: list[dict[str, Any]], keep_best: bool):
        """Insert rows, or update those whose key is there; with `keep_best`, a row already
        written by this publish keeps the higher score (a record's several images)."""
        from sqlalchemy import delete, insert

        if self.dialect in ("postgresql", "sqlite"):
            if self.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            else:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            statement = dialect_insert(table)
            new = statement.excluded
            if keep_best:
                from sqlalchemy import and_, case

                keep = and_(table.c.publish_id == new.publish_id, table.c.score >= new.score)
                update = {
                    column.name: case((keep, column), else_=new[column.name])
                    for column in table.columns
                    if column.name != "key"
                }
            else:
                update = {c.name: new[c.name] for c in table.columns if c.name != "key"}
            connection.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_=update), rows
            )
        else:  # any other database: replace the rows by key
            connection.execute(delete(table).where(table.c.key.in_([r["key"] for r in rows])))
            connection.execute(insert(table), rows)

    # -- RDF graphs --------------------------------------------------------------------------

    def begin_graph(self, graph: str) -> None:
        from sqlalchemy import delete

        with self.engine.begin() as connection:
            connection.execute(delete(self.triples).where(self.triples.c.graph == graph))

    def write_chunk(self, graph: str, triples: list[Triple]) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for s, p, o in triples:
            terms = nt_term(s), nt_term(p), nt_term(o)
            key = _key(graph, *terms)
            rows[key] = {
                "key": key,
                "graph": graph,
                "subject": terms[0],
                "predicate": terms[1],
                "object": terms[2],
            }
        with self.engine.begin() as connection:
            self._upsert(connection, self.triples, list(rows.values()), keep_best=False)

    # -- scores ------------------------------------------------------------------------------

    def publish_model(
        self,
        graph: str,
        model: ModelInfo,
        header: Iterable[Triple],
        images: Iterable[ImageScores],
        base_iri: str,
        min_score: float = 0.0,
    ) -> int:
        self.open()
        ok = False
        try:
            written = self._publish_scores(model, images, min_score)
            ok = True
        finally:
            self.close(ok)
        return written

    def _publish_scores(
        self, model: ModelInfo, images: Iterable[ImageScores], min_score: float
    ) -> int:
        from sqlalchemy import delete, insert

        publish_id = str(uuid.uuid4())
        labels = {entry.uri: entry.label for entry in model.classes}
        written = 0
        batch: dict[str, dict[str, Any]] = {}

        def flush() -> None:
            with self.engine.begin() as connection:
                self._upsert(connection, self.scores, list(batch.values()), keep_best=True)
            batch.clear()

        for image in images:
            for uri, score in image.scores.items():
                if score < min_score:
                    continue
                key = _key(image.record_iri, model.name, uri)
                row = batch.get(key)
                if row is not None and row["score"] >= score:
                    continue  # the record's other image in this chunk scored higher
                written += row is None
                batch[key] = {
                    "key": key,
                    "record_iri": image.record_iri,
                    "model": model.name,
                    "class_uri": uri,
                    "class_label": labels.get(uri),
                    "score": float(score),
                    "image_url": image.image_url,
                    "image_sha256": image.image_sha256,
                    "run_id": image.run_id,
                    "scored_at": image.scored_at,
                    "publish_id": publish_id,
                }
            if len(batch) >= self.settings.chunk_rows:
                flush()
        if batch:
            flush()
        with self.engine.begin() as connection:
            # rows of images no longer in the catalog (or no longer above min_score)
            connection.execute(
                delete(self.scores).where(
                    self.scores.c.model == model.name, self.scores.c.publish_id != publish_id
                )
            )
            connection.execute(delete(self.models).where(self.models.c.name == model.name))
            connection.execute(
                insert(self.models),
                [
                    {
                        "name": model.name,
                        "trainer": model.trainer,
                        "backbone": model.backbone,
                        "dataset_hash": model.dataset_hash,
                        "classes": [
                            {"uri": c.uri, "label": c.label, "threshold": c.threshold}
                            for c in model.classes
                        ],
                        "created_at": model.created_at,
                        "published_at": datetime.now(UTC),
                        "publish_id": publish_id,
                    }
                ],
            )
        return written


@hookimpl
def register_sinks():
    return [SqlSink]
