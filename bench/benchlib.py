"""What every bench shares: alternating repeats, medians with their spread, criteria printed as
met or not, the last line judged on the worst criterion, and peak memory read where the work ran.

The scripts run as `python bench/NAME`, so this folder is on their import path.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MONALIA = str(Path(sys.executable).parent / "monalia")


def monalia(folder: Path, *args: str) -> str:
    """`monalia --quiet ARGS` run in `folder`; its stdout, or the bench stops saying why."""
    done = subprocess.run([MONALIA, "--quiet", *args], cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"monalia {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Samples:
    """Repeated measurements of one thing, in the order they were taken."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, digits: int = 2) -> str:
        """``1.23 s (1.10-1.40, 3 runs)``: the median, then the lowest and highest."""
        low, high = min(self.values), max(self.values)
        return (
            f"{self.median:,.{digits}f} {self.unit} "
            f"({low:,.{digits}f}-{high:,.{digits}f}, {len(self.values)} runs)"
        )


def alternate(runs: dict[str, Callable[[], float]], repeat: int, unit: str) -> dict[str, Samples]:
    """Each run `repeat` times, interleaved (A B C, B C A, C A B, ...): no run always goes first,
    into a warm or a cold machine, and a slow spell of the machine hits every run alike."""
    samples = {name: Samples(name, unit) for name in runs}
    names = list(runs)
    for round_number in range(repeat):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            print(f"  {name} ({round_number + 1}/{repeat}) ...", file=sys.stderr, flush=True)
            samples[name].values.append(runs[name]())
    return samples


@dataclass
class Criterion:
    """One target: `value` against `target`, higher better unless `at_most`."""

    what: str
    value: float
    target: float
    at_most: bool = False
    unit: str = "x"

    @property
    def score(self) -> float:
        """>= 1 when met; how far from the target otherwise, on one scale for every criterion."""
        if self.at_most:
            return self.target / self.value if self.value > 0 else float("inf")
        return self.value / self.target

    @property
    def met(self) -> bool:
        return self.value <= self.target if self.at_most else self.value >= self.target

    def describe(self) -> str:
        sign = "<=" if self.at_most else ">="
        value = (
            f"{self.value:,.2f}{self.unit}"
            if self.unit == "x"
            else f"{self.value:,.2f} {self.unit}"
        )
        target = (
            f"{self.target:,}{self.unit}" if self.unit == "x" else f"{self.target:,} {self.unit}"
        )
        return f"{self.what}: {value} (target {sign} {target}) {'met' if self.met else 'NOT MET'}"


def verdict(bench: str, criteria: Sequence[Criterion], figures: str) -> str:
    """Print every criterion, then return the bench's last line, judged on the worst one."""
    for criterion in criteria:
        print(f"criterion {criterion.describe()}")
    worst = min(criteria, key=lambda criterion: criterion.score)
    met = sum(criterion.met for criterion in criteria)
    sign = "<=" if worst.at_most else ">="
    unit = "" if worst.unit == "x" else f" {worst.unit}"
    return (
        f"bench {bench}: ratio {worst.value:.2f}{unit} (target {sign} {worst.target}{unit}) — "
        f"worst of {len(criteria)} criteria ({met} met): {worst.what}; {figures}"
    )


def peak_mb() -> float:
    """This process's own peak resident memory (VmHWM), in MB: unlike ru_maxrss, never a figure
    inherited from the parent that started it."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def compile_bytecode() -> str:
    """Compile monalia's modules to bytecode, as pip does when it installs a wheel, and say so.

    An editable install leaves that to the first import, and an environment that sets
    PYTHONDONTWRITEBYTECODE (as this machine's does) never writes it: every fresh process would
    then compile each of monalia's modules again before doing anything, which is not what an
    installed package costs its user."""
    import compileall

    folders = [
        REPO / name for name in ("monalia", "plugins", "harvesters") if (REPO / name).is_dir()
    ]
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)
    return (
        "bytecode compiled for "
        + ", ".join(f.name for f in folders)
        + " (as a wheel install has it)"
    )


def timed_process(
    args: Sequence[str], cwd: Path | None = None, env: dict | None = None
) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of a fresh process, from its start to its exit, as a user waits for it."""
    started = time.perf_counter()
    done = subprocess.run(
        list(args),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited with {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return seconds, done
