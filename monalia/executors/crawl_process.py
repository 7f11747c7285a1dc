"""Crawls run in child processes (Twisted's reactor starts once per process); this is the side
that starts and follows them.

`run_crawl` runs one crawl that records its own run (a IIIF harvest). `run_sharded_crawl` runs
several crawl processes, each on its share of the work, for one run this process records from
the counts and failures they report (the image stage). Either way, Ctrl-C or SIGTERM stops the
crawls gracefully, and each child is asked to stop if this process dies.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from monalia.catalog.database import Catalog
from monalia.catalog.run_tracking import (
    DONE,
    INTERRUPTED,
    RunInfo,
    RunTracker,
    load_run,
    mark_interrupted_runs,
)
from monalia.errors import MonaliaError
from monalia.executors.jobs import Job
from monalia.progress import Progress

STOP_GRACE = 60.0  # seconds a stopped crawl has to record where it was
FLUSH_EVERY = 2.0  # seconds between writes of a sharded run's counts


class CrawlProcess:
    """One crawl child: started with its job on stdin, its JSON lines read as they come."""

    def __init__(self, job: Job):
        # closed by close(), once the child is done and its last words read
        self.errors = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.child = subprocess.Popen(
            [sys.executable, "-m", "monalia.harvesters.crawl"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            # its own session: a terminal's Ctrl-C reaches only this process, which stops the
            # crawl with one SIGTERM (a second signal would make Scrapy stop uncleanly)
            start_new_session=True,
        )
        self.child.stdin.write(json.dumps(job.to_json()))
        self.child.stdin.close()

    def messages(self) -> Iterator[dict[str, Any]]:
        for line in self.child.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a library printing to stdout: not ours
            if isinstance(message, dict):
                yield message
        self.child.wait()

    def stop(self) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)  # Scrapy closes the spider cleanly
            try:
                self.child.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()

    def last_error(self) -> str:
        self.errors.seek(0)
        lines = [line.strip() for line in self.errors if line.strip()]
        return lines[-1] if lines else f"exit status {self.child.returncode}"

    def close(self) -> None:
        self.errors.close()


def follow(job: Job, progress: Progress | None, key: str) -> tuple[Any, CrawlProcess]:
    """Run the crawl `job` in its own process, showing its progress; return the last value it
    reported under `key` (None if it never did) and the finished process."""
    found: Any = None
    crawl = CrawlProcess(job)
    try:
        for message in crawl.messages():
            if key in message:
                found = message[key]
            elif progress is not None and "total" in message:
                progress.set_total(message["total"])
            elif progress is not None and "advance" in message:
                progress.advance(message["advance"])
    except BaseException:
        crawl.stop()
        raise
    finally:
        if progress is not None:
            progress.close()
        crawl.close()
    return found, crawl


def run_crawl(catalog: Catalog, job: Job, progress: Progress | None = None) -> RunInfo:
    """Run the crawl `job` in its own process; return the run it recorded."""
    run_id, crawl = follow(job, progress, "run")
    if run_id is None:
        raise MonaliaError(
            f"the crawl process ended before it started its run: {crawl.last_error()}"
        )
    mark_interrupted_runs(catalog)  # a crawl killed outright left its run as running
    return load_run(catalog, run_id)


def run_dry_crawl(job: Job, progress: Progress | None = None) -> dict[str, Any]:
    """Run a dry-run crawl (nothing written); return its counts, first failures and warnings."""
    result, crawl = follow(job, progress, "dry_run")
    if result is None:
        raise MonaliaError(f"the dry-run crawl ended without its counts: {crawl.last_error()}")
    return result


def run_sharded_crawl(
    catalog: Catalog,
    tracker: RunTracker,
    jobs: list[Job],
    progress: Progress | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> RunInfo:
    """Run one crawl process per job for the run `tracker` (started, in its ``with`` block,
    which records a crash or an interruption); the children report
    ``{"seen", "new", "failed": [[item, reason, count], ...], "advance"}`` and
    ``{"finished": status}``. The run ends done when every child finished its share."""
    inbox: queue.Queue = queue.Queue()
    crawls = [CrawlProcess(job) for job in jobs]

    def follow(number: int, crawl: CrawlProcess) -> None:
        try:
            for message in crawl.messages():
                inbox.put((number, message))
        finally:
            inbox.put((number, None))

    readers = [
        threading.Thread(target=follow, args=(n, c), daemon=True) for n, c in enumerate(crawls)
    ]
    for reader in readers:
        reader.start()
    finished: dict[int, str] = {}
    running = len(crawls)
    last_flush = time.monotonic()
    try:
        while running:
            try:
                number, message = inbox.get(timeout=FLUSH_EVERY)
            except queue.Empty:
                number, message = None, {}
            if message is None:
                running -= 1
                continue
            if "finished" in message:
                finished[number] = message["finished"]
            count_report(tracker, message)
            if progress is not None and message.get("advance"):
                progress.advance(message["advance"])
            if on_message is not None and message:
                on_message(message)
            if time.monotonic() - last_flush >= FLUSH_EVERY:
                with catalog.session() as session:
                    tracker.flush(session)
                last_flush = time.monotonic()
    except BaseException:
        for crawl in crawls:
            crawl.stop()
        for reader in readers:
            reader.join(STOP_GRACE)
        _drain(inbox, tracker)
        raise  # the tracker's block records how the run ended
    finally:
        if progress is not None:
            progress.close()
    failures = [
        f"crawl process {n + 1} of {len(crawls)} ended without finishing its share "
        f"(exit status {crawls[n].child.returncode}; {crawls[n].last_error()})"
        for n in range(len(crawls))
        if finished.get(n) != DONE
    ]
    for crawl in crawls:
        crawl.close()
    if failures:
        return tracker.finish(INTERRUPTED, "; ".join(failures))
    return tracker.finish(DONE)


def _drain(inbox: queue.Queue, tracker: RunTracker) -> None:
    """Count what the stopped children reported last."""
    while True:
        try:
            _, message = inbox.get_nowait()
        except queue.Empty:
            return
        if message:
            count_report(tracker, message)


def count_report(tracker: RunTracker, message: dict[str, Any]) -> None:
    """Add what a child committed to the run: counts, and each failure with its reason. A child
    that wrote them into the run itself (``committed``) is only passed on to the plugins."""
    if message.get("committed"):
        if tracker.hooks is not None:
            for item, reason, _ in message.get("failed", ()):
                tracker.hooks.item_failed(item=item, message=reason, run=tracker.info)
        return
    if message.get("seen"):
        tracker.add(seen=message["seen"], new=message.get("new", 0))
    for item, reason, count in message.get("failed", ()):
        tracker.fail_item(item, reason)
        tracker.add(failed=count - 1)
