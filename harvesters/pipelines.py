"""The item pipelines: the only place a crawl touches the catalog.

`RecordPipeline` turns a spider's items into records through the source's own ``parse`` and
commits them in batches with the harvest machinery (content hashes, counts, resume
checkpoint). `ImagePipeline` checks each fetched image, stores it by hash and records the outcome
on its catalog rows. Both find their job (project, catalog, options) in the ``MONALIA_JOB``
setting and report progress to the parent process as JSON lines on stdout.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from sqlalchemy import update
from twisted.internet.threads import deferToThread

from monalia.api.source import ItemOutcome, RawItem, seen_count
from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, utcnow
from monalia.catalog.run_tracking import DONE, FAILED, INTERRUPTED, RunTracker
from monalia.executors.jobs import Job
from monalia.learning.image_check import ImageLimits, ImageRejected, ImageStore, prepare

COMMIT_EVERY = 2.0  # seconds: progress and the resume point stay this fresh
LIMIT_REASON = "closespider_itemcount"


@functools.cache
def open_catalog(url: str) -> Catalog:
    """The catalog, opened once per crawl process (opening checks its schema)."""
    return Catalog.open(url)


def emit(**message: Any) -> None:
    """One progress line for the parent process."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def job_source(job: Any):
    """The source plugin instance a harvest job names, as its project configured it."""
    from monalia.api.plugin import PluginContext
    from monalia.api.registry import default_registry
    from monalia.net.url_policy import UrlPolicy
    from monalia.project import PluginInstance

    info = default_registry().get("source", job.plugin)
    context = job.context
    configured = PluginInstance(
        kind="source",
        instance=job.source,
        info=info,
        settings=info.cls.Settings.model_validate(job.plugin_settings),
        context=PluginContext(
            instance=job.source,
            project_dir=Path(context["project_dir"]),
            data_dir=Path(context["data_dir"]),
            base_iri=context["base_iri"],
            url_policy=UrlPolicy(**job.url_policy),
        ),
    )
    return configured.create()


def add_to_run(session, run_id: int, seen: int, new: int, failed: list[list[Any]]) -> None:
    """Add a commit's counts and failure events to a run another process started."""
    from monalia.catalog.models import RunEventRow, RunRow
    from monalia.catalog.run_tracking import MAX_EVENTS

    now = utcnow()
    session.execute(
        update(RunRow)
        .where(RunRow.id == run_id)
        .values(
            seen=RunRow.seen + seen,
            new=RunRow.new + new,
            failed=RunRow.failed + sum(count for _, _, count in failed),
            heartbeat_at=now,
        )
    )
    session.add_all(
        RunEventRow(run_id=run_id, at=now, level="error", item=item, message=reason)
        for item, reason, _ in failed[:MAX_EVENTS]
    )


class _CatalogPipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.job: Any = Job.from_json(dict(crawler.settings.getdict("MONALIA_JOB")))
        self.tracker: RunTracker | None = None
        self.last_commit = time.monotonic()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def refused(self) -> list[ItemOutcome]:
        """Requests the URL policy refused that the spider has no errback for, as failed
        outcomes: nothing is lost in silence whatever spider a source names."""
        refused = getattr(self.crawler, "monalia_refused", None) or []
        outcomes = [ItemOutcome(RawItem(key=url, payload=None), [], why) for url, why in refused]
        refused.clear()
        return outcomes

    def due(self, pending: int, size: int) -> bool:
        return pending >= size or time.monotonic() - self.last_commit >= COMMIT_EVERY


