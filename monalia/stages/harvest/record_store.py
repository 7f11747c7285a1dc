"""The record store: harvested records into the catalog, a batch and its checkpoint at a time.

Each record's content hash tells new, changed and unchanged records apart; the run's counts, its
failures and the source's resume checkpoint are written in the same transaction as the records
they cover, so a killed harvest resumes without gaps or duplicates. Both the harvest stage and
the crawl's item pipeline write through it.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session, selectinload

from monalia import jsontext
from monalia.api.records import Record
from monalia.api.source import ItemOutcome, SourceState
from monalia.catalog.bulk import insert_rows, stored_time
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
from monalia.stages.harvest.prepared import (
    CHANGED,
    NEW,
    UNCHANGED,
    PreparedOutcome,
    PreparedRecord,
    prepare_outcome,
)

ANALYZE_AFTER = 10_000  # new records before the first ANALYZE of a harvest (PostgreSQL)

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
# the columns a prepared record carries as its `values`, in this order
VALUE_COLUMNS = RECORD_COLUMNS[3:14]
SUBJECT_COLUMNS = ("record_id", "position", "uri", "label", "lang", "field")
IMAGE_COLUMNS = ("record_id", "position", "url", "iiif_service", "is_main", "status")


def duplicate_message(source_id: str) -> str:
    return (
        f"duplicate id {source_id!r}: an earlier item of this run already gave it; "
        "this one is left out"
    )


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
        self._analyzed_rows: float | None = None  # records at the last ANALYZE (PostgreSQL)
        self._inserted = 0  # records this store inserted since then

    def commit(
        self, catalog: Catalog, batch: list[ItemOutcome | PreparedOutcome], plugin: str
    ) -> Any:
        """Store a batch with the checkpoint of its last item in one transaction; return it.

        An item that gives a record id an earlier item of this run gave is rejected whole (its
        records are stored by this run already: storing it would silently replace them). The
        catalog tells, by the run that last stored each id, so nothing grows with the run.
        """
        keep = self.hooks is not None
        batch = [prepare_outcome(outcome, keep=keep) for outcome in batch]
        checkpoint = batch[-1].checkpoint
        changes: list[tuple[PreparedRecord, str]] = []
        run_id = self.tracker.id
        with catalog.session() as session:
            now = utcnow()
            existing = self._existing(
                session, [r.source_id for o in batch if o.error is None for r in o.records]
            )
            records: dict[str, PreparedRecord] = {}
            seen = 0
            for outcome in batch:
                for warning in outcome.warnings:
                    self.tracker.warn(outcome.key, warning)
                if outcome.error is not None:
                    seen += 1
                    self.tracker.fail_item(outcome.key, outcome.error)
                    continue
                duplicate = _first_duplicate(outcome.records, records, existing, run_id)
                if duplicate is not None:
                    seen += 1
                    self.tracker.fail_item(outcome.key, duplicate_message(duplicate))
                    continue
                seen += len(outcome.records)
                for record in outcome.records:
                    records[record.source_id] = record
            self.tracker.add(seen=seen)
            changes = self._write(session, list(records.values()), existing, now)
            self._keep_statistics(session, sum(change == NEW for _, change in changes))
            row = state_row(session, self.source, plugin)
            row.checkpoint = checkpoint
            row.updated_at = now
            row.last_run_id = run_id
            self.tracker.flush(session)
        if self.hooks is not None:
            for record, change in changes:
                self.hooks.record_harvested(
                    record=record.record, change=change, run=self.tracker.info
                )
        return checkpoint

    def _keep_statistics(self, session: Session, inserted: int) -> None:
        """On PostgreSQL, ANALYZE the tables a harvest grows each time it has doubled them.

        A batch's lookup by source id is planned from the table's statistics; a server whose
        autovacuum has not analyzed the table yet (it lags, or is off) still believes it holds
        the few rows of its first batches and reads every row of the source for each batch
        instead of using the index (measured at 300,000 records: 0.4 s per lookup instead of
        0.02 s, and growing). Doubling keeps the cost to about twice the last ANALYZE.
        """
        if not inserted or session.get_bind().dialect.name != "postgresql":
            return
        if self._analyzed_rows is None:
            self._analyzed_rows = max(
                0.0,
                session.scalar(
                    text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('records')")
                )
                or 0.0,
            )
        self._inserted += inserted
        if self._inserted >= max(ANALYZE_AFTER, self._analyzed_rows):
            session.execute(text("ANALYZE records, record_subjects, images"))
            self._analyzed_rows += self._inserted
            self._inserted = 0

    def _existing(self, session: Session, source_ids: list[str]) -> dict[str, tuple]:
        """(row id, content hash, last run) of the catalog's records with these ids."""
        if not source_ids:
            return {}
        rows = _select_where_in(
            session,
            "SELECT id, source_id, content_hash, last_run_id FROM records "
            "WHERE source = :source AND source_id {IN}",
            lambda: select(
                RecordRow.id, RecordRow.source_id, RecordRow.content_hash, RecordRow.last_run_id
            ).where(RecordRow.source == self.source, RecordRow.source_id.in_(source_ids)),
            source_ids,
            source=self.source,
        )
        return {
            source_id: (row_id, content_hash, last_run)
            for row_id, source_id, content_hash, last_run in rows
        }

    def _write(
        self,
        session: Session,
        records: list[PreparedRecord],
        existing: dict[str, tuple],
        now: datetime,
    ) -> list[tuple[PreparedRecord, str]]:
        if not records:
            return []
        records = self._reject_iri_clashes(session, records)
        changes: list[tuple[PreparedRecord, str]] = []
        unchanged_ids: list[int] = []
        changed: dict[int, PreparedRecord] = {}
        new: list[PreparedRecord] = []
        for record in records:
            known = existing.get(record.source_id)
            if known is None and record.deleted:
                # deleted before it was ever harvested: the catalog is already as it should be
                changes.append((record, UNCHANGED))
            elif known is None:
                new.append(record)
                changes.append((record, NEW))
            elif known[1] == record.content_hash:
                unchanged_ids.append(known[0])
                changes.append((record, UNCHANGED))
            else:
                changed[known[0]] = record
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
                record = changed[row.id]
                if record.deleted:
                    # a tombstone: the record's last known content, images and scores stay
                    row.raw = _raw_value(record)
                    row.content_hash = record.content_hash
                    row.deleted_at = row.deleted_at or now
                    row.last_seen = now
                    row.last_run_id = self.tracker.id
                    continue
                _fill(row, record, now, self.tracker.id)
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
        self.tracker.add(**collections.Counter(change for _, change in changes))
        return changes

    def _insert_new(self, session: Session, records: list[PreparedRecord], now: datetime) -> None:
        """Bulk INSERTs of new records, then of their subjects and images (the common case,
        kept off the ORM's unit of work so that large first harvests run at full speed)."""
        run_id = self.tracker.id
        connection = session.connection()
        sqlite = connection.dialect.name == "sqlite"
        # as the catalog keeps times: naive UTC, on SQLite as text (once, not once per row)
        stamp = stored_time(now.astimezone(UTC).replace(tzinfo=None), sqlite)
        source = self.source
        before = _largest_record_id(connection) if sqlite else None
        insert_rows(
            connection,
            "records",
            RECORD_COLUMNS,
            [
                (
                    source,
                    r.source_id,
                    r.iri,
                    *r.values,
                    stamp if r.deleted else None,
                    r.content_hash,
                    stamp,
                    stamp,
                    run_id,
                    run_id,
                )
                for r in records
            ],
            times=() if sqlite else ("deleted_at", "first_seen", "last_seen"),
        )
        ids = None
        if before is not None and _largest_record_id(connection) == before + len(records):
            # SQLite gives each new row the largest id so far plus one: the largest id grew by
            # exactly the number of rows, so these are the rows' ids, in order
            ids = range(before + 1, before + len(records) + 1)
        if ids is None:
            # one query for the new ids: RETURNING with executemany goes row by row on SQLite
            source_ids = [r.source_id for r in records]
            by_source_id = dict(
                _select_where_in(
                    session,
                    "SELECT source_id, id FROM records WHERE source = :source AND source_id {IN}",
                    lambda: select(RecordRow.source_id, RecordRow.id).where(
                        RecordRow.source == source, RecordRow.source_id.in_(source_ids)
                    ),
                    source_ids,
                    source=source,
                )
            )
            ids = [by_source_id[source_id] for source_id in source_ids]
        subjects = [
            (record_id, i, *subject)
            for record_id, r in zip(ids, records, strict=True)
            for i, subject in enumerate(r.subjects)
        ]
        images = [
            (record_id, position, url, iiif_service, is_main, "pending")
            for record_id, r in zip(ids, records, strict=True)
            for position, (url, iiif_service, is_main) in enumerate(r.images)
        ]
        insert_rows(connection, "record_subjects", SUBJECT_COLUMNS, subjects)
        insert_rows(connection, "images", IMAGE_COLUMNS, images)

    def _reject_iri_clashes(
        self, session: Session, records: list[PreparedRecord]
    ) -> list[PreparedRecord]:
        """Leave out (and report) records whose IRI another record already has."""
        iris = [r.iri for r in records]
        owners = {
            iri: (source, source_id)
            for iri, source, source_id in _select_where_in(
                session,
                "SELECT iri, source, source_id FROM records WHERE iri {IN}",
                lambda: select(RecordRow.iri, RecordRow.source, RecordRow.source_id).where(
                    RecordRow.iri.in_(iris)
                ),
                iris,
            )
        }
        kept: list[PreparedRecord] = []
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


