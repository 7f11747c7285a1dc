"""Runs a crawl in a child process and follows it: progress from its JSON lines, the run it
recorded read back from the catalog. Ctrl-C or SIGTERM stops the crawl gracefully (its run is
recorded as interrupted); a crawl that dies leaves its run to `mark_interrupted_runs`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from typing import Any

from monalia.catalog import Catalog
from monalia.errors import MonaliaError
from monalia.pipeline.runs import RunInfo, load_run, mark_interrupted_runs
from monalia.progress import Progress

STOP_GRACE = 60.0  # seconds a stopped crawl has to record where it was


def run_crawl(catalog: Catalog, job: dict[str, Any], progress: Progress | None = None) -> RunInfo:
    """Run the crawl `job` in its own process; return the run it recorded."""
    run_id: int | None = None
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", "monalia.harvesters.crawl"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            # its own session: a terminal's Ctrl-C reaches only this process, which stops the
            # crawl with one SIGTERM (a second signal would make Scrapy stop uncleanly)
            start_new_session=True,
        )
        try:
            child.stdin.write(json.dumps(job))
            child.stdin.close()
            for line in child.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # a library printing to stdout: not ours
                if "run" in message:
                    run_id = message["run"]
                elif progress is not None and "total" in message:
                    progress.set_total(message["total"])
                elif progress is not None and "advance" in message:
                    progress.advance(message["advance"])
            child.wait()
        except BaseException:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)  # Scrapy closes the spider: run interrupted
                try:
                    child.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            raise
        finally:
            if progress is not None:
                progress.close()
        if run_id is None:
            errors.seek(0)
            lines = [line.strip() for line in errors if line.strip()]
            tail = lines[-1] if lines else f"exit status {child.returncode}"
            raise MonaliaError(f"the crawl process ended before it started its run: {tail}")
    mark_interrupted_runs(catalog)  # a crawl killed outright left its run as running
    return load_run(catalog, run_id)