class RecordPipeline(_CatalogPipeline):
    """Harvest: the spider's items become records of the job's source instance."""

    def open_spider(self) -> None:
        from monalia.api.registry import default_registry
        from monalia.api.source import SourceState
        from monalia.stages.harvest.record_store import RecordStore

        self.hooks = default_registry().hook
        self.plugin = self.job.plugin
        self.instance = self.job.source
        self.catalog = open_catalog(self.job.catalog)
        self.source = job_source(self.job)
        self.source.state = SourceState()
        self.tracker = RunTracker(
            self.catalog,
            "harvest",
            self.plugin,
            self.instance,
            self.job.settings,
            self.hooks,
            exclusive="target",
        ).start()
        emit(run=self.tracker.id)
        self.store = RecordStore(self.instance, self.tracker, self.hooks)
        # where a resumed crawl starts again: the first unfinished run's stored manifests
        self.checkpoint = {"since_run": self.job.since_run or self.tracker.id}
        self.batch: list[ItemOutcome] = []
        self.start_failure: str | None = None

    def prepare(self, record) -> None:
        self.hooks.prepare_record(record=record, source=self.source)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        raw = RawItem(key=item["key"], payload=item.get("payload"), checkpoint=self.checkpoint)
        if item["kind"] == "failed":
            outcome = ItemOutcome(raw, [], item["message"])
            if item["key"] == self.job.start_url:
                self.start_failure = item["message"]
        else:
            # a record id given twice is caught by the store, against the catalog
            outcome = self.source.outcome(raw, self.prepare)
        self.batch.append(outcome)
        if self.due(len(self.batch), self.source.batch_size):
            self.commit()
        return {"key": item["key"]}

    def commit(self) -> None:
        for outcome in self.refused():
            outcome.item.checkpoint = self.checkpoint
            self.batch.append(outcome)
        if self.batch:
            self.store.commit(self.catalog, self.batch, self.plugin)
            emit(advance=sum(len(o.records) or 1 for o in self.batch))
            self.batch = []
        self.last_commit = time.monotonic()

    def close_spider(self) -> None:
        self.commit()

    def spider_closed(self, spider, reason: str) -> None:
        from monalia.stages.harvest.record_store import state_row

        if self.tracker is None:
            return
        complete = reason == "finished"
        with self.catalog.session() as session:
            row = state_row(session, self.instance, self.plugin)
            # a complete crawl starts over next time (to see changes); any other keeps its
            # checkpoint so the next run skips what this one stored
            row.checkpoint = None if complete else self.checkpoint
            row.updated_at = utcnow()
            row.last_run_id = self.tracker.id
        if self.start_failure is not None:
            status, message = FAILED, f"cannot read {self.job.start_url}: {self.start_failure}"
        elif complete:
            status, message = DONE, None
            skipped = getattr(spider, "skipped", 0)
            if skipped:
                message = f"{skipped} item(s) stored by the interrupted run were skipped"
        elif reason == LIMIT_REASON:
            status = DONE
            message = f"stopped at --limit {self.job.limit}; the next run goes on from there"
        else:
            status, message = INTERRUPTED, f"the crawl stopped ({reason})"
        info = self.tracker.finish(status, message)
        emit(finished=info.status)


class DryRunPipeline(_CatalogPipeline):
    """A harvest's dry run: items parsed, checked and counted against the catalog as a harvest
    would store them; nothing is written. The counts go to the parent when the crawl ends."""

    def open_spider(self) -> None:
        from monalia.api.source import DuplicateIds, SourceState

        self.catalog = open_catalog(self.job.catalog)
        self.source = job_source(self.job)
        self.source.state = SourceState()
        self.duplicates = DuplicateIds()
        self.counts = {"seen": 0, "new": 0, "changed": 0, "unchanged": 0, "failed": 0}
        self.failures: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []
        self.pending: list[Any] = []

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        raw = RawItem(key=item["key"], payload=item.get("payload"))
        if item["kind"] == "failed":
            outcome = ItemOutcome(raw, [], item["message"])
        else:
            outcome = self.duplicates.check(self.source.outcome(raw))
        self.count(outcome)
        self.pending.extend(outcome.records)
        if self.due(len(self.pending), 500):
            self.commit()
        return {"key": item["key"]}

    def count(self, outcome: ItemOutcome) -> None:
        self.counts["seen"] += seen_count(outcome)
        self.warnings.extend((outcome.item.key, w) for w in outcome.warnings)
        if outcome.error is not None:
            self.counts["failed"] += 1
            if len(self.failures) < 20:
                self.failures.append((outcome.item.key, outcome.error))

    def commit(self) -> None:
        from monalia.stages.harvest.record_store import classify

        for outcome in self.refused():
            self.count(outcome)
        for change in classify(self.catalog, self.job.source, self.pending):
            self.counts[change] += 1
        emit(advance=len(self.pending))
        self.pending = []
        self.last_commit = time.monotonic()

    def close_spider(self) -> None:
        self.commit()

    def spider_closed(self, spider, reason: str) -> None:
        emit(
            dry_run={
                "counts": self.counts,
                "failures": self.failures,
                "warnings": self.warnings[:20],
                "complete": reason in ("finished", LIMIT_REASON),
            }
        )


