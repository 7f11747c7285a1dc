"""Run tracking: every stage run is a row with its settings, status, counts and error events.

A run that dies without ending (SIGKILL, power loss) stays ``running`` in the catalog; the next
monalia process that opens the catalog sees that its process is gone and marks it ``interrupted``.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from monalia.api.run_info import COUNTS, DONE, FAILED, INTERRUPTED, RUNNING, RunInfo
from monalia.catalog.database import Catalog, database_error_line
from monalia.catalog.models import RunEventRow, RunRow, utcnow
from monalia.errors import CatalogError
from monalia.net.url_policy import mask_in_settings, mask_urls_in_text

log = logging.getLogger(__name__)


class CatalogBusy(CatalogError):
    """The same work is already running on this catalog."""


# A run on another host is taken as dead when it has not written for this long.
REMOTE_STALE_AFTER = timedelta(minutes=15)
# How many failure events one run keeps; beyond it only the count grows.
MAX_EVENTS = 10_000


def _process_start(pid: int) -> str | None:
    """The start time of a process, to tell a live run from a reused pid (Linux; else None)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # the command name (field 2) may hold spaces; fields after the last ')' are fixed
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return started is None or _process_start(pid) in (None, started)


def mark_interrupted_runs(catalog: Catalog) -> list[int]:
    """Mark runs whose process is gone as interrupted; return their ids."""
    host = socket.gethostname()
    now = utcnow()
    dead: list[int] = []
    with catalog.session() as session:
        for run in session.scalars(select(RunRow).where(RunRow.status == RUNNING)):
            if run.host == host:
                gone = not _process_alive(run.pid, run.pid_started)
            else:
                gone = now - run.heartbeat_at > REMOTE_STALE_AFTER
            if gone:
                dead.append(run.id)
        if dead:
            session.execute(
                update(RunRow)
                .where(RunRow.id.in_(dead), RunRow.status == RUNNING)
                .values(
                    status=INTERRUPTED,
                    ended_at=RunRow.heartbeat_at,
                    message="the process ended without finishing the run (killed or crashed)",
                )
            )
    return dead


