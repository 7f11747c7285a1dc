"""A source read and parsed in a second process while the harvest writes in the first.

Reading, parsing, checking and hashing a batch take about as long as storing it; on one core
the two alternate. Here a worker process, forked once the source is open, runs the source's
`harvest` (its `items`, `parse`, the URL policy, `validate`, the content hash) and sends each
item's outcome with its records already in their stored form (`PreparedRecord`: plain columns,
cheap to pickle; a pickled `Record` costs more to send than to parse again). The writer stores
them in order, batch by batch, as it stores outcomes read in its own process: the checkpoints,
counts and failures are the same, and a kill of either process loses at most the batch in
hand. The worker reads at most `ahead` records (two batches) ahead of the writer.

A source that reads its input in pages, each naming the next (`Source.reads_pages`: an
OAI-PMH list), is read by one process and parsed by several: the reading process fetches page
after page and hands them round, as bytes, to the parsing processes (a parsed page cannot
cross), which send their outcomes to the writer; the writer takes them page by page in the
same rotation, so the order, the checkpoints and the errors are those of one process, and
every page is fetched once, in order.

Used only where it changes nothing a user sees: no `prepare_record` or `record_harvested` hook
(they run in the writer's process and may keep state there), a source that does not opt out
(`Source.parse_in_worker`), a system that can fork, and more than one CPU.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import io
import multiprocessing
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Iterator
from typing import Any

from monalia.api.source import Source, SourceState
from monalia.errors import MonaliaError
from monalia.stages.harvest.gc_tuning import between_batches, stop_collections
from monalia.stages.harvest.prepared import PreparedOutcome, PreparedRecord, record_values

CHUNK_RECORDS = 250  # records per message: small enough to keep both processes busy
CHUNK_SECONDS = 0.05  # a slow source's items reach the writer at least this often
REFILL_EVERY = 16  # items between two tries to refill the pipe while messages wait
COLLECT_EVERY = 2000  # records between two runs of the cycle collector


class WorkerLost(MonaliaError):
    """The parsing process ended without saying why (killed, out of memory)."""


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


class ParseWorker:
    """Runs `source.harvest(state)` in a forked process; iterate it for the prepared outcomes,
    in the source's order. After the last one, `bookmark` holds the source's `new_bookmark()`
    as the worker saw it. An exception the source raises is raised again here, after the
    outcomes that came before it."""

    def __init__(
        self,
        source: Source,
        state: SourceState,
        catalog=None,
        ahead: int = 10_000,
        processes: int = 1,
    ) -> None:
        self.source = source
        self.state = state
        self.catalog = catalog
        self.ahead = ahead  # records read ahead of the writer, at most
        # processes that parse pages side by side; only for a source that reads pages
        self.processes = max(1, processes) if source.reads_pages() else 1
        self.bookmark: Any = None
        self.ended = False
        self._held = 0  # outcomes received and not handed out yet
        self._reading: int | None = None
        self._channels: list = []  # from each parsing process, in the order pages go round
        self._processes: list = []

    def ready(self) -> bool:
        """Whether the next outcome is here already: one received and not handed out, or a
        message waiting in the pipe. The writer commits what it holds rather than wait."""
        if self._held:
            return True
        if self._reading is None:
            return False
        return bool(select.select([self._reading], [], [], 0)[0])

    def start(self) -> None:
        """Fork the processes: they read and parse from now on, `ahead` records at most ahead
        of the writer (a harvest starts them before it opens the catalog: `head_start`)."""
        if self._processes:
            return
        context = multiprocessing.get_context("fork")
        count = self.processes
        pipes = [os.pipe() for _ in range(count)]  # parser i to the writer
        for _, writing in pipes:
            _widen(writing)
        # the reading process hands page after page to parser after parser
        handing = [os.pipe() for _ in range(count)] if count > 1 else []
        for _, writing in handing:
            _widen(writing)
        name = f"monalia parse {getattr(self.source.context, 'instance', '')}"
        try:
            for number in range(count):
                target, args = (
                    (_parse_pages, (number, pipes, handing, self.source, self.state, self.catalog))
                    if count > 1
                    else (_work, (pipes, self.source, self.state, self.catalog))
                )
                process = context.Process(
                    target=target, args=(*args, self.ahead), name=name, daemon=True
                )
                process.start()
                self._processes.append(process)
            if count > 1:
                reader = context.Process(
                    target=_read_pages,
                    args=(pipes, handing, self.source, self.state, self.catalog),
                    name=f"{name} pages",
                    daemon=True,
                )
                reader.start()
                self._processes.append(reader)
        finally:
            # the worker processes hold the only writing ends: their exits end the reading
            for reading, writing in handing:
                os.close(reading)
                os.close(writing)
            for _, writing in pipes:
                os.close(writing)
            # unbuffered: what is not read yet stays in the pipe, where `ready` sees it
            self._channels = [os.fdopen(reading, "rb", buffering=0) for reading, _ in pipes]

    def stop(self) -> None:
        """End the processes (at once, unless they ended by themselves) and close the pipes;
        nothing more is read."""
        self._reading = None
        self._held = 0
        for channel in self._channels:
            channel.close()
        for process in self._processes:
            if process.is_alive() and not self.ended:
                process.terminate()  # the writer stopped early (--limit, an error)
        for process in self._processes:
            process.join()
        self._channels, self._processes = [], []

    def __iter__(self) -> Iterator[PreparedOutcome]:
        self.start()
        channels, processes, count = self._channels, self._processes, len(self._channels)
        turn = 0  # the channel the next outcome comes from: pages go round the parsers
        self._reading = channels[0].fileno()
        try:
            while True:
                kind, payload = _receive(channels[turn], processes[turn])
                if kind == "items" or kind == "page":
                    self._held = len(payload)
                    for outcome in payload:
                        self._held -= 1
                        yield _prepared(outcome)
                    if kind == "page":  # the page is whole: the next one is the next parser's
                        turn = (turn + 1) % count
                        self._reading = channels[turn].fileno()
                elif kind == "end":
                    self.bookmark = payload
                    self.ended = True
                    return
                else:
                    raise payload
        finally:
            self.stop()


def _receive(messages, process) -> tuple[str, Any]:
    message = _next_message(messages)
    if message is None:  # ended between two messages, or in the middle of one
        process.join(5)
        code = process.exitcode
        raise WorkerLost(
            "the parsing process ended without a word"
            + (f" (exit code {code})" if code else "")
            + "; the next run goes on from the last stored batch"
        )
    return message


_HEADER = struct.Struct("<Q")


def _read(messages, size: int) -> bytes | bytearray:
    """`size` bytes from the pipe, or fewer where it ended."""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        count = messages.readinto(view[got:])
        if not count:
            return data[:got]
        got += count
    return data


def _pickled(message: Any, fast: bool) -> bytes:
    """The message pickled; `fast` for outcomes ("items" and "page" messages), tuples of plain
    values: without the memo of every object already written (which only saves repeating a
    few short strings), a third less time. Exceptions may refer to themselves and keep it."""
    if not fast:
        return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(message)
    return buffer.getvalue()


def _widen(descriptor: int) -> None:
    """A pipe of 1 MB where the system allows it (64 KB by default): fewer, larger writes."""
    setting = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setting is not None:
        # where the system's limit is lower the default size works, with more writes
        with contextlib.suppress(OSError):
            fcntl.fcntl(descriptor, setting, 1 << 20)


class _Outbox:
    """Messages on their way to the writer, written without ever blocking the reading while
    fewer than `ahead` records wait: a pipe holds 1 MB, a batch is several. One thread: a
    sending thread would have to win the interpreter back after every write, and the reading
    thread holds it nearly all the time (measured: the worker stalled a third of a harvest)."""

    def __init__(self, descriptor: int, ahead: int) -> None:
        self.descriptor = descriptor
        self.ahead = ahead
        self.waiting: collections.deque[tuple[memoryview, int]] = collections.deque()
        self.records = 0  # records in the waiting messages

    def put(self, kind: str, payload: Any, records: int = 0) -> None:
        body = _pickled((kind, payload), fast=kind in ("items", "page"))
        self.waiting.append((memoryview(_HEADER.pack(len(body)) + body), records))
        self.records += records
        self.write(block=self.records > self.ahead)

    def write(self, block: bool) -> None:
        """Write what the pipe takes now; with `block`, wait for the writer until at most
        `ahead` records wait (none when `ahead` is 0). The pipe is always filled as far as it
        takes: a worker that stopped writing as soon as it was under `ahead` again handed the
        writer one message per chunk it made, and the writer, faster than that, waited."""
        while self.waiting:
            message, records = self.waiting[0]
            try:
                written = os.write(self.descriptor, message)
            except BlockingIOError:
                if not block or (self.ahead and self.records <= self.ahead):
                    return
                select.select([], [self.descriptor], [])
                continue
            if written < len(message):
                self.waiting[0] = (message[written:], records)
                continue
            self.waiting.popleft()
            self.records -= records

    def flush(self) -> None:
        """Wait until every waiting message is in the pipe."""
        ahead, self.ahead = self.ahead, 0
        try:
            self.write(block=True)
        finally:
            self.ahead = ahead

    def close(self) -> None:
        self.ahead = 0
        self.write(block=True)


class _Chunks:
    """Outcomes gathered into messages of about `CHUNK_RECORDS` records, or what came in
    `CHUNK_SECONDS`, prepared for the writer."""

    def __init__(self, outbox: _Outbox, key: str | None) -> None:
        self.outbox = outbox
        self.key = key
        self.chunk: list[tuple] = []
        self.records = 0
        self.since_collection = 0
        self.started = time.monotonic()

    def add(self, outcome) -> None:
        chunk = self.chunk
        item, records, key = outcome.item, outcome.records, self.key
        # the prepared outcome as plain tuples: named tuples cost twice as much to pickle
        values = [record_values(record, key) for record in records]
        chunk.append((item.key, item.checkpoint, values, outcome.error, outcome.warnings))
        self.records += len(records) or 1
        if self.records >= CHUNK_RECORDS or time.monotonic() - self.started >= CHUNK_SECONDS:
            self.send()
        elif self.outbox.waiting and len(chunk) % REFILL_EVERY == 0:
            # the pipe holds less than the writer reads between two commits: refilled once a
            # chunk, it would hand the writer a pipeful per chunk parsed
            self.outbox.write(block=False)

    def send(self, kind: str = "items") -> None:
        """Send what is gathered (a "page" message even when empty: it ends a page)."""
        if self.chunk or kind != "items":
            self.outbox.put(kind, self.chunk, self.records)
            self.since_collection += self.records
        self.chunk, self.records, self.started = [], 0, time.monotonic()
        if self.since_collection >= COLLECT_EVERY:
            between_batches()  # the cycle collector is off here too (gc_tuning)
            self.since_collection = 0


def _start(catalog) -> None:
    """What a worker process does first."""
    # Ctrl-C reaches the whole process group: the writer decides, and ends this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # ended by the writer with SIGTERM: at once, even inside a slow read (the command's own
    # handler, inherited with the fork, would raise KeyboardInterrupt into the source)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # the collector runs between chunks only, whether or not the writer had turned it off
    # when it forked this process (a head start forks before it does)
    stop_collections()
    if catalog is not None:
        # the writer's connections are not this process's to use or close
        catalog.engine.dispose(close=False)


def _work(pipes, source: Source, state: SourceState, catalog, ahead) -> None:
    """The worker's whole life: read, prepare, send in chunks, then the bookmark or the error."""
    for reading, _ in pipes:
        os.close(reading)
    _start(catalog)
    writing = pipes[0][1]
    os.set_blocking(writing, False)
    outbox = _Outbox(writing, ahead)
    chunks = _Chunks(outbox, source.replication_key)
    try:
        try:
            for outcome in source.harvest(state):
                chunks.add(outcome)
            chunks.send()
            outbox.put("end", source.new_bookmark())
        except BaseException as exc:
            chunks.send()
            outbox.put("error", _sendable(exc))
        outbox.close()
    except OSError:
        pass  # the writer is gone (it stopped early): nothing more to say
    finally:
        os.close(writing)


