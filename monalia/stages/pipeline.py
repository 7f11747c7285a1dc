"""The pipeline's stages, declared once, in order: what each is called in ``[pipeline]``, the
command that runs it alone, what it needs from the stages before it, and what it makes.

`monalia run` runs the stages a project lists from this declaration; the command line registers
one runner per stage against it (`monalia.cli.app.runs_stage`), and the documentation's
architecture page is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline."""

    name: str  # as ``[pipeline] stages`` names it
    command: str  # the command that runs it alone
    needs: tuple[str, ...]  # the stages whose output it reads
    reads: str
    makes: str


PIPELINE: tuple[Stage, ...] = (
    Stage(
        "harvest",
        "monalia harvest",
        (),
        "the sources named in the project file (plugins)",
        "records, their subjects and image references, in the catalog",
    ),
    Stage(
        "images",
        "monalia images",
        ("harvest",),
        "the records' image URLs",
        "image files named by content hash, each checked, or the reason it failed",
    ),
    Stage(
        "label",
        "monalia label",
        ("harvest",),
        "records, the thesaurus, the labeler (a plugin)",
        "a labelled, split, versioned dataset",
    ),
    Stage(
        "train",
        "monalia train",
        ("images", "label"),
        "a dataset and its images, the trainer (a plugin)",
        "a registered model with its card",
    ),
    Stage(
        "enrich",
        "monalia enrich",
        ("images", "train"),
        "the fetched images and a registered model",
        "predictions in the catalog; the scores as RDF to the sinks",
    ),
    Stage(
        "publish",
        "monalia publish",
        ("harvest",),
        "the catalog's records",
        "one RDF graph per source in the sinks (plugins)",
    ),
)

STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE)


def stage(name: str) -> Stage:
    """The declared stage called `name` (KeyError when there is none)."""
    for declared in PIPELINE:
        if declared.name == name:
            return declared
    raise KeyError(name)
