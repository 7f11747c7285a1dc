"""Base class of source plugins: a source says how to read items and turn one into a record.

The framework owns the rest: resuming where an unfinished run stopped, batching, commits, content
hashes, counts, progress and the reporting of malformed records. A source author writes::

    class MuseumSource(Source):
        name = "my-museum"
        Settings = MuseumSettings

        def items(self, state):
            for page in ...:
                for obj in page:
                    yield RawItem(key=obj["id"], payload=obj, checkpoint={"page": n})

        def parse(self, item):
            return Record(source_id=item.payload["id"], title=item.payload.get("title"), ...)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from monalia.api.plugin import Plugin
from monalia.api.records import Record, mint_iri
from monalia.errors import RecordError, SourceUnavailable
from monalia.net.url_policy import UrlRefused


@dataclass
class RawItem:
    """One item as the source reads it, before parsing.

    `key` identifies the item in error reports (an identifier, a line number). `checkpoint` says
    where to resume once this item is stored; it must be JSON-serialisable.
    """

    key: str
    payload: Any
    checkpoint: Any = None


@dataclass
class SourceState:
    """What a source knows from earlier runs when it starts reading.

    `checkpoint` is where an unfinished run stopped (resume after it); `bookmark` is the greatest
    `replication_key` value of the last complete run (read only what changed after it); `since`
    is the user's ``--since``, which takes precedence over the bookmark.
    """

    checkpoint: Any = None
    bookmark: Any = None
    since: str | None = None

    @property
    def changed_after(self) -> Any:
        """The lower bound of an incremental read, or None to read everything."""
        return self.since if self.since is not None else self.bookmark


def seen_count(outcome: ItemOutcome) -> int:
    """What an item adds to a run's `seen`: its records, or 1 when it failed. An item the
    source's own settings leave out (``parse`` returned None: not CC0, not changed since) is
    not seen, as if the service had filtered it, so seen = new + changed + unchanged + failed
    holds."""
    return len(outcome.records) or (1 if outcome.error is not None else 0)


@dataclass
class ItemOutcome:
    """What one raw item gave: its valid records, or the reason it was rejected, and the
    warnings its parse raised (`Source.warn`), which lose nothing but are worth a look."""

    item: RawItem
    records: list[Record]
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class DuplicateIds:
    """Tells, over one dry run, when an item gives a record id an earlier item already gave.

    Storing both would silently replace the first with the second, so the later item is
    rejected with a reason naming the earlier one; the first stays as it was read. It keeps
    every id it saw: a harvest asks the catalog instead (`RecordStore.commit`), which keeps
    its memory flat however long the run.
    """

    def __init__(self) -> None:
        self.first_item: dict[str, str] = {}

    def check(self, outcome: ItemOutcome) -> ItemOutcome:
        if outcome.error is not None:
            return outcome
        ids: dict[str, None] = {}
        for record in outcome.records:
            earlier = self.first_item.get(record.source_id)
            if earlier is not None or record.source_id in ids:
                where = f"by {earlier}" if earlier is not None else "twice by this item"
                return ItemOutcome(
                    outcome.item,
                    [],
                    f"duplicate id {record.source_id!r}: already read {where}; "
                    "this one is left out",
                    outcome.warnings,
                )
            ids[record.source_id] = None
        for source_id in ids:
            self.first_item[source_id] = outcome.item.key
        return outcome


@dataclass(frozen=True)
class CrawlSpec:
    """How a crawled source is read: by a Scrapy spider in a crawl process of its own.

    `spider` is the spider class's dotted path (imported in the crawl process); it is created
    with `arguments` and ``skip``, the source ids already stored by the unfinished run being
    resumed (a spider counts those it leaves out in its ``skipped`` attribute). It yields
    ``{"kind": KIND, "key": KEY, "payload": PAYLOAD}`` for each item, which the source's `parse`
    turns into records, and ``{"kind": "failed", "key": KEY, "message": REASON}`` for one it
    could not read. `settings` are the crawl's politeness (`monalia.executors.jobs.CrawlSettings`
    fields); when `start_url` cannot be read the run fails.
    """

    spider: str
    arguments: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    start_url: str | None = None


class Source(Plugin):
    """Base of every source plugin. Subclasses implement `items` and `parse`, or `crawl` and
    `parse` for a source read by a Scrapy spider."""

    kind: ClassVar[str] = "source"
    # Record attribute whose greatest value, after a complete run, becomes the bookmark that the
    # next run starts from (e.g. "modified"). None: every run reads everything and unchanged
    # records are recognised by their content hash.
    replication_key: ClassVar[str | None] = None
    # records stored per commit; a commit also happens after `[harvest] commit_seconds`, so a
    # killed run loses at most that much work however slow the source
    batch_size: ClassVar[int] = 500
    # the harvest may run `items` and `parse` in a second process while it writes in the first
    # (`monalia.stages.harvest.parse_worker`); a source whose parse keeps state the harvest
    # reads afterwards, other than `new_bookmark`, sets this False
    parse_in_worker: ClassVar[bool] = True

    # -- what a plugin writes ---------------------------------------------------------------

    def items(self, state: SourceState) -> Iterable[RawItem]:
        """Yield the raw items to harvest, starting after `state.checkpoint` when it is set.
        A source that reads pages (`read_page`) gets its items from them."""
        if not self.reads_pages():
            raise NotImplementedError(f"{type(self).__name__} must implement items()")
        for page in self.pages(state):
            yield from self.page_items(page)

    def page_cursor(self, state: SourceState) -> Any:
        """For a source whose input comes in pages, each naming the next (an OAI-PMH list):
        where the first page to read is, from `state.checkpoint` when it is set. A cursor must
        pickle: the harvest may read and parse pages in several processes, each reading its
        page and handing the cursor of the next one on. Implemented with `read_page` and
        `page_items`, in place of `items`."""
        raise NotImplementedError(f"{type(self).__name__} does not read pages")

    def read_page(self, cursor: Any) -> tuple[Any, Any]:
        """Read the page at `cursor`; return the page and the cursor of the next one (None
        after the last). The page stays in the process that read it, for `page_items`.
        An exception fails the run after the pages before it are stored."""
        raise NotImplementedError(f"{type(self).__name__} does not read pages")

    def page_items(self, page: Any) -> Iterable[RawItem]:
        """The raw items of one page from `read_page`, in order, each with its checkpoint."""
        raise NotImplementedError(f"{type(self).__name__} does not read pages")

    def pages(self, state: SourceState) -> Iterator[Any]:
        """Every page, read one after the other in this process."""
        cursor = self.page_cursor(state)
        while cursor is not None:
            page, cursor = self.read_page(cursor)
            yield page

    @classmethod
    def reads_pages(cls) -> bool:
        """Whether the source implements `page_cursor`, `read_page` and `page_items`."""
        return cls.read_page is not Source.read_page

    def parse(self, item: RawItem) -> Record | list[Record] | None:
        """Turn one raw item into a record (or several, or None to leave it out).

        Raise `RecordError` (or any exception) for a malformed item: it is reported and skipped.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement parse()")

    def crawl(self) -> CrawlSpec | None:
        """The spider that reads this source, for a crawled source; None (the default) for a
        source read through `items`."""
        return None

    def new_bookmark(self) -> Any:
        """After a complete run, the bookmark the next run starts from, for a source that knows
        it better than the greatest `replication_key` value (an OAI-PMH response date); None:
        the framework's own."""
        return None

    def estimate_total(self, state: SourceState) -> int | None:
        """How many items this run will read, when the source can tell cheaply (for progress)."""
        return None

    def open(self) -> None:
        """Acquire what reading needs (sessions, connections). Called once before `items`."""

    def close(self) -> None:
        """Release what `open` acquired. Called once, however the run ended."""

    def input_file(self) -> Path:
        """The file the `path` setting names, from the project's folder; an error if absent."""
        path = self.context.path(self.settings.path)
        if not path.is_file():
            raise SourceUnavailable(f"{self.context.instance}: no such file {path}")
        return path

    # -- what the framework calls -----------------------------------------------------------

    def harvest(self, state: SourceState, prepare=None) -> Iterator[ItemOutcome]:
        """Read, parse and check every item; yield one outcome per item, in order.

        `prepare` is called with each record before it is checked (the `prepare_record` hook).
        An item's records are all valid or the item is rejected whole, so that a resume
        checkpoint never falls in the middle of an item. A record id given twice in a run is
        caught where the records are stored (or counted, `DuplicateIds`), not here.
        """
        self.state = state  # parse() may consult it, e.g. to apply --since
        for item in self.items(state):
            yield self.outcome(item, prepare)

    def outcome(self, item: RawItem, prepare=None) -> ItemOutcome:
        """Parse and check one item (for sources whose items arrive some other way, e.g. a
        crawl): its valid records, or the reason it was rejected."""
        self._warnings: list[str] = []
        try:
            parsed = self.parse(item)
            records = [] if parsed is None else parsed if isinstance(parsed, list) else [parsed]
            records = [self._finish(record, prepare) for record in records]
        except RecordError as exc:
            return ItemOutcome(item, [], str(exc), self._warnings)
        except Exception as exc:  # a malformed item must not stop the run
            return ItemOutcome(item, [], f"{type(exc).__name__}: {exc}", self._warnings)
        return ItemOutcome(item, records, None, self._warnings)

    def warn(self, message: str) -> None:
        """From `parse`: something about the item worth a look that loses nothing (a repaired
        link, a dropped value). Kept on the run as a warning event and counted."""
        warnings = getattr(self, "_warnings", None)
        if warnings is not None:
            warnings.append(message)

    def _drop_refused_images(self, record: Record) -> None:
        """Images the project's URL policy does not fetch leave the record, each with a
        warning; the URL stays in the raw payload, the record is kept."""
        if not record.images:
            return
        policy = self.context.url_policy
        local = self.reads_local_input()
        trusted = self.__dict__.get("_configured_host", ...)
        if trusted is ...:  # once per source: this runs for every record
            trusted = self.__dict__["_configured_host"] = self.configured_host()
        kept = []
        for image in record.images:
            try:
                policy.check(image.url, local_source=local, trusted_host=trusted)
                if image.iiif_service:
                    policy.check(image.iiif_service, trusted_host=trusted)
            except UrlRefused as exc:
                self.warn(f"image {str(image.url)[:200]!r} is not fetched: {exc}")
                continue
            except Exception as exc:  # a check that cannot finish refuses: fail closed
                self.warn(
                    f"image {str(image.url)[:200]!r} is not fetched: its URL could not be "
                    f"checked ({type(exc).__name__})"
                )
                continue
            kept.append(image)
        if len(kept) != len(record.images):
            if kept and not any(image.is_main for image in kept):
                kept[0].is_main = True
            record.images = kept

    def item_key(self, source_id: str) -> str:
        """The key of the item a record came from (a crawled source resumes by it)."""
        return source_id

    def configured_host(self) -> str | None:
        """The host of the service the user pointed this source at (its ``url`` or ``endpoint``
        setting): its own addresses may be private, the user chose them."""
        for name in ("url", "endpoint"):
            value = getattr(self.settings, name, None)
            if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
                try:
                    return (urlsplit(value).hostname or "").lower() or None
                except ValueError:
                    return None
        return None

    def reads_local_input(self) -> bool:
        """Whether this source's own input is a local file (only such a source may name local
        files as images, and only when the project allows file URLs)."""
        return False

    def _finish(self, record: Record, prepare) -> Record:
        if not isinstance(record, Record):
            raise RecordError(f"parse() returned {type(record).__name__}, not a monalia Record")
        if prepare is not None:
            prepare(record)
        self._drop_refused_images(record)
        if record.iri is None and isinstance(record.source_id, str) and record.source_id.strip():
            record.iri = mint_iri(self.context.base_iri, self.context.instance, record.source_id)
        record.validate()
        return record


def file_fingerprint(path: Path) -> str:
    """Size and modification time of a file: a checkpoint taken in another version of the file
    does not apply, and the source must start again from the top."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"