def _read_pages(pipes, handing, source: Source, state: SourceState, catalog) -> None:
    """The reading process of a paged source: read page after page and hand them round to
    the parsers; the bookmark or the error goes the same way, to come after the pages before
    it. It reads at most a pipeful of pages ahead of each parser."""
    for reading, writing in pipes:
        os.close(reading)
        os.close(writing)
    for reading, _ in handing:
        os.close(reading)
    _start(catalog)
    source.state = state
    turn = 0
    try:
        try:
            for page in source.pages(state):
                if not _handed(handing[turn][1], ("page", page)):
                    return  # the writer stopped early, or a parser was lost: the writer tells
                turn = (turn + 1) % len(handing)
            last = ("end", source.new_bookmark())
        except BaseException as exc:
            last = ("error", _sendable(exc))
        _handed(handing[turn][1], last)
    finally:
        for _, writing in handing:
            os.close(writing)


def _handed(descriptor: int, message: Any) -> bool:
    """Hand a message to a parser; False when it no longer reads."""
    try:
        _send(descriptor, message)
    except OSError:
        return False
    return True


def _parse_pages(number, pipes, handing, source: Source, state: SourceState, catalog, ahead):
    """Parser `number` of a paged source: each page it is handed, parsed into outcomes sent to
    the writer and ended by a "page" message; the reading process's last word passed on."""
    writing, receiving = pipes[number][1], handing[number][0]
    for index, (reading, other_writing) in enumerate(pipes):
        os.close(reading)
        if index != number:
            os.close(other_writing)
    for index, (page_reading, page_writing) in enumerate(handing):
        os.close(page_writing)
        if index != number:
            os.close(page_reading)
    _start(catalog)
    source.state = state  # parse() may consult it, as in `Source.harvest`
    os.set_blocking(writing, False)
    outbox = _Outbox(writing, ahead)
    chunks = _Chunks(outbox, source.replication_key)
    pages = os.fdopen(receiving, "rb", buffering=0)
    try:
        while True:
            if outbox.waiting and not select.select([receiving], [], [], 0)[0]:
                # nothing to parse: what waits goes to the writer first, which may be waiting
                # for it while the reading process waits for a parser that waits for the writer
                outbox.flush()
            message = _next_message(pages)
            if message is None or message[0] != "page":
                # the pages ended: the reading process's last word (the bookmark, an error)
                # goes to the writer in turn; without one the reading process is gone, or
                # another parser has it, and what this one parsed still goes to the writer
                if message is not None:
                    outbox.put(*message)
                outbox.close()
                return
            try:
                for item in source.page_items(message[1]):
                    chunks.add(source.outcome(item))
                chunks.send("page")
            except BaseException as exc:
                chunks.send()
                outbox.put("error", _sendable(exc))
                outbox.close()
                return
    except OSError:
        pass  # the writer is gone (it stopped early)
    finally:
        pages.close()
        os.close(writing)


def _next_message(messages) -> Any:
    """The next message of a pipe, or None where it ended."""
    header = _read(messages, _HEADER.size)
    size = _HEADER.unpack(header)[0] if len(header) == _HEADER.size else 0
    body = _read(messages, size) if size else b""
    if not body or len(body) < size:
        return None
    return pickle.loads(body)


def _send(descriptor: int, message: Any) -> None:
    """One message through a blocking pipe."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:
        data = data[os.write(descriptor, data) :]


def _prepared(sent: tuple) -> PreparedOutcome:
    key, checkpoint, records, error, warnings = sent
    return PreparedOutcome(
        key, checkpoint, list(map(PreparedRecord._make, records)), error, warnings
    )


def _sendable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling; else one that says the same."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return MonaliaError(f"{type(exc).__name__}: {exc}")
