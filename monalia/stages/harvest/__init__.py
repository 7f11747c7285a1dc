"""The harvest stage: a source's records into the catalog, incrementally and resumably.

Records are committed in batches; each batch is committed together with the source's checkpoint
(where to resume) and the run's counts, so a run killed at any moment resumes without a gap or a
duplicate. A record whose content hash is unchanged is only marked as seen.

Importing this package loads neither SQLAlchemy nor the catalog (the functions that write
import them): the harvest command forks a source's reading processes first, and they read
while the writer loads the catalog's libraries (`head_start`).
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from monalia.api.records import Record
from monalia.api.source import CrawlSpec, DuplicateIds, Source, SourceState, seen_count
from monalia.progress import Progress
from monalia.project import PluginInstance
from monalia.stages.harvest.gc_tuning import batches_without_collections, between_batches
from monalia.stages.harvest.options import (
    HarvestOptions,
    has_implementations,
    parse_processes,
    read_ahead,
    wants_worker,
)
from monalia.stages.harvest.parse_worker import ParseWorker
from monalia.stages.harvest.prepared import (
    CHANGED,
    NEW,
    UNCHANGED,
    PreparedOutcome,
    prepare_outcome,
)

if TYPE_CHECKING:
    from monalia.catalog.database import Catalog
    from monalia.catalog.run_tracking import RunInfo
    from monalia.stages.harvest.head_start import HeadStart
    from monalia.stages.harvest.record_store import RecordStore


EARLY_COMMIT_AFTER = 0.1  # seconds after a commit before the writer commits what it holds


def harvest(
    catalog: Catalog,
    configured: PluginInstance,
    hooks=None,
    options: HarvestOptions | None = None,
    progress: Progress | None = None,
    head_start: HeadStart | None = None,
) -> RunInfo:
    """Harvest one configured source into the catalog; return the finished run.

    `head_start`: the source opened and its reading processes started before the catalog was
    opened (`head_start.start_ahead`); they are used where they read from the state the
    catalog holds now, and ended otherwise, however the run ends."""
    try:
        return _harvest(
            catalog, configured, hooks, options or HarvestOptions(), progress, head_start
        )
    finally:
        if head_start is not None:
            head_start.end()


def _harvest(
    catalog: Catalog,
    configured: PluginInstance,
    hooks,
    options: HarvestOptions,
    progress: Progress | None,
    head_start: HeadStart | None,
) -> RunInfo:
    from monalia.catalog.run_tracking import DONE, RunTracker
    from monalia.stages.harvest.record_store import RecordStore, load_state

    source: Source = head_start.source if head_start is not None else configured.create()
    spec = source.crawl()
    if spec is not None:
        return crawl_harvest(catalog, configured, source, spec, options, progress)
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
    progress = progress or Progress(f"harvest {configured.instance}", unit="records", enabled=False)
    prepare = None
    if has_implementations(hooks, "prepare_record"):

        def prepare(record: Record) -> None:
            hooks.prepare_record(record=record, source=source)

    with (
        RunTracker(
            catalog,
            "harvest",
            configured.info.name,
            configured.instance,
            settings,
            hooks,
            exclusive="target",
        ) as tracker,
        progress,
        batches_without_collections(),
    ):
        store = RecordStore(
            configured.instance,
            tracker,
            hooks if has_implementations(hooks, "record_harvested") else None,
        )
        if head_start is None:
            source.open()
        try:
            progress.set_total(source.estimate_total(state))
            worker = head_start.worker_for(state) if head_start is not None else None
            if worker is None and source.parse_in_worker and wants_worker(options, hooks):
                worker = ParseWorker(
                    source, state, catalog, read_ahead(options, source), parse_processes(options)
                )
            reading = read_and_commit(
                catalog, configured, source, state, options, store, progress, prepare, worker
            )
        finally:
            if head_start is not None:
                head_start.close_source()
            else:
                source.close()
        bookmark = worker.bookmark if worker is not None else source.new_bookmark()
        save_state(catalog, configured, source, reading, tracker.id, bookmark)
        message = (
            f"stopped at --limit {options.limit}; the next run goes on from there"
            if reading.limited
            else None
        )
        return tracker.finish(DONE, message)


@dataclass
class Reading:
    """Where a harvest's reading stopped: the last stored checkpoint, whether --limit stopped
    it, and the greatest replication key value seen."""

    checkpoint: Any
    limited: bool = False
    greatest: Any = None


def read_and_commit(
    catalog: Catalog,
    configured: PluginInstance,
    source: Source,
    state: SourceState,
    options: HarvestOptions,
    store: RecordStore,
    progress: Progress,
    prepare,
    worker: ParseWorker | None = None,
) -> Reading:
    """Read the source's items and commit them a batch at a time (every `commit_records`
    records or `commit_seconds` seconds, whichever comes first); read by `worker` in a second
    process when there is one, else here."""
    checkpoint, limited, greatest = state.checkpoint, False, None
    batch: list[PreparedOutcome] = []
    batch_records = 0
    taken = 0
    commit_records = options.commit_records or source.batch_size
    # with a worker, the writer commits what it holds instead of waiting for more, from a fifth
    # of a batch and a tenth of a second after the last commit: a slow source's records are
    # stored while it is read, and the last commit of a slow one is small. Not sooner: a commit
    # costs about a millisecond whatever it holds, taken from the parsing processes when they
    # keep the CPUs busy (commits of 125 records made a fast OAI-PMH harvest 10 % slower)
    early = max(1, commit_records // 5) if worker is not None else None
    last_commit = time.monotonic()
    key = source.replication_key
    keep = store.hooks is not None
    if worker is not None:
        outcomes = iter(worker)
    else:
        outcomes = (prepare_outcome(o, key, keep) for o in source.harvest(state, prepare))
    with closing(outcomes):  # a run stopped early ends the worker at once
        for outcome in outcomes:
            batch.append(outcome)
            size = len(outcome.records) or 1
            batch_records += size
            taken += size
            if key:
                for record in outcome.records:
                    value = record.replication
                    if value is not None and (greatest is None or value > greatest):
                        greatest = value
            if (
                batch_records >= commit_records
                or (
                    early is not None
                    and batch_records >= early
                    and time.monotonic() - last_commit >= EARLY_COMMIT_AFTER
                    and not worker.ready()
                )
                or time.monotonic() - last_commit >= options.commit_seconds
            ):
                checkpoint = store.commit(catalog, batch, configured.info.name)
                progress.advance(batch_records)
                batch, batch_records = [], 0
                between_batches()
                last_commit = time.monotonic()
            if options.limit is not None and taken >= options.limit:
                limited = True
                break
    if batch:
        checkpoint = store.commit(catalog, batch, configured.info.name)
        progress.advance(batch_records)
    return Reading(checkpoint, limited, greatest)


def save_state(
    catalog: Catalog,
    configured: PluginInstance,
    source: Source,
    reading: Reading,
    run_id: int,
    bookmark: Any = None,
) -> None:
    """A complete run clears the checkpoint, so the next run reads the source again (to find
    changes) from the new bookmark; a run stopped by --limit keeps it, so the next run goes on
    from there."""
    from monalia.catalog.models import utcnow
    from monalia.stages.harvest.record_store import state_row

    with catalog.session() as session:
        row = state_row(session, configured.instance, configured.info.name)
        if not reading.limited:
            row.checkpoint = None
            if bookmark is not None:
                row.bookmark = bookmark
            elif source.replication_key and reading.greatest is not None:
                row.bookmark = reading.greatest
        else:
            row.checkpoint = reading.checkpoint
        row.updated_at = utcnow()
        row.last_run_id = run_id


def crawl_harvest(
    catalog: Catalog,
    configured: PluginInstance,
    source: Source,
    spec: CrawlSpec,
    options: HarvestOptions,
    progress: Progress | None = None,
) -> RunInfo:
    """Harvest a crawled source: its spider runs in a crawl process of its own and commits
    through the item pipeline; a run that did not finish is resumed, skipping what it stored."""
    from monalia.executors.crawl_process import run_crawl
    from monalia.stages.harvest.record_store import load_state

    state = SourceState() if options.restart else load_state(catalog, configured.instance)
    checkpoint = state.checkpoint if isinstance(state.checkpoint, dict) else {}
    job = _crawl_job(catalog, configured, source, spec, options, checkpoint)
    return run_crawl(catalog, job, progress)


def _crawl_job(
    catalog: Catalog,
    configured: PluginInstance,
    source: Source,
    spec: CrawlSpec,
    options: HarvestOptions,
    checkpoint: dict[str, Any],
):
    from monalia.executors.jobs import CrawlSettings, HarvestJob

    return HarvestJob(
        catalog=catalog.url,
        source=configured.instance,
        plugin=configured.info.name,
        plugin_settings=configured.settings.model_dump(mode="json"),
        context={
            "project_dir": str(configured.context.project_dir),
            "data_dir": str(configured.context.data_dir),
            "base_iri": configured.context.base_iri,
        },
        spider=spec.spider,
        spider_arguments=dict(spec.arguments),
        start_url=spec.start_url,
        since_run=checkpoint.get("since_run"),
        limit=options.limit,
        crawl=CrawlSettings(**spec.settings),
        url_policy=asdict(configured.context.url_policy),
        settings={
            "settings": source.describe_settings(),
            "limit": options.limit,
            "restart": options.restart,
            "resumed_from": checkpoint or None,
        },
    )


def dry_run(
    catalog: Catalog,
    configured: PluginInstance,
    options: HarvestOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Read and check what a harvest would, write nothing; count new, changed, unchanged and
    failed records against the catalog as it is, and keep the first failures to show."""
    from monalia.stages.harvest.record_store import classify, load_state

    options = options or HarvestOptions()
    source: Source = configured.create()
    spec = source.crawl()
    if spec is not None:
        return crawl_dry_run(catalog, configured, source, spec, options, progress)
    state = SourceState() if options.restart else load_state(catalog, configured.instance)
    state.since = options.since
    counts = {"seen": 0, NEW: 0, CHANGED: 0, UNCHANGED: 0, "failed": 0}
    failures: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    progress = progress or Progress(f"dry run {configured.instance}", unit="records", enabled=False)

    def count(records: list[Record]) -> None:
        for change in classify(catalog, configured.instance, records):
            counts[change] += 1

    source.open()
    try:
        progress.set_total(source.estimate_total(state))
        pending: list[Record] = []
        duplicates = DuplicateIds()
        for outcome in map(duplicates.check, source.harvest(state)):
            counts["seen"] += seen_count(outcome)
            progress.advance(len(outcome.records) or 1)
            warnings.extend((outcome.item.key, w) for w in outcome.warnings)
            if outcome.error is not None:
                counts["failed"] += 1
                if len(failures) < 20:
                    failures.append((outcome.item.key, outcome.error))
            pending.extend(outcome.records)
            if len(pending) >= 1000:
                count(pending)
                pending = []
            if options.limit is not None and counts["seen"] >= options.limit:
                break
        count(pending)
    finally:
        source.close()
        progress.close()
    return {
        "source": configured.instance,
        "counts": counts,
        "failures": failures,
        "warnings": warnings[:20],
    }


def crawl_dry_run(
    catalog: Catalog,
    configured: PluginInstance,
    source: Source,
    spec: CrawlSpec,
    options: HarvestOptions,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The dry run of a crawled source: the same crawl, its items parsed and counted against the
    catalog in the crawl process, nothing written."""
    from monalia.executors.crawl_process import run_dry_crawl

    job = _crawl_job(catalog, configured, source, spec, options, {})
    return {"source": configured.instance, **run_dry_crawl(replace(job, dry_run=True), progress)}
