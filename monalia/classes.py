"""The classes a project asks for, the labeler that maps subjects onto them, and what each of a
model's classes covers (the concepts and labels that count as mentioning it).

Apart from the label stage so that `monalia search` and `report` reach them without loading
what labelling a catalog needs (SQLAlchemy, the dataset builder).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

from monalia.api.labeler import ClassRequest, Labeler, TargetClass
from monalia.catalog.orm_reader import reader_of
from monalia.curation.findings import CurationClass, Mentions, ThresholdOverride, curation_classes
from monalia.errors import ConfigError
from monalia.project import Project
from monalia.rdf.thesaurus import Thesaurus

PRESETS = ("monalia-40",)


def preset_targets(name: str) -> list[str]:
    """The class targets of a shipped preset: IRIs where known, labels otherwise."""
    if name not in PRESETS:
        raise ConfigError(f"[classes] preset {name!r} is unknown (presets: {', '.join(PRESETS)})")
    from importlib.resources import files

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


@dataclass
class ClassCoverage:
    """What each of a model's classes covers: concepts, their labels, or a thesaurus to ask."""

    expansions: dict[str, set[str]] | None = None
    concept_labels: dict[str, set[str]] | None = None
    thesaurus: Any = None

    def close(self) -> None:
        if self.thesaurus is not None:
            self.thesaurus.close()


def class_coverage(catalog, project: Project, model) -> ClassCoverage:
    """The concepts each class covered when the model's dataset was labelled, as the catalog
    keeps them; for a dataset made before datasets kept them, the project's labeler and
    thesaurus as they are today."""
    stored = reader_of(catalog).class_concepts(model.dataset_id)
    if stored:
        labels: dict[str, set[str]] = {}
        for concepts in stored.values():
            for concept, texts in concepts.items():
                labels.setdefault(concept, set()).update(texts)
        return ClassCoverage({uri: set(concepts) for uri, concepts in stored.items()}, labels, None)
    if not project.file.thesaurus.files:
        return ClassCoverage()
    from monalia.rdf.thesaurus import open_project_thesaurus

    thesaurus = open_project_thesaurus(project)
    expansions = None
    if project.labeler is not None:
        labeler, _ = prepare_labeler(project, thesaurus)
        expansions = labeler.class_concepts()
    return ClassCoverage(expansions, None, thesaurus)


def model_classes(
    catalog,
    project: Project,
    model,
    overrides: dict[str, ThresholdOverride] | None = None,
    everywhere: ThresholdOverride | None = None,
) -> list[CurationClass]:
    """The model's classes, what counts as mentioning each, and their thresholds."""
    coverage = class_coverage(catalog, project, model)
    try:
        return curation_classes(
            model,
            coverage.expansions,
            coverage.thesaurus,
            project.file.classes.language,
            overrides,
            everywhere,
            concept_labels=coverage.concept_labels,
        )
    finally:
        coverage.close()


def project_mentions(catalog, project: Project, model) -> Mentions:
    """What counts as mentioning each of the model's classes."""
    return Mentions(model_classes(catalog, project, model))
