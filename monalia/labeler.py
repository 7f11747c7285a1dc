"""Base class of labeler plugins: from a record's subject terms to the target classes.

A labeler resolves the project's target classes (through a thesaurus, a mapping) and says which
classes one record belongs to. The framework runs it over the catalog, counts what matched and
what did not, and hands the assignments to dataset building.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from monalia.plugin import Plugin
from monalia.records import Subject


@dataclass(frozen=True)
class TargetClass:
    """One class the model will learn: a concept URI and its label."""

    uri: str
    label: str


@dataclass
class Labeling:
    """What a labeler made of a set of records."""

    classes: list[TargetClass]
    assignments: dict[int, set[str]] = field(default_factory=dict)  # record id -> class URIs
    unmatched: Counter[str] = field(default_factory=Counter)  # subject text -> records
    records_seen: int = 0

    def per_class(self) -> Counter[str]:
        """How many records each class received."""
        counts: Counter[str] = Counter()
        for uris in self.assignments.values():
            counts.update(uris)
        return counts


class Labeler(Plugin):
    """Base of every labeler plugin. Subclasses implement `target_classes` and `classes_for`."""

    kind: ClassVar[str] = "labeler"

    def prepare(self, targets: list[str], language: str, thesaurus_files: list[str]) -> None:
        """Load what matching needs (thesauri, mappings). Called once before anything else."""

    def target_classes(self) -> list[TargetClass]:
        """The classes resolved from the project's targets (URIs or labels)."""
        raise NotImplementedError(f"{type(self).__name__} must implement target_classes()")

    def classes_for(self, subjects: list[Subject]) -> tuple[set[str], list[Subject]]:
        """The class URIs a record with these subjects belongs to, and the subjects that matched
        nothing (so that curators see where a mapping is missing)."""
        raise NotImplementedError(f"{type(self).__name__} must implement classes_for()")

    def label(self, records: Iterable[tuple[int, list[Subject]]]) -> Labeling:
        """Label every (record id, subjects) pair; records with no class are left out."""
        result = Labeling(classes=self.target_classes())
        known = {target.uri for target in result.classes}
        for record_id, subjects in records:
            result.records_seen += 1
            matched, unmatched = self.classes_for(subjects)
            unknown = matched - known
            if unknown:
                raise ValueError(
                    f"{self.name} returned classes that are not targets: {sorted(unknown)}"
                )
            if matched:
                result.assignments[record_id] = matched
            for subject in unmatched:
                result.unmatched[subject.label or subject.uri or ""] += 1
        return result
