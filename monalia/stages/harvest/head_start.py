"""A harvest's reading started before the catalog is opened.

A fresh `monalia harvest` spends its first half second or so importing SQLAlchemy and the
catalog's models, opening the catalog and starting its run, on one core, before it reads
anything. `start_ahead` reads the source's state through the DB-API instead (as the quick
catalog reader does, without SQLAlchemy), opens the source and forks its reading and parsing
processes (`ParseWorker`), which read while the writer gets ready. The harvest then uses them
only where the state it finds in the catalog, inside its run, is the one they started from;
where it is not (another command harvested the source in between, or the catalog was made or
replaced meanwhile), they are ended and the harvest reads from the state it found, as it would
have without them. A catalog the quick reader leaves to `Catalog.open` (another database, an
older or newer schema, runs marked running) gets no head start.
"""

from __future__ import annotations

from dataclasses import dataclass

from monalia.api.source import Source, SourceState
from monalia.project import PluginInstance
from monalia.stages.harvest.options import (
    HarvestOptions,
    parse_processes,
    read_ahead,
    wants_worker,
)
from monalia.stages.harvest.parse_worker import ParseWorker


@dataclass
class HeadStart:
    """A source opened, and its worker processes reading from `state`, for `harvest`."""

    source: Source
    state: SourceState
    worker: ParseWorker
    source_open: bool = True

    def worker_for(self, state: SourceState) -> ParseWorker | None:
        """The worker, where it started from `state`; else None, and it is ended."""
        started = (self.state.checkpoint, self.state.bookmark, self.state.since)
        if started == (state.checkpoint, state.bookmark, state.since):
            return self.worker
        self.worker.stop()
        return None

    def close_source(self) -> None:
        if self.source_open:
            self.source_open = False
            self.source.close()

    def end(self) -> None:
        """End the processes where they still run and close the source; nothing is read after."""
        try:
            self.worker.stop()
        finally:
            self.close_source()


def start_ahead(
    catalog_url: str, configured: PluginInstance, hooks, options: HarvestOptions
) -> HeadStart | None:
    """The source's reading started from its stored state, where the harvest would read it in
    worker processes and the state can be read without opening the catalog; else None."""
    if not wants_worker(options, hooks):
        return None
    stored = stored_state(catalog_url, configured.instance)
    if stored is None:
        return None
    state = SourceState() if options.restart else stored
    state.since = options.since
    try:
        source: Source = configured.create()
        if source.crawl() is not None or not source.parse_in_worker:
            return None
        source.open()
    except Exception:
        return None  # the harvest meets the same error again, inside its run, which says it
    worker = ParseWorker(source, state, None, read_ahead(options, source), parse_processes(options))
    try:
        worker.start()
    except BaseException:  # a process that could not be forked: those that were are ended
        worker.stop()
        source.close()
        raise
    return HeadStart(source, state, worker)


def stored_state(catalog_url: str, instance: str) -> SourceState | None:
    """The source's state as the catalog holds it, read without SQLAlchemy: an empty one for a
    SQLite catalog not made yet; None where only `Catalog.open` can tell."""
    from monalia.catalog.reader import CatalogReader, sqlite_catalog_not_made

    if sqlite_catalog_not_made(catalog_url):
        return SourceState()
    reader = CatalogReader.open(catalog_url)
    if reader is None:
        return None
    try:
        checkpoint, bookmark = reader.source_state(instance)
    except Exception:
        return None  # a catalog the quick reader cannot read: the harvest opens it as usual
    finally:
        # closed before the fork: the worker processes must not share its connection
        reader.close()
    return SourceState(checkpoint=checkpoint, bookmark=bookmark)
