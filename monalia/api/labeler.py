"""Base class of labeler plugins: from a record's subject terms to the target classes.

A labeler resolves the project's target classes (through a thesaurus, a mapping) and says which
classes one record belongs to. The framework runs it over the catalog, counts what matched and
what did not, and hands the assignments to dataset building.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from monalia.api.plugin import Plugin
from monalia.api.records import Subject

if TYPE_CHECKING:  # pragma: no cover
    from monalia.rdf.thesaurus import Thesaurus


@dataclass(frozen=True)
class TargetClass:
    """One class the model will learn: a concept URI, its label, how many concepts it covers."""

    uri: str
    label: str
    concepts: int = 1


@dataclass(frozen=True)
class ClassRequest:
    """The classes a project asks for: URIs or labels, the labels' language, optional schemes."""

    targets: tuple[str, ...]
    language: str = "fr"
    schemes: tuple[str, ...] = ()


@dataclass
class SubjectMatch:
    """What one record's subjects gave: its classes, and the subjects that matched nothing."""

    classes: set[str] = field(default_factory=set)
    unmatched: list[Subject] = field(default_factory=list)
    ambiguous: list[Subject] = field(default_factory=list)  # a label naming several concepts
    known: int = 0  # subjects that name a known concept (a class or not)
    # subjects given as text that were resolved to one concept: (subject, concept URI, how:
    # "prefLabel", "altLabel", "hiddenLabel", "label", "notation" or "mapping")
    matched: list[tuple[Subject, str, str]] = field(default_factory=list)


@dataclass
class Labeling:
    """What a labeler made of a set of records."""

    classes: list[TargetClass]
    assignments: dict[int, set[str]] = field(default_factory=dict)  # record id -> class URIs
    # (field, subject text) -> how many records carry it without it matching any concept
    unmatched: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    ambiguous: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    records_seen: int = 0
    records_with_subjects: int = 0
    records_without_class: set[int] = field(default_factory=set)  # had subjects, got no class
    # each subject text resolved to one concept: (record id, field, text, language, concept,
    # how), what `monalia publish` turns into the matched-subjects graph
    matches: list[tuple[int, str | None, str, str | None, str, str]] = field(default_factory=list)

    def per_class(self) -> Counter[str]:
        """How many records each class received."""
        counts: Counter[str] = Counter()
        for uris in self.assignments.values():
            counts.update(uris)
        return counts


class Labeler(Plugin):
    """Base of every labeler plugin. Subclasses implement `prepare` and `classes_for`."""

    kind: ClassVar[str] = "labeler"

    def prepare(self, thesaurus: Thesaurus, request: ClassRequest) -> list[TargetClass]:
        """Resolve the requested classes against the thesaurus and load what matching needs.

        Called once before anything else; returns the target classes, in the requested order.
        Raise `monalia.errors.ConfigError` for a class that cannot be resolved.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement prepare()")

    def class_concepts(self) -> dict[str, set[str]] | None:
        """The concepts each target class covers (class URI -> concept URIs), after `prepare`.

        The label stage stores them with the dataset; publishing and curation read them from
        there, so a record "mentions" a class exactly as labelling meant it. None (the default):
        each class covers what the thesaurus puts under it.
        """
        return None

    def classes_for(self, subjects: list[Subject]) -> SubjectMatch:
        """The class URIs a record with these subjects belongs to, and the subjects that matched
        nothing (so that curators see where a mapping is missing)."""
        raise NotImplementedError(f"{type(self).__name__} must implement classes_for()")

    def label(
        self, classes: list[TargetClass], records: Iterable[tuple[int, list[Subject]]]
    ) -> Labeling:
        """Label every (record id, subjects) pair; records with no class are left out."""
        result = Labeling(classes=classes)
        known = {target.uri for target in classes}
        for record_id, subjects in records:
            result.records_seen += 1
            match = self.classes_for(subjects)
            unknown = match.classes - known
            if unknown:
                raise ValueError(
                    f"{self.name} returned classes that are not targets: {sorted(unknown)}"
                )
            if subjects:
                result.records_with_subjects += 1
            if match.classes:
                result.assignments[record_id] = match.classes
            elif subjects:
                result.records_without_class.add(record_id)
            for subject in match.unmatched:
                result.unmatched[subject.field, subject.label or subject.uri or ""] += 1
            for subject in match.ambiguous:
                result.ambiguous[subject.field, subject.label or subject.uri or ""] += 1
            for subject, concept, how in match.matched:
                result.matches.append(
                    (record_id, subject.field, subject.label or "", subject.lang, concept, how)
                )
        return result
