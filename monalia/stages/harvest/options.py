"""What a harvest run was asked to do, and how it reads: in this process or in worker processes.

Apart from the stage (`monalia.stages.harvest`) so that `head_start` can use it without a cycle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from monalia.api.source import Source
from monalia.stages.harvest.parse_worker import can_fork


@dataclass
class HarvestOptions:
    """What the user asked of this harvest run."""

    limit: int | None = None  # stop after this many records
    since: str | None = None  # read only what changed after this (where the source can)
    restart: bool = False  # ignore the checkpoint and bookmark: read everything again
    # a commit every this many records (None: the source's batch size) or seconds, whichever
    # comes first: a killed run loses at most that much work
    commit_records: int | None = None
    commit_seconds: float = 10.0
    # read and parse in a second process while this one writes, where nothing changes by it
    # (see `parse_worker`); False: everything in this process
    parse_in_worker: bool = True
    # processes that parse a paged source's pages side by side (OAI-PMH); None: one per CPU,
    # at most `PARSE_PROCESSES`
    parse_processes: int | None = None


PARSE_PROCESSES = 4  # more rarely helps: the writer and the reading of pages are one each


def parse_processes(options: HarvestOptions) -> int:
    """How many processes parse a paged source's pages."""
    if options.parse_processes is not None:
        return max(1, options.parse_processes)
    return max(1, min(PARSE_PROCESSES, os.cpu_count() or 1))


def read_ahead(options: HarvestOptions, source: Source) -> int:
    """Records a worker reads ahead of the writer: two commits' worth, so that it reads while
    the writer commits."""
    return 2 * (options.commit_records or source.batch_size)


def wants_worker(options: HarvestOptions, hooks) -> bool:
    """Whether a harvest with these options and plugins reads in worker processes (where its
    source allows it): not where a hook runs for each record in the writer's process."""
    return (
        options.parse_in_worker
        and can_fork()
        and not has_implementations(hooks, "prepare_record")
        and not has_implementations(hooks, "record_harvested")
    )


def has_implementations(hooks, name: str) -> bool:
    """Whether any plugin implements the hook: a hook called for every record costs a few
    microseconds even when nothing listens, seconds over a large harvest."""
    caller = getattr(hooks, name, None) if hooks is not None else None
    return caller is not None and bool(caller.get_hookimpls())
