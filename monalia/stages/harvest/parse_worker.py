"""A source read and parsed in a second process while the harvest writes in the first.

Reading, parsing, checking and hashing a batch take about as long as storing it; on one core
the two alternate. Here a worker process, forked once the source is open, runs the source's
`harvest` (its `items`, `parse`, the URL policy, `validate`, the content hash) and sends each
item's outcome with its records already in their stored form (`PreparedRecord`: plain columns,
cheap to pickle; a pickled `Record` costs more to send than to parse again). The writer stores
them in order, batch by batch, as it stores outcomes read in its own process: the checkpoints,
counts and failures are the same, and a kill of either process loses at most the batch in
hand. The worker reads at most `ahead` records (two batches) ahead of the writer.

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
from monalia.stages.harvest.gc_tuning import between_batches
from monalia.stages.harvest.record_store import PreparedOutcome, PreparedRecord, prepare_outcome

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
        self, source: Source, state: SourceState, catalog=None, ahead: int = 10_000
    ) -> None:
        self.source = source
        self.state = state
        self.catalog = catalog
        self.ahead = ahead  # records read ahead of the writer, at most
        self.bookmark: Any = None
        self.ended = False
        self._held = 0  # outcomes received and not handed out yet
        self._reading: int | None = None

    def ready(self) -> bool:
        """Whether the next outcome is here already: one received and not handed out, or a
        message waiting in the pipe. The writer commits what it holds rather than wait."""
        if self._held:
            return True
        if self._reading is None:
            return False
        return bool(select.select([self._reading], [], [], 0)[0])

    def __iter__(self) -> Iterator[PreparedOutcome]:
        context = multiprocessing.get_context("fork")
        reading, writing = os.pipe()
        _widen(writing)
        process = context.Process(
            target=_work,
            args=(writing, reading, self.source, self.state, self.catalog, self.ahead),
            name=f"monalia parse {getattr(self.source.context, 'instance', '')}",
            daemon=True,
        )
        process.start()
        os.close(writing)  # the worker holds the only writing end: its exit ends the reading
        # unbuffered: what is not read yet stays in the pipe, where `ready` sees it
        messages = os.fdopen(reading, "rb", buffering=0)
        self._reading = reading
        try:
            while True:
                kind, payload = _receive(messages, process)
                if kind == "items":
                    self._held = len(payload)
                    for outcome in payload:
                        self._held -= 1
                        yield _prepared(outcome)
                elif kind == "end":
                    self.bookmark = payload
                    self.ended = True
                    return
                else:
                    raise payload
        finally:
            self._reading = None
            self._held = 0
            messages.close()
            if process.is_alive() and not self.ended:
                process.terminate()  # the writer stopped early (--limit, an error)
            process.join()


def _receive(messages, process) -> tuple[str, Any]:
    header = _read(messages, _HEADER.size)
    size = _HEADER.unpack(header)[0] if len(header) == _HEADER.size else 0
    body = _read(messages, size) if size else b""
    if not body or len(body) < size:  # ended between two messages, or in the middle of one
        process.join(5)
        raise WorkerLost(
            f"the parsing process ended without a word (exit code {process.exitcode}); the "
            "next run goes on from the last stored batch"
        )
    return pickle.loads(body)


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
    """The message pickled; `fast` for items, which are tuples of plain values: without the
    memo of every object already written (which only saves repeating a few short strings),
    a third less time. Exceptions may refer to themselves and keep the memo."""
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
        body = _pickled((kind, payload), fast=kind == "items")
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

    def close(self) -> None:
        self.ahead = 0
        self.write(block=True)


def _work(writing: int, reading: int, source: Source, state: SourceState, catalog, ahead) -> None:
    """The worker's whole life: read, prepare, send in chunks, then the bookmark or the error."""
    os.close(reading)
    # Ctrl-C reaches the whole process group: the writer decides, and ends this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # ended by the writer with SIGTERM: at once, even inside a slow read (the command's own
    # handler, inherited with the fork, would raise KeyboardInterrupt into the source)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if catalog is not None:
        # the writer's connections are not this process's to use or close
        catalog.engine.dispose(close=False)
    os.set_blocking(writing, False)
    outbox = _Outbox(writing, ahead)
    key = source.replication_key
    chunk: list[PreparedOutcome] = []
    records = since_collection = 0
    started = time.monotonic()
    try:
        try:
            for outcome in source.harvest(state):
                chunk.append(_plain(prepare_outcome(outcome, key)))
                records += len(outcome.records) or 1
                if records >= CHUNK_RECORDS or time.monotonic() - started >= CHUNK_SECONDS:
                    outbox.put("items", chunk, records)
                    since_collection += records
                    chunk, records, started = [], 0, time.monotonic()
                    if since_collection >= COLLECT_EVERY:
                        between_batches()  # the cycle collector is off here too (gc_tuning)
                        since_collection = 0
                elif outbox.waiting and len(chunk) % REFILL_EVERY == 0:
                    # the pipe holds less than the writer reads between two commits: refilled
                    # once a chunk, it would hand the writer a pipeful per chunk parsed
                    outbox.write(block=False)
            if chunk:
                outbox.put("items", chunk, records)
            outbox.put("end", source.new_bookmark())
        except BaseException as exc:
            if chunk:
                outbox.put("items", chunk, records)
            outbox.put("error", _sendable(exc))
        outbox.close()
    except OSError:
        pass  # the writer is gone (it stopped early): nothing more to say
    finally:
        os.close(writing)


def _plain(outcome: PreparedOutcome) -> tuple:
    """The outcome as plain tuples: pickling named tuples costs twice as much each way."""
    key, checkpoint, records, error, warnings = outcome
    return key, checkpoint, [tuple(record) for record in records], error, warnings


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