def _select_where_in(session: Session, sql: str, fallback, values: list[str], **params):
    """Rows of `sql` whose ``{IN}`` is "among `values`", given as one parameter: a JSON list on
    SQLite, an array on PostgreSQL. An IN list of thousands of bound values costs SQLAlchemy
    more to render at every batch than the database takes to answer (and to build: each value
    is coerced); elsewhere, the query `fallback()` builds (the same query with such a list)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        condition, values = "IN (SELECT value FROM json_each(:values))", jsontext.dumps(values)
    elif dialect == "postgresql":
        condition = "= ANY(:values)"
    else:
        return session.execute(fallback()).all()
    return session.execute(text(sql.replace("{IN}", condition)), {**params, "values": values}).all()


def _largest_record_id(connection) -> int:
    return connection.exec_driver_sql("SELECT max(id) FROM records").scalar() or 0


def _drop_predictions(session: Session, image_ids: list[int]) -> None:
    """Delete the predictions of images no longer in the catalog, model by model (the
    predictions' key starts with the model; they have no foreign keys to cascade)."""
    for model_id in session.scalars(select(ModelRow.id)).all():
        for row in (PredictionRow, ScoredImageRow, RegionRow):
            session.execute(
                delete(row).where(row.model_id == model_id, row.image_id.in_(image_ids))
            )


def _first_duplicate(
    records: list[PreparedRecord],
    batch: dict[str, PreparedRecord],
    existing: dict[str, tuple],
    run_id: int,
) -> str | None:
    """The first id of an item's records that this run already gave (in an earlier batch, in
    this batch, or twice in the item itself); None when there is none."""
    own: set[str] = set()
    for record in records:
        source_id = record.source_id
        known = existing.get(source_id)
        if source_id in own or source_id in batch or (known is not None and known[2] == run_id):
            return source_id
        own.add(source_id)
    return None


def _raw_value(record: PreparedRecord) -> Any:
    """The raw payload as stored (already masked of configured secrets)."""
    raw = record.values[-1]
    return None if raw is None else jsontext.loads(raw)


def _fill(row: RecordRow, record: PreparedRecord, now: datetime, run_id: int) -> None:
    row.source_id = record.source_id
    row.iri = record.iri
    for name, value in zip(VALUE_COLUMNS, record.values, strict=True):
        if name in ("creators", "raw") and value is not None:
            value = jsontext.loads(value)  # the JSON columns travel as JSON text
        setattr(row, name, value)
    row.content_hash = record.content_hash
    row.deleted_at = None  # harvested again: no longer deleted
    row.last_seen = now
    row.last_run_id = run_id


def _subject_rows(record: PreparedRecord) -> list[SubjectRow]:
    return [
        SubjectRow(position=i, uri=uri, label=label, lang=lang, field=field)
        for i, (uri, label, lang, field) in enumerate(record.subjects)
    ]


def _image_rows(record: PreparedRecord, known: dict[str, ImageRow]) -> list[ImageRow]:
    """Image rows for the record, keeping what was already fetched for URLs it still has."""
    rows: list[ImageRow] = []
    for position, (url, iiif_service, is_main) in enumerate(record.images):
        row = known.get(url) or ImageRow(url=url, status="pending")
        row.position = position
        row.iiif_service = iiif_service
        row.is_main = is_main
        rows.append(row)
    return rows
