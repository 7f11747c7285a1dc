"""Progress of long work (count, rate, time left) and the summary table that ends it.

On a terminal it is a live bar; elsewhere (CI, logs) a line every few seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO, Any


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Counts work as it is done and shows it. Use as a context manager."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "items",
        stream: IO[str] | None = None,
        enabled: bool = True,
        interval: float = 5.0,
    ):
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.count = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._rich: Any = None
        self._task: Any = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("elapsed,"),
                TimeRemainingColumn(),
                TextColumn("left"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._task = self._rich.add_task(label, total=total, rate="")

    def __enter__(self) -> Progress:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._rich is not None:
            self._rich.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, advance=n, rate=f"{self.rate:,.0f} {self.unit}/s")
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        """The progress as one line of text."""
        text = f"{self.label}: {self.count:,}"
        if self.total:
            text += f"/{self.total:,} {self.unit} ({100 * self.count / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {self.rate:,.0f}/s, {_duration(time.monotonic() - self.started)} elapsed"
        if self.total and self.rate > 0 and self.count < self.total:
            text += f", ~{_duration((self.total - self.count) / self.rate)} left"
        return text

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


def summary_table(
    title: str, columns: list[str], rows: Iterable[Iterable[Any]], stream=None
) -> None:
    """Print a table (the end-of-run summary, listings): columns apart by `│`, values longer
    than their column folded onto the next lines, as wide as the terminal (160 elsewhere).

    Written out by hand rather than with rich: a report of thousands of findings prints in
    milliseconds instead of seconds."""
    out = stream or sys.stdout
    headers = [str(column) for column in columns]
    cells = [
        [" ".join(("" if value is None else str(value)).split()) for value in row] for row in rows
    ]
    widths = [
        max([1, len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)
    ]
    fit_widths(widths, _table_width(out) - 3 * (len(widths) - 1))
    lines = [title] if title else []
    lines += _folded(headers, widths)
    lines.append("─┼─".join("─" * width for width in widths))
    for row in cells:
        lines += _folded(row, widths)
    out.write("\n".join(lines) + "\n")


def _table_width(stream) -> int:
    if getattr(stream, "isatty", lambda: False)():
        import shutil

        return shutil.get_terminal_size((160, 24)).columns
    return 160


def fit_widths(widths: list[int], room: int, narrowest: int = 8) -> None:
    """Narrow the widest columns, in place, until they fit `room` characters (or reach
    `narrowest`)."""
    while sum(widths) > room:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= narrowest:
            return
        others = [w for i, w in enumerate(widths) if i != widest]
        runner_up = max(others, default=narrowest)
        excess = sum(widths) - room
        widths[widest] = max(narrowest, runner_up, widths[widest] - excess)
        if widths[widest] == runner_up and runner_up > narrowest and excess > 0:
            widths[widest] -= 1  # two columns of equal width: narrow them in turn


def _folded(row: list[str], widths: list[int]) -> list[str]:
    """One row as text lines, each value cut into pieces of its column's width."""
    pieces = [
        [value[start : start + width] for start in range(0, len(value), width)] or [""]
        for value, width in zip(row, widths, strict=True)
    ]
    height = max(len(parts) for parts in pieces)
    return [
        " │ ".join(
            (parts[line] if line < len(parts) else "").ljust(width)
            for parts, width in zip(pieces, widths, strict=True)
        ).rstrip()
        for line in range(height)
    ]