class RunTracker:
    """Records one stage run: start, counts and events as it goes, and how it ended.

    Used as a context manager, it starts the run on entry; an exception that leaves the block
    ends the run as failed (interrupted for Ctrl-C or SIGTERM) with the exception's one line, and
    a block that ends normally without calling `finish` ends the run as done::

        with RunTracker(catalog, "enrich", plugin, target, settings, hooks) as tracker:
            ...
            return tracker.finish(DONE, "1,000 images scored")
    """

    def __init__(
        self,
        catalog: Catalog,
        stage: str,
        plugin: str | None = None,
        target: str | None = None,
        settings: dict[str, Any] | None = None,
        hooks=None,
        exclusive: str | None = None,
    ):
        """`exclusive`: "target" when no two runs of this stage on one target may run at once
        (two harvests of one source), "stage" when no two runs of this stage may; the later
        one is refused in one line and leaves no run behind."""
        self.catalog = catalog
        self.exclusive = exclusive
        self.hooks = hooks
        # settings are recorded for anyone to read: no URL's user info goes in
        self.info = RunInfo(0, stage, plugin, target, mask_in_settings(dict(settings or {})))
        self._pending_events: list[RunEventRow] = []
        self._events_kept = 0
        # True when other processes add the counts to the run's row as they commit their work
        # (the image stage's crawls): this tracker then reads the counts rather than writing them
        self.counted_elsewhere = False
        self._flushed = False  # whether counts were written with the work (see `finish`)

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def counts(self) -> dict[str, int]:
        return self.info.counts

    def start(self) -> RunTracker:
        now = utcnow()
        pid = os.getpid()
        with self.catalog.session() as session:
            row = RunRow(
                stage=self.info.stage,
                plugin=self.info.plugin,
                target=self.info.target,
                settings=self.info.settings,
                status=RUNNING,
                started_at=now,
                heartbeat_at=now,
                host=socket.gethostname(),
                pid=pid,
                pid_started=_process_start(pid),
                **dict.fromkeys(COUNTS, 0),
            )
            session.add(row)
            session.flush()
            self.info.id = row.id
        if self.exclusive:
            self._refuse_if_running()
        self.info.started_at = now
        if self.hooks is not None:
            self.hooks.stage_started(run=self.info)
        return self

    def _refuse_if_running(self) -> None:
        """Yield to an earlier run of the same work that is still alive. Both runs are in the
        catalog when either checks, so of two started together the later one yields."""
        query = select(RunRow).where(
            RunRow.stage == self.info.stage, RunRow.status == RUNNING, RunRow.id < self.id
        )
        if self.exclusive == "target":
            query = query.where(
                RunRow.target.is_(None)
                if self.info.target is None
                else RunRow.target == self.info.target
            )
        host, now = socket.gethostname(), utcnow()
        with self.catalog.session() as session:
            earlier = [
                run
                for run in session.scalars(query)
                if (
                    _process_alive(run.pid, run.pid_started)
                    if run.host == host
                    else now - run.heartbeat_at <= REMOTE_STALE_AFTER
                )
            ]
            if not earlier:
                return
            session.execute(delete(RunRow).where(RunRow.id == self.id))
        first = earlier[0]
        what = self.info.stage + (f" of {self.info.target}" if self.info.target else "")
        raise CatalogBusy(
            f"the catalog is busy: {what} is already running (run {first.id}, pid {first.pid} "
            f"on {first.host}); run this again when it has ended"
        )

    def __enter__(self) -> RunTracker:
        return self.start()

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self.info.ended_at is not None:
            return
        if exc is None:
            self.finish(DONE)
            return
        try:
            self.finish(status_for_exception(exc), exception_message(exc))
        except Exception as failure:
            if database_error_line(failure) is None:
                raise
            # the catalog cannot take the run's end either (still locked, still gone): the
            # run stays "running" until the next command finds its process gone and marks it
            # interrupted; the error that stopped it is what the user sees
            log.warning("run %s: its end could not be recorded: %s", self.id, failure)

    @property
    def finished(self) -> bool:
        return self.info.ended_at is not None

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            self.info.counts[name] += value

    def event(self, message: str, item: str | None = None, level: str = "error") -> None:
        """Keep an event (written with the next `flush`)."""
        if self._events_kept >= MAX_EVENTS:
            return
        self._events_kept += 1
        self._pending_events.append(
            RunEventRow(
                run_id=self.id,
                at=utcnow(),
                level=level,
                item=mask_urls_in_text(item) if item else item,
                message=mask_urls_in_text(message),
            )
        )

    def fail_item(self, item: str | None, message: str) -> None:
        """One item failed: count it, keep the event, tell the plugins."""
        self.add(failed=1)
        self.event(message, item=item)
        if self.hooks is not None:
            self.hooks.item_failed(item=item, message=message, run=self.info)

    def warn(self, item: str | None, message: str) -> None:
        """Something worth a look that lost nothing: counted apart, kept as a warning event."""
        self.info.warnings += 1
        self.event(message, item=item, level="warning")

    def flush(self, session) -> None:
        """Write counts, heartbeat and pending events in `session` (the caller commits, with
        the work the counts are of)."""
        self._flushed = True
        session.add_all(self._pending_events)
        self._pending_events = []
        if self.counted_elsewhere:
            session.execute(
                update(RunRow)
                .where(RunRow.id == self.id)
                .values(heartbeat_at=utcnow(), warnings=self.info.warnings)
            )
            row = session.execute(
                select(*(getattr(RunRow, name) for name in COUNTS)).where(RunRow.id == self.id)
            ).one()
            self.info.counts.update(zip(COUNTS, row, strict=True))
            return
        session.execute(
            update(RunRow)
            .where(RunRow.id == self.id)
            .values(heartbeat_at=utcnow(), warnings=self.info.warnings, **self.info.counts)
        )

    def finish(self, status: str, message: str | None = None) -> RunInfo:
        now = utcnow()
        message = mask_urls_in_text(message) if message else message
        with self.catalog.session() as session:
            if status != DONE and self._flushed:
                # a stage that commits its counts with its work: what counts is what was
                # committed; the batch that failed (or was cut off) was not, and the next run
                # reads it again
                self._pending_events = []
                row = session.execute(
                    select(*(getattr(RunRow, name) for name in COUNTS)).where(RunRow.id == self.id)
                ).one()
                self.info.counts.update(zip(COUNTS, row, strict=True))
            else:
                self.flush(session)
            session.execute(
                update(RunRow)
                .where(RunRow.id == self.id)
                .values(status=status, ended_at=now, message=message)
            )
        self.info.status, self.info.message, self.info.ended_at = status, message, now
        if self.hooks is not None:
            self.hooks.stage_finished(run=self.info)
        return self.info


def status_for_exception(exc: BaseException) -> str:
    """How a run ends when this exception stops it."""
    return INTERRUPTED if isinstance(exc, KeyboardInterrupt | SystemExit) else FAILED


def exception_message(exc: BaseException) -> str:
    """The one line a run records for the exception that stopped it."""
    if hasattr(exc, "format_message"):
        return exc.format_message()
    return database_error_line(exc) or str(exc) or type(exc).__name__


def load_run(catalog: Catalog, run_id: int) -> RunInfo:
    """A recorded run as a `RunInfo` (e.g. one another process ran)."""
    with catalog.session() as session:
        row = session.get(RunRow, run_id)
        if row is None:
            raise LookupError(f"no run {run_id} in the catalog")
        return RunInfo(
            id=row.id,
            stage=row.stage,
            plugin=row.plugin,
            target=row.target,
            settings=dict(row.settings or {}),
            status=row.status,
            counts={name: getattr(row, name) for name in COUNTS},
            message=row.message,
            warnings=row.warnings or 0,
            started_at=row.started_at,
            ended_at=row.ended_at,
        )
