"""The classes a project asks for and the labeler that maps subjects onto them.

Apart from the label stage so that `monalia search` and `report` reach them without loading
what labelling a catalog needs (SQLAlchemy, the dataset builder).
"""

from __future__ import annotations

import csv
from importlib.resources import files

from monalia.api.labeler import ClassRequest, Labeler, TargetClass
from monalia.errors import ConfigError
from monalia.lib.thesaurus import Thesaurus
from monalia.project import Project

PRESETS = ("monalia-40",)


def preset_targets(name: str) -> list[str]:
    """The class targets of a shipped preset: IRIs where known, labels otherwise."""
    if name not in PRESETS:
        raise ConfigError(f"[classes] preset {name!r} is unknown (presets: {', '.join(PRESETS)})")
    text = (files("monalia.ontology") / "classes" / f"{name}.csv").read_text(encoding="utf-8")
    return [row["uri"] or row["label"] for row in csv.DictReader(text.splitlines())]


def class_request(project: Project) -> ClassRequest:
    """The classes the project asks for, from ``[classes]`` (a preset, then its targets)."""
    section = project.file.classes
    targets = (preset_targets(section.preset) if section.preset else []) + list(section.targets)
    if not targets:
        raise ConfigError(
            "the project file names no classes: set [classes] targets (IRIs or labels) "
            'or preset = "monalia-40"'
        )
    return ClassRequest(tuple(targets), section.language, tuple(section.schemes))


def prepare_labeler(project: Project, thesaurus: Thesaurus) -> tuple[Labeler, list[TargetClass]]:
    if project.labeler is None:
        raise ConfigError(
            "the project file names no classes: set [classes] targets or preset (and optionally "
            "a [labeler] table)"
        )
    labeler: Labeler = project.labeler.create()
    classes = labeler.prepare(thesaurus, class_request(project))
    return labeler, classes
