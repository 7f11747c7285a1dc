"""Finding and killing the processes a run started, for the tests that kill one (Linux /proc)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The processes `pid` started."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def titled(prefix: str, *words: str) -> list[int]:
    """Processes whose command line starts with `prefix` and holds one of `words` (Ray names its
    workers ``ray::TASK``)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text.startswith(prefix) and (not words or any(word in text for word in words)):
            pids.append(int(cmdline.parent.name))
    return pids


def kill_one_when(
    find: Callable[[], list[int]], ready: Callable[[], bool] = lambda: True, timeout: float = 120
) -> tuple[threading.Thread, list[int]]:
    """A started thread that, once `ready()`, kills the first process `find()` gives with
    SIGKILL; the list holds its pid once done."""
    killed: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not killed:
            if ready():
                for pid in find()[:1]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed
