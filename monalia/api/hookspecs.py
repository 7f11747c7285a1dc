"""Every hook a monalia plugin can implement.

Registration hooks return classes; the project file picks a class by its ``name``. Lifecycle hooks
let a plugin observe a run or extend the records passing through it. Hooks are always called with
keyword arguments, and specs only ever gain arguments, so a plugin written today keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from monalia.api.labeler import Labeler
    from monalia.api.metadata_format import MetadataFormat
    from monalia.api.records import Record
    from monalia.api.run_info import RunInfo
    from monalia.api.sink import Sink
    from monalia.api.source import Source
    from monalia.api.trainer import Trainer

hookspec = pluggy.HookspecMarker("monalia")


# -- registration -------------------------------------------------------------------------------


@hookspec
def register_sources() -> list[type[Source]]:
    """Return the source classes this plugin provides (each a `monalia.Source` subclass)."""


@hookspec
def register_labelers() -> list[type[Labeler]]:
    """Return the labeler classes this plugin provides (each a `monalia.Labeler` subclass)."""


@hookspec
def register_trainers() -> list[type[Trainer]]:
    """Return the trainer classes this plugin provides (each a `monalia.Trainer` subclass)."""


@hookspec
def register_sinks() -> list[type[Sink]]:
    """Return the sink classes this plugin provides (each a `monalia.Sink` subclass)."""


@hookspec
def register_metadata_formats() -> list[type[MetadataFormat]]:
    """Return the metadata formats this plugin reads (each a `monalia.MetadataFormat` subclass
    named by its OAI-PMH metadata prefix)."""


# -- lifecycle ----------------------------------------------------------------------------------


@hookspec
def stage_started(run: RunInfo) -> None:
    """Called when a stage run starts; `run` carries its id, stage, plugin, target and settings."""


@hookspec
def stage_finished(run: RunInfo) -> None:
    """Called when a stage run ends, whatever its status; `run.counts` holds its final counts."""


@hookspec
def prepare_record(record: Record, source: Source) -> None:
    """Called with each harvested record before it is stored; may modify it in place.

    Use it to add subject terms, fix a field an institution fills oddly, or derive an IRI. Raising
    `monalia.RecordError` rejects the record: it is reported and skipped like a malformed one.
    """


@hookspec
def record_harvested(record: Record, change: str, run: RunInfo) -> None:
    """Called after a record is committed to the catalog; `change` is new, changed or unchanged."""


@hookspec
def item_failed(item: str | None, message: str, run: RunInfo) -> None:
    """Called when one item of a run is reported and skipped (a malformed record, a bad image)."""


@hookspec
def graph_published(sink: Sink, graph: str, triples: int, run: RunInfo) -> None:
    """Called after a sink has written a whole named graph (`triples` is how many were sent)."""


def all_hookspec_names() -> list[str]:
    """Names of every hook defined here, for documentation and tests."""
    return sorted(
        name
        for name, value in globals().items()
        if callable(value) and hasattr(value, "monalia_spec")
    )
