"""What a plugin sees of a stage run: its id, stage, plugin, settings, counts and status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"
COUNTS = ("seen", "new", "changed", "unchanged", "failed")


@dataclass
class RunInfo:
    """What plugins see of a run in lifecycle hooks."""

    id: int
    stage: str
    plugin: str | None
    target: str | None
    settings: dict[str, Any]
    status: str = RUNNING
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    message: str | None = None
    warnings: int = 0  # events worth a look that lost nothing (e.g. two documents claiming one id)
    started_at: datetime | None = None
    ended_at: datetime | None = None
