"""The catalog's tables: records and their terms and images, datasets, models, predictions, runs.

The schema is owned by the Alembic migrations in ``alembic/versions``; a test checks that
upgrading an empty database to head gives exactly these models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

# Constraint names fixed by convention, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC (SQLite keeps no zone) and read back zone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("catalog timestamps must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class RecordRow(Base):
    """One harvested record of one source instance (as named in the project file)."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("source", "source_id", name="uq_records_source_source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    source_id: Mapped[str] = mapped_column(String(500))
    iri: Mapped[str] = mapped_column(String(1000), unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    creators: Mapped[list[Any]] = mapped_column(JSON, default=list)
    date: Mapped[str | None] = mapped_column(String(200))
    date_start: Mapped[int | None] = mapped_column(Integer)
    date_end: Mapped[int | None] = mapped_column(Integer)
    institution: Mapped[str | None] = mapped_column(Text)
    rights: Mapped[str | None] = mapped_column(Text)
    landing_page: Mapped[str | None] = mapped_column(Text)
    modified: Mapped[str | None] = mapped_column(String(100))
    raw: Mapped[Any] = mapped_column(JSON, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    first_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    # set when the source reported the record deleted (OAI-PMH): kept, but no longer published,
    # labelled or fetched
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    subjects: Mapped[list[SubjectRow]] = relationship(
        back_populates="record", cascade="all, delete-orphan", order_by="SubjectRow.position"
    )
    images: Mapped[list[ImageRow]] = relationship(
        back_populates="record", cascade="all, delete-orphan", order_by="ImageRow.position"
    )


class SubjectRow(Base):
    """A subject term of a record: a thesaurus URI, a literal label, or both."""

    __tablename__ = "record_subjects"
    # subjects without a URI stay out of the URI index: a lookup by URI never finds them, and
    # a harvest of label-only subjects does not keep the index up for nothing. The index is
    # partial on PostgreSQL too (migration 0013 makes it so); declaring `postgresql_where` here
    # would import SQLAlchemy's PostgreSQL dialect in every command (20 ms) for a schema the
    # migrations, not these models, create
    __table_args__ = (Index("ix_record_subjects_uri", "uri", sqlite_where=text("uri IS NOT NULL")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    uri: Mapped[str | None] = mapped_column(String(1000))
    label: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(35))
    field: Mapped[str | None] = mapped_column(String(100))

    record: Mapped[RecordRow] = relationship(back_populates="subjects")


class ImageRow(Base):
    """An image reference of a record and, once fetched, what was fetched."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("record_id", "url", name="uq_images_record_id_url"),
        Index("ix_images_sha256", "sha256"),
        Index("ix_images_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # found by record through uq_images_record_id_url, which starts with it
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2000))
    iiif_service: Mapped[str | None] = mapped_column(String(2000))
    is_main: Mapped[bool] = mapped_column(Boolean, default=False)
    # pending until the image stage fetches it; then fetched or failed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    http_status: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str | None] = mapped_column(String(1000))
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    record: Mapped[RecordRow] = relationship(back_populates="images")


class DatasetRow(Base):
    """A versioned training set: its identity is the hash of its inputs and settings."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    classes: Mapped[list[Any]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    # class URI -> {concept URI: its labels}: what each class covered when labelled, so that
    # publishing and curation mean what the dataset meant, whatever the thesaurus is today
    class_concepts: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DatasetMemberRow(Base):
    """One image of a dataset, its split and its labels (class URIs)."""

    __tablename__ = "dataset_members"
    __table_args__ = (UniqueConstraint("dataset_id", "image_id", name="uq_dataset_members_image"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(10))
    labels: Mapped[list[Any]] = mapped_column(JSON)


class ModelRow(Base):
    """A trained model registered in the catalog, with its model card."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    trainer: Mapped[str] = mapped_column(String(100))
    backbone: Mapped[str | None] = mapped_column(String(100))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    classes: Mapped[list[Any]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    path: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


class ModelClassRow(Base):
    """A model's class by its position in the model's outputs: predictions name the position."""

    __tablename__ = "model_classes"
    __table_args__ = (UniqueConstraint("model_id", "uri", name="uq_model_classes_model_id"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    class_index: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    uri: Mapped[str] = mapped_column(String(1000))


class ScoredImageRow(Base):
    """An image a model scored: which content (its hash then), in which run, when; its scores
    are the model's predictions for it."""

    __tablename__ = "scored_images"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    record_id: Mapped[int] = mapped_column(Integer)
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(Integer)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PredictionRow(Base):
    """The score of one class (by its index in the model's classes) for one image under one
    model.

    Four numbers, keyed by (model, image, class), with no foreign keys: each would be checked
    for every row, 40 rows an image, and bulk writes must keep up with a GPU (migration 0008).
    On PostgreSQL the table is partitioned by model (`monalia.catalog.bulk`). `class_uri`,
    `record_id`, `image_sha256`, `run_id` and `scored_at` read through `model_classes` and
    `scored_images` (correlated subqueries, for convenience: the stages join those tables).
    """

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_class_score", "model_id", "class_index", "score"),)

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_index: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    score: Mapped[float] = mapped_column(Float)


class RegionRow(Base):
    """Where one class is seen in one image under one model: boxes (left, top, width, height)
    in the pixels of the image file (`monalia.learning.regions`), made by ``enrich --regions``.

    One row per detection at or above the class's threshold, written once; an empty list says
    the heat map pointed nowhere. Like predictions, keyed without foreign keys: an image's
    regions go when its scores are replaced or its record loses it.
    """

    __tablename__ = "regions"

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_index: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, index=True)
    boxes: Mapped[list[Any]] = mapped_column(JSON)
    image_width: Mapped[int] = mapped_column(Integer)
    image_height: Mapped[int] = mapped_column(Integer)
    fraction: Mapped[float] = mapped_column(Float)  # of the heat map's peak
    run_id: Mapped[int | None] = mapped_column(Integer)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _scored_image_value(column):
    return column_property(
        select(column)
        .where(
            ScoredImageRow.model_id == PredictionRow.model_id,
            ScoredImageRow.image_id == PredictionRow.image_id,
        )
        .correlate_except(ScoredImageRow)
        .scalar_subquery()
    )


PredictionRow.class_uri = column_property(
    select(ModelClassRow.uri)
    .where(
        ModelClassRow.model_id == PredictionRow.model_id,
        ModelClassRow.class_index == PredictionRow.class_index,
    )
    .correlate_except(ModelClassRow)
    .scalar_subquery()
)
PredictionRow.record_id = _scored_image_value(ScoredImageRow.record_id)
PredictionRow.image_sha256 = _scored_image_value(ScoredImageRow.image_sha256)
PredictionRow.run_id = _scored_image_value(ScoredImageRow.run_id)
PredictionRow.scored_at = _scored_image_value(ScoredImageRow.scored_at)


def is_partition(name: str | None) -> bool:
    """A table that holds one model's predictions on PostgreSQL (made as the model first
    writes, not by a migration): schema comparisons leave it out."""
    return bool(name) and name.startswith("predictions_") and name != "predictions"


def include_in_comparison(item, name, type_, reflected, compare_to) -> bool:
    """Alembic's `include_object` hook: the predictions' partitions and their indexes are not
    part of the models."""
    table = getattr(item, "table", item) if type_ != "table" else item
    return not is_partition(name if type_ == "table" else getattr(table, "name", None))


class RunRow(Base):
    """One run of one stage: what ran, with which settings, when, how it ended, its counts."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(50))
    plugin: Mapped[str | None] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(200))  # e.g. the source's instance name
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20))  # running, done, failed, interrupted
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_started: Mapped[str | None] = mapped_column(String(40))  # tells a reused pid apart
    seen: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    message: Mapped[str | None] = mapped_column(Text)

    events: Mapped[list[RunEventRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="RunEventRow.id"
    )


class RunEventRow(Base):
    """Something worth keeping that happened during a run: mostly an item that failed, and why."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[str] = mapped_column(String(10))  # info, warning, error
    item: Mapped[str | None] = mapped_column(String(1000))
    message: Mapped[str] = mapped_column(Text)

    run: Mapped[RunRow] = relationship(back_populates="events")


class SourceStateRow(Base):
    """A source instance's harvest state: its bookmark and, mid-run, its resume checkpoint."""

    __tablename__ = "source_states"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    plugin: Mapped[str] = mapped_column(String(100))
    bookmark: Mapped[Any] = mapped_column(JSON, nullable=True)  # advances after a complete run
    checkpoint: Mapped[Any] = mapped_column(JSON, nullable=True)  # where an unfinished run stopped
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


class ReviewDecisionRow(Base):
    """A curator's decision on one finding (a record, a class, noise, silence or search).

    Append-only: a new decision, or an undo, is a new row; a reviewer's latest one counts.
    """

    __tablename__ = "review_decisions"
    __table_args__ = (Index("ix_review_decisions_finding", "record_iri", "class_uri"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("records.id", ondelete="SET NULL"), nullable=True
    )
    record_iri: Mapped[str] = mapped_column(String(1000))
    class_uri: Mapped[str] = mapped_column(String(1000))
    class_label: Mapped[str | None] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(10))  # noise, silence, search
    decision: Mapped[str] = mapped_column(String(10))  # accept, reject, skip, undo
    comment: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(200))
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL"), nullable=True
    )
    model_name: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)  # the model's score when decided
    image_url: Mapped[str | None] = mapped_column(String(2000))  # the image the score is of
    method: Mapped[str | None] = mapped_column(String(20))  # threshold or confident
    annotated: Mapped[bool | None] = mapped_column(Boolean)  # did the metadata mention it then
    # kind "region": the box a curator drew, [left, top, width, height] in the image's pixels
    region: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditFindingRow(Base):
    """One problem `monalia audit` found in one image: an image problem (cleanvision) or a
    dataset problem (cleanlab's Datalab over a dataset and a model's out-of-sample scores).

    Each run replaces the rows of the checks it ran. `score` is the library's quality score
    (0 worst, 1 clean); `detail` what else it said (the records it duplicates, the class).
    """

    __tablename__ = "audit_findings"
    __table_args__ = (Index("ix_audit_findings_kind", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(10))  # image or dataset
    score: Mapped[float] = mapped_column(Float)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    dataset_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubjectMatchRow(Base):
    """A subject text of a record that `monalia label` resolved to one thesaurus concept, and
    how (by preferred, alternative or hidden label, by notation, through a curated mapping).

    Each label run of a dataset replaces that dataset's rows; `monalia publish` writes them as
    the matched-subjects graph, apart from the institution's own statements.
    """

    __tablename__ = "subject_matches"
    __table_args__ = (Index("ix_subject_matches_dataset_record", "dataset", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(200))  # the task's dataset name
    field: Mapped[str | None] = mapped_column(String(100), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(20), nullable=True)
    concept: Mapped[str] = mapped_column(String(1000))
    how: Mapped[str] = mapped_column(String(20))
    thesaurus: Mapped[str | None] = mapped_column(String(100), nullable=True)  # its fingerprint
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)


class ConfidentFindingRow(Base):
    """One label issue that confident learning found in a set of out-of-sample scores, stored
    when the scores are made (`monalia train --folds K`) so that the reports, search and the
    workbench read them instead of computing them (and importing cleanlab) on every call.

    `kind` is "noise" (the image is annotated with the class) or "silence" (it is not); `rank`
    orders a class's findings of one kind, most suspect first; `score` is the out-of-sample
    score of the class for the image.
    """

    __tablename__ = "confident_findings"
    __table_args__ = (Index("ix_confident_findings_set_kind", "score_set_id", "kind", "rank"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score_set_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    class_uri: Mapped[str] = mapped_column(String(1000))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)


class TaughtClassRow(Base):
    """A class a curator teaches from a few examples (`monalia teach`): its answers are review
    decisions of kind "teach" on its URI, which `monalia label` takes in."""

    __tablename__ = "taught_classes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uri: Mapped[str] = mapped_column(String(1000), unique=True)
    label: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DuplicatePairRow(Base):
    """Two records' images found to be the same picture: identical files (method "content")
    or near-identical feature vectors (method "embedding"), with the group they fall in.

    `monalia duplicates` replaces the pairs of its embedder at each run.
    """

    __tablename__ = "duplicate_pairs"
    __table_args__ = (
        Index("ix_duplicate_pairs_record_a", "record_a"),
        Index("ix_duplicate_pairs_record_b", "record_b"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_number: Mapped[int] = mapped_column(Integer)
    image_a: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    image_b: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    record_a: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    record_b: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    similarity: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(20))
    embedder: Mapped[str] = mapped_column(String(200))
    threshold: Mapped[float] = mapped_column(Float)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
