"""The record store: harvested records into the catalog, a batch and its checkpoint at a time.

Each record's content hash tells new, changed and unchanged records apart; the run's counts, its
failures and the source's resume checkpoint are written in the same transaction as the records
they cover, so a killed harvest resumes without gaps or duplicates. Both the harvest stage and
the crawl's item pipeline write through it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, selectinload

from monalia import jsontext, masking
from monalia.api.records import Record
from monalia.api.source import ItemOutcome, SourceState, seen_count
from monalia.catalog.bulk import insert_rows
from monalia.catalog.database import Catalog
from monalia.catalog.models import (
    ImageRow,
    ModelRow,
    PredictionRow,
    RecordRow,
    RegionRow,
    ScoredImageRow,
    SourceStateRow,
    SubjectRow,
    utcnow,
)
from monalia.catalog.run_tracking import RunTracker
from monalia.errors import RecordError

NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"

RECORD_COLUMNS = (
    "source",
    "source_id",
    "iri",
    "title",
    "description",
    "creators",
    "date",
    "date_start",
    "date_end",
    "institution",
    "rights",
    "landing_page",
    "modified",
    "raw",
    "deleted_at",
    "content_hash",
    "first_seen",
    "last_seen",
    "first_run_id",
    "last_run_id",
)
SUBJECT_COLUMNS = ("record_id", "position", "uri", "label", "lang", "field")
IMAGE_COLUMNS = ("record_id", "position", "url", "iiif_service", "is_main", "status")


def load_state(catalog: Catalog, instance: str) -> SourceState:
    with catalog.session() as session:
        row = session.get(SourceStateRow, instance)
        if row is None:
            return SourceState()
        return SourceState(checkpoint=row.checkpoint, bookmark=row.bookmark)


def state_row(session: Session, instance: str, plugin: str) -> SourceStateRow:
    row = session.get(SourceStateRow, instance)
    if row is None:
        row = SourceStateRow(source=instance, plugin=plugin, updated_at=utcnow())
        session.add(row)
    return row


def classify(catalog: Catalog, source: str, records: list[Record]) -> list[str]:
    """What storing each record would be (new, changed, unchanged), against the catalog as it
    is; nothing is written (the dry run)."""
    if not records:
        return []
    with catalog.session() as session:
        known = dict(
            session.execute(
                select(RecordRow.source_id, RecordRow.content_hash).where(
                    RecordRow.source == source,
                    RecordRow.source_id.in_([r.source_id for r in records]),
                )
            ).all()
        )
    return [
        (UNCHANGED if r.deleted else NEW)
        if known.get(r.source_id) is None
        else UNCHANGED
        if known[r.source_id] == r.content_hash()
        else CHANGED
        for r in records
    ]


class RecordStore:
    """Writes batches of harvested records of one source instance into the catalog."""

    def __init__(self, source: str, tracker: RunTracker, hooks=None):
        self.source = source
        self.tracker = tracker
        self.hooks = hooks

    def commit(self, catalog: Catalog, batch: list[ItemOutcome], plugin: str) -> Any:
        """Store a batch with the checkpoint of its last item in one transaction; return it."""
        checkpoint = batch[-1].item.checkpoint
        changes: list[tuple[Record, str]] = []
        with catalog.session() as session:
            now = utcnow()
            records: dict[str, Record] = {}
            for outcome in batch:
                self.tracker.add(seen=seen_count(outcome))
                for warning in outcome.warnings:
                    self.tracker.warn(outcome.item.key, warning)
                if outcome.error is not None:
                    self.tracker.fail_item(outcome.item.key, outcome.error)
                    continue
                for record in outcome.records:
                    if record.source_id in records:
                        # sources check this over the run (DuplicateIds); this is the last guard
                        self.tracker.fail_item(
                            outcome.item.key,
                            f"duplicate id {record.source_id!r} in one batch; left out",
                        )
                        continue
                    records[record.source_id] = record
            changes = self._write(session, list(records.values()), now)
            row = state_row(session, self.source, plugin)
            row.checkpoint = checkpoint
            row.updated_at = now
            row.last_run_id = self.tracker.id
            self.tracker.flush(session)
        if self.hooks is not None:
            for record, change in changes:
                self.hooks.record_harvested(record=record, change=change, run=self.tracker.info)
        return checkpoint

    def _write(
        self, session: Session, records: list[Record], now: datetime
    ) -> list[tuple[Record, str]]:
        if not records:
            return []
        existing = {
            source_id: (row_id, content_hash)
            for row_id, source_id, content_hash in session.execute(
                select(RecordRow.id, RecordRow.source_id, RecordRow.content_hash).where(
                    RecordRow.source == self.source,
                    RecordRow.source_id.in_([r.source_id for r in records]),
                )
            )
        }
        records = self._reject_iri_clashes(session, records)
        changes: list[tuple[Record, str]] = []
        unchanged_ids: list[int] = []
        changed: dict[int, tuple[Record, str]] = {}
        new: list[Record] = []
        for record in records:
            content_hash = record.content_hash()
            known = existing.get(record.source_id)
            if known is None and record.deleted:
                # deleted before it was ever harvested: the catalog is already as it should be
                changes.append((record, UNCHANGED))
            elif known is None:
                new.append(record)
                changes.append((record, NEW))
            elif known[1] == content_hash:
                unchanged_ids.append(known[0])
                changes.append((record, UNCHANGED))
            else:
                changed[known[0]] = (record, content_hash)
                changes.append((record, CHANGED))
        if new:
            self._insert_new(session, new, now)
        dropped: list[int] = []  # images that left their record: their scores go too
        if changed:
            rows = session.scalars(
                select(RecordRow)
                .where(RecordRow.id.in_(list(changed)))
                .options(selectinload(RecordRow.subjects), selectinload(RecordRow.images))
            )
            for row in rows:
                record, content_hash = changed[row.id]
                if record.deleted:
                    # a tombstone: the record's last known content, images and scores stay
                    row.raw = masking.mask_value(record.raw)
                    row.content_hash = content_hash
                    row.deleted_at = row.deleted_at or now
                    row.last_seen = now
                    row.last_run_id = self.tracker.id
                    continue
                _fill(row, record, content_hash, now, self.tracker.id)
                row.subjects = _subject_rows(record)
                before = {image.id for image in row.images}
                row.images = _image_rows(record, {image.url: image for image in row.images})
                dropped.extend(before - {image.id for image in row.images})
        if dropped:
            _drop_predictions(session, dropped)
        if unchanged_ids:
            session.execute(
                update(RecordRow)
                .where(RecordRow.id.in_(unchanged_ids))
                .values(last_seen=now, last_run_id=self.tracker.id)
            )
        session.flush()
        for _, change in changes:
            self.tracker.add(**{change: 1})
        return changes

    def _insert_new(self, session: Session, records: list[Record], now: datetime) -> None:
        """Bulk INSERTs of new records, then of their subjects and images (the common case,
        kept off the ORM's unit of work so that large first harvests run at full speed)."""
        run_id = self.tracker.id
        connection = session.connection()
        stamp = now.astimezone(UTC).replace(tzinfo=None)  # as the catalog keeps times
        dumps = jsontext.dumps
        insert_rows(
            connection,
            "records",
            RECORD_COLUMNS,
            [
                (
                    self.source,
                    r.source_id,
                    r.iri,
                    r.title,
                    r.description,
                    dumps(list(r.creators)),
                    r.date,
                    r.date_start,
                    r.date_end,
                    r.institution,
                    r.rights,
                    r.landing_page,
                    r.modified,
                    None if r.raw is None else r.raw_json().decode("utf-8"),
                    stamp if r.deleted else None,
                    r.content_hash(),
                    stamp,
                    stamp,
                    run_id,
                    run_id,
                )
                for r in records
            ],
            times=("deleted_at", "first_seen", "last_seen"),
        )
        records_table = RecordRow.__table__
        # one query for the new ids: RETURNING with executemany goes row by row on SQLite
        by_source_id = dict(
            connection.execute(
                select(records_table.c.source_id, records_table.c.id).where(
                    records_table.c.source == self.source,
                    records_table.c.source_id.in_([r.source_id for r in records]),
                )
            ).all()
        )
        ids = [by_source_id[r.source_id] for r in records]
        subjects = [
            (record_id, i, s.uri, s.label, s.lang, s.field)
            for record_id, r in zip(ids, records, strict=True)
            for i, s in enumerate(r.subjects)
        ]
        images = []
        for record_id, r in zip(ids, records, strict=True):
            seen: set[str] = set()
            for position, image in enumerate(r.images):
                if image.url in seen:
                    continue
                seen.add(image.url)
                images.append(
                    (record_id, position, image.url, image.iiif_service, image.is_main, "pending")
                )
        insert_rows(connection, "record_subjects", SUBJECT_COLUMNS, subjects)
        insert_rows(connection, "images", IMAGE_COLUMNS, images)

    def _reject_iri_clashes(self, session: Session, records: list[Record]) -> list[Record]:
        """Leave out (and report) records whose IRI another record already has."""
        owners = {
            iri: (source, source_id)
            for iri, source, source_id in session.execute(
                select(RecordRow.iri, RecordRow.source, RecordRow.source_id).where(
                    RecordRow.iri.in_([r.iri for r in records])
                )
            )
        }
        kept: list[Record] = []
        for record in records:
            owner = owners.get(record.iri)
            if owner is not None and owner != (self.source, record.source_id):
                self.tracker.fail_item(
                    record.source_id,
                    str(
                        RecordError(
                            f"IRI {record.iri} already belongs to record {owner[1]} of "
                            f"source {owner[0]}"
                        )
                    ),
                )
                continue
            owners[record.iri] = (self.source, record.source_id)
            kept.append(record)
        return kept


def _drop_predictions(session: Session, image_ids: list[int]) -> None:
    """Delete the predictions of images no longer in the catalog, model by model (the
    predictions' key starts with the model; they have no foreign keys to cascade)."""
    for model_id in session.scalars(select(ModelRow.id)).all():
        for row in (PredictionRow, ScoredImageRow, RegionRow):
            session.execute(
                delete(row).where(row.model_id == model_id, row.image_id.in_(image_ids))
            )


def _fill(row: RecordRow, record: Record, content_hash: str, now: datetime, run_id: int) -> None:
    row.source_id = record.source_id
    row.iri = record.iri
    row.title = record.title
    row.description = record.description
    row.creators = list(record.creators)
    row.date = record.date
    row.date_start = record.date_start
    row.date_end = record.date_end
    row.institution = record.institution
    row.rights = record.rights
    row.landing_page = record.landing_page
    row.modified = record.modified
    row.raw = masking.mask_value(record.raw)
    row.content_hash = content_hash
    row.deleted_at = None  # harvested again: no longer deleted
    row.last_seen = now
    row.last_run_id = run_id


def _subject_rows(record: Record) -> list[SubjectRow]:
    return [
        SubjectRow(position=i, uri=s.uri, label=s.label, lang=s.lang, field=s.field)
        for i, s in enumerate(record.subjects)
    ]


def _image_rows(record: Record, known: dict[str, ImageRow]) -> list[ImageRow]:
    """Image rows for the record, keeping what was already fetched for URLs it still has."""
    rows: list[ImageRow] = []
    seen: set[str] = set()
    for position, image in enumerate(record.images):
        if image.url in seen:
            continue
        seen.add(image.url)
        row = known.get(image.url) or ImageRow(url=image.url, status="pending")
        row.position = position
        row.iiif_service = image.iiif_service
        row.is_main = image.is_main
        rows.append(row)
    return rows
