"""How `monalia enrich` runs, and what it produced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from monalia.catalog.run_tracking import RunInfo
from monalia.progress import Progress


@dataclass
class EnrichOptions:
    model: str | None = None
    device: str | None = None
    batch_size: int | None = None
    workers: int | None = None
    limit: int | None = None
    rescore: bool = False
    executor: str | None = None  # local or ray; None: [executor] kind
    score: bool = True  # False: only publish what the catalog holds
    sinks: list[str] | None = None
    regions: bool | None = None  # find where each detection is seen; None: [enrich] regions
    say: Callable[[str], None] = lambda message: None
    progress: Callable[[str, int | None, str], Progress] = lambda label, total, unit: Progress(
        label, total=total, unit=unit, enabled=False
    )


@dataclass
class EnrichOutcome:
    model: str
    run: RunInfo | None
    regions_run: RunInfo | None = None
    publish_runs: list[RunInfo] = field(default_factory=list)
