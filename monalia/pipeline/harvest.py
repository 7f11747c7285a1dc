"""The harvest stage: a source's records into the catalog, incrementally and resumably.

Records are committed in batches; each batch is committed together with the source's checkpoint
(where to resume) and the run's counts, so a run killed at any moment resumes without a gap or a
duplicate. A record whose content hash is unchanged is only marked as seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, selectinload

from monalia.catalog import Catalog
from monalia.catalog.models import ImageRow, RecordRow, SourceStateRow, SubjectRow, utcnow
from monalia.config import PluginInstance
from monalia.errors import ConfigError, RecordError
from monalia.pipeline.runs import DONE, RunInfo, RunTracker, exception_message, status_for_exception
from monalia.progress import Progress
from monalia.records import Record
from monalia.source import ItemOutcome, Source, SourceState

NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"


@dataclass
class HarvestOptions:
    """What the user asked of this harvest run."""

    limit: int | None = None  # stop after this many records
    since: str | None = None  # read only what changed after this (where the source can)
    restart: bool = False  # ignore the checkpoint and bookmark: read everything again


def load_state(catalog: Catalog, instance: str) -> SourceState:
    with catalog.session() as session:
        row = session.get(SourceStateRow, instance)
        if row is None:
            return SourceState()
        return SourceState(checkpoint=row.checkpoint, bookmark=row.bookmark)


def harvest(
    catalog: Catalog,
    configured: PluginInstance,
    hooks=None,
    options: HarvestOptions | None = None,
    progress: Progress | None = None,
) -> RunInfo:
    """Harvest one configured source into the catalog; return the finished run."""
    options = options or HarvestOptions()
    source: Source = configured.create()
    if getattr(source, "crawled", False):
        return crawl_harvest(catalog, configured, source, options, progress)
    state = load_state(catalog, configured.instance)
    if options.restart:
        state = SourceState()
    state.since = options.since
    settings: dict[str, Any] = {
        "settings": source.describe_settings(),
        "limit": options.limit,
        "since": options.since,
        "restart": options.restart,
        "resumed_from": state.checkpoint,
        "bookmark": state.bookmark,
    }
    tracker = RunTracker(
        catalog, "harvest", configured.info.name, configured.instance, settings, hooks
    ).start()
    store = RecordStore(configured.instance, tracker, hooks)
    progress = progress or Progress(f"harvest {configured.instance}", unit="records", enabled=False)
    prepare = None
    if hooks is not None:

        def prepare(record: Record) -> None:
            hooks.prepare_record(record=record, source=source)

    limited = False
    greatest: Any = None
    try:
        source.open()
        try:
            progress.set_total(source.estimate_total(state))
            batch: list[ItemOutcome] = []
            batch_records = 0
            checkpoint = state.checkpoint
            taken = 0
            for outcome in source.harvest(state, prepare):
                batch.append(outcome)
                size = len(outcome.records) or 1
                batch_records += size
                taken += size
                if source.replication_key:
                    for record in outcome.records:
                        value = getattr(record, source.replication_key, None)
                        if value is not None and (greatest is None or value > greatest):
                            greatest = value
                if batch_records >= source.batch_size:
                    checkpoint = store.commit(catalog, batch, configured.info.name)
                    progress.advance(batch_records)
                    batch, batch_records = [], 0
                if options.limit is not None and taken >= options.limit:
                    limited = True
                    break
            if batch:
                checkpoint = store.commit(catalog, batch, configured.info.name)
                progress.advance(batch_records)
        finally:
            source.close()
        # A complete run clears the checkpoint, so the next run reads the source again (to find
        # changes); a run stopped by --limit keeps it, so the next run goes on from there.
        with catalog.session() as session:
            row = _state_row(session, configured.instance, configured.info.name)
            if not limited:
                row.checkpoint = None
                if source.replication_key and greatest is not None:
                    row.bookmark = greatest
            else:
                row.checkpoint = checkpoint
            row.updated_at = utcnow()
            row.last_run_id = tracker.id
    except BaseException as exc:
        tracker.finish(status_for_exception(exc), exception_message(exc))
        raise
    finally:
        progress.close()
    message = (
        f"stopped at --limit {options.limit}; the next run goes on from there" if limited else None
    )
    return tracker.finish(DONE, message)


def crawl_harvest(
    catalog: Catalog,
    configured: PluginInstance,
    source: Source,
    options: HarvestOptions,
    progress: Progress | None = None,
) -> RunInfo:
    """Harvest a crawled source (IIIF): the crawl runs in its own process and commits through
    its item pipeline; a run that did not finish is resumed, skipping what it stored."""
    from monalia.pipeline.crawl import run_crawl

    state = SourceState() if options.restart else load_state(catalog, configured.instance)
    checkpoint = state.checkpoint if isinstance(state.checkpoint, dict) else {}
    job = {
        "kind": "harvest",
        "catalog": catalog.url,
        "source": configured.instance,
        "plugin": configured.info.name,
        "plugin_settings": configured.settings.model_dump(mode="json"),
        "context": {
            "project_dir": str(configured.context.project_dir),
            "data_dir": str(configured.context.data_dir),
            "base_iri": configured.context.base_iri,
        },
        "start_url": source.settings.url,
        "since_run": checkpoint.get("since_run"),
        "limit": options.limit,
        "crawl": source.crawl_settings(),
        "settings": {
            "settings": source.describe_settings(),
            "limit": options.limit,
            "restart": options.restart,
            "resumed_from": checkpoint or None,
        },
    }
    return run_crawl(catalog, job, progress)


def _state_row(session: Session, instance: str, plugin: str) -> SourceStateRow:
    row = session.get(SourceStateRow, instance)
    if row is None:
        row = SourceStateRow(source=instance, plugin=plugin, updated_at=utcnow())
        session.add(row)
    return row


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
                self.tracker.add(seen=len(outcome.records) or 1)
                if outcome.error is not None:
                    self.tracker.fail_item(outcome.item.key, outcome.error)
                    continue
                for record in outcome.records:
                    if record.source_id in records:
                        # the same record twice in one batch: store what came last
                        self.tracker.add(seen=-1)
                    records[record.source_id] = record
            changes = self._write(session, list(records.values()), now)
            row = _state_row(session, self.source, plugin)
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
            if known is None:
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
        if changed:
            rows = session.scalars(
                select(RecordRow)
                .where(RecordRow.id.in_(list(changed)))
                .options(selectinload(RecordRow.subjects), selectinload(RecordRow.images))
            )
            for row in rows:
                record, content_hash = changed[row.id]
                _fill(row, record, content_hash, now, self.tracker.id)
                row.subjects = _subject_rows(record)
                row.images = _image_rows(record, {image.url: image for image in row.images})
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
        # Core statements on the table: the ORM's bulk path costs more than the database here
        connection = session.connection()
        records_table = RecordRow.__table__
        connection.execute(
            insert(records_table),
            [
                {
                    "source": self.source,
                    "source_id": r.source_id,
                    "iri": r.iri,
                    "title": r.title,
                    "description": r.description,
                    "creators": list(r.creators),
                    "date": r.date,
                    "date_start": r.date_start,
                    "date_end": r.date_end,
                    "institution": r.institution,
                    "rights": r.rights,
                    "landing_page": r.landing_page,
                    "modified": r.modified,
                    "raw": r.raw,
                    "content_hash": r.content_hash(),
                    "first_seen": now,
                    "last_seen": now,
                    "first_run_id": run_id,
                    "last_run_id": run_id,
                }
                for r in records
            ],
        )
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
            {
                "record_id": record_id,
                "position": i,
                "uri": s.uri,
                "label": s.label,
                "lang": s.lang,
                "field": s.field,
            }
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
                    {
                        "record_id": record_id,
                        "position": position,
                        "url": image.url,
                        "iiif_service": image.iiif_service,
                        "is_main": image.is_main,
                        "status": "pending",
                    }
                )
        if subjects:
            connection.execute(insert(SubjectRow.__table__), subjects)
        if images:
            connection.execute(insert(ImageRow.__table__), images)

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
    row.raw = record.raw
    row.content_hash = content_hash
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


def dry_run(
    catalog: Catalog,
    configured: PluginInstance,
    options: HarvestOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Read and check what a harvest would, write nothing; count new, changed, unchanged and
    failed records against the catalog as it is, and keep the first failures to show."""
    options = options or HarvestOptions()
    source: Source = configured.create()
    if getattr(source, "crawled", False):
        raise ConfigError(
            f"{configured.instance}: a crawled source has no dry run; `monalia harvest "
            f"{configured.instance} --limit N` harvests only N records"
        )
    state = SourceState() if options.restart else load_state(catalog, configured.instance)
    state.since = options.since
    counts = {"seen": 0, NEW: 0, CHANGED: 0, UNCHANGED: 0, "failed": 0}
    failures: list[tuple[str, str]] = []
    progress = progress or Progress(f"dry run {configured.instance}", unit="records", enabled=False)

    def classify(records: list[Record]) -> None:
        if not records:
            return
        with catalog.session() as session:
            known = dict(
                session.execute(
                    select(RecordRow.source_id, RecordRow.content_hash).where(
                        RecordRow.source == configured.instance,
                        RecordRow.source_id.in_([r.source_id for r in records]),
                    )
                ).all()
            )
        for record in records:
            stored = known.get(record.source_id)
            change = (
                NEW if stored is None else UNCHANGED if stored == record.content_hash() else CHANGED
            )
            counts[change] += 1

    source.open()
    try:
        progress.set_total(source.estimate_total(state))
        pending: list[Record] = []
        for outcome in source.harvest(state):
            counts["seen"] += len(outcome.records) or 1
            progress.advance(len(outcome.records) or 1)
            if outcome.error is not None:
                counts["failed"] += 1
                if len(failures) < 20:
                    failures.append((outcome.item.key, outcome.error))
            pending.extend(outcome.records)
            if len(pending) >= 1000:
                classify(pending)
                pending = []
            if options.limit is not None and counts["seen"] >= options.limit:
                break
        classify(pending)
    finally:
        source.close()
        progress.close()
    return {"source": configured.instance, "counts": counts, "failures": failures}