class ImagePipeline(_CatalogPipeline):
    """Images: check, store by hash, record the outcome on every catalog row of the URL. The
    run belongs to the process that started the crawl (one run, several crawl processes): this
    pipeline reports its counts and failures with each commit."""

    def open_spider(self) -> None:
        job = self.job
        self.catalog = open_catalog(job.catalog)
        data_dir = Path(job.data_dir)
        self.store = ImageStore(data_dir / job.folder, data_dir)
        self.box = (job.width, job.height)
        self.limits = ImageLimits(**job.limits)
        self.pending: list[tuple[list[int], dict[str, Any], str | None, str]] = []

    def examine(self, item: dict[str, Any]) -> dict[str, Any]:
        """The catalog values for an item (runs in a worker thread: decoding is the slow part)."""
        values: dict[str, Any] = {
            "fetched_at": datetime.now(UTC),
            "http_status": item["status"],
            "sha256": None,
            "bytes": None,
            "width": None,
            "height": None,
            "path": None,
        }
        if item["error"] is not None:
            values.update(status="failed" if item["transient"] else "rejected", error=item["error"])
            return values
        try:
            image = prepare(item["body"], item["content_type"], self.box, self.limits)
        except ImageRejected as exc:
            values.update(status="rejected", error=str(exc))
            return values
        values.update(
            status="fetched",
            error=None,
            sha256=image.sha256,
            bytes=len(image.data),
            width=image.width,
            height=image.height,
            path=self.store.put(image),
        )
        return values

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        values = await maybe_deferred_to_future(deferToThread(self.examine, item))
        self.pending.append((item["ids"], values, values.get("error"), item["url"]))
        if self.due(len(self.pending), 500):
            self.commit()
        return {"ids": item["ids"]}

    def commit(self) -> None:
        if self.pending:
            seen = new = rows = 0
            failed: list[list[Any]] = []
            with self.catalog.session() as session:
                for ids, values, error, url in self.pending:
                    # a row another crawl has fetched meanwhile (a run started while the
                    # crawls of a killed one were finishing) is left to the run that fetched it
                    stored = session.execute(
                        update(ImageRow)
                        .where(ImageRow.id.in_(ids), ImageRow.status != "fetched")
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    rows += len(ids)
                    seen += stored
                    if error is None:
                        new += stored
                    elif stored:
                        failed.append([url, error, stored])
                if self.job.run_id is not None:
                    # the counts go in with the work they count: a kill at any moment leaves
                    # the run's counts equal to what is stored
                    add_to_run(session, self.job.run_id, seen, new, failed)
            emit(
                seen=seen,
                new=new,
                failed=failed,
                advance=rows,
                committed=self.job.run_id is not None,
            )
            self.pending = []
        self.last_commit = time.monotonic()

    def close_spider(self) -> None:
        self.commit()

    def spider_closed(self, spider, reason: str) -> None:
        emit(finished=DONE if reason == "finished" else INTERRUPTED)
