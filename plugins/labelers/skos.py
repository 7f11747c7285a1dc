"""Labeler: SKOS thesaurus expansion, as MonaLIA built its training sets.

Each target class is a concept; it covers every concept below it (``skos:narrower``, or
``skos:broader`` read backwards), concepts of other vocabularies matched to those
(``skos:exactMatch`` / ``skos:closeMatch``, either direction) and, with ``related = true``,
what is related to the class and below it. Curators add the links a thesaurus lacks in mapping
files (``links``): CSV rows ``subject,property,object`` naming concepts by IRI or label, or RDF.
A record belongs to a class when one of its subjects is such a concept, by URI, or by label where
the source only has text (case, accents and spacing ignored; prefLabel, altLabel, hiddenLabel).
"""

from __future__ import annotations

import csv
import difflib
import io
from pathlib import Path
from typing import Literal

from pydantic import Field

from monalia import hookimpl
from monalia.api.labeler import ClassRequest, Labeler, SubjectMatch, TargetClass
from monalia.api.plugin import PluginSettings
from monalia.api.records import Subject
from monalia.errors import ConfigError
from monalia.rdf.thesaurus import (
    KIND_RANK,
    SKOS,
    Thesaurus,
    is_iri,
    language_matches,
    normalize_label,
    resolve_data_file,
)

LINK_PROPERTIES = (
    "broader",
    "narrower",
    "related",
    "exactMatch",
    "closeMatch",
    "broadMatch",
    "narrowMatch",
    "relatedMatch",
)
LabelKind = Literal["pref", "alt", "hidden", "label", "notation"]


# (known, classes, ambiguous, the one concept named or None, how it was matched)
LabelMatch = tuple[bool, frozenset[str], bool, str | None, str | None]
# how a subject text was matched, by the kind of label it equals
MATCHED_BY = {
    "pref": "prefLabel",
    "alt": "altLabel",
    "hidden": "hiddenLabel",
    "label": "label",
    "notation": "notation",
}


class SkosLabelerSettings(PluginSettings):
    # Subject fields used for labels (e.g. ["REPR", "REPR_text"]); empty means every field.
    fields: list[str] = Field(default_factory=list)
    # Also take what is skos:related to a class, and everything below it.
    related: bool = False
    # Mapping properties followed into other vocabularies.
    follow: list[Literal["exactMatch", "closeMatch"]] = Field(
        default_factory=lambda: ["exactMatch", "closeMatch"]
    )
    # Concepts (IRIs or labels) whose whole sub-tree no class covers.
    exclude: list[str] = Field(default_factory=list)
    # Mapping files with links the thesaurus lacks (CSV or RDF; builtin:NAME for shipped ones).
    links: list[str] = Field(default_factory=list)
    # Match subjects that have no known URI by their label.
    match_labels: bool = True
    # labels a subject text may match: pref, alt, hidden, label (rdfs:label)
    label_kinds: list[LabelKind] = Field(default_factory=lambda: ["pref", "alt", "hidden", "label"])


class SkosLabeler(Labeler):
    """Classes from a SKOS thesaurus: narrower terms, matches, related terms, curated links."""

    name = "skos"
    Settings = SkosLabelerSettings

    def prepare(self, thesaurus: Thesaurus, request: ClassRequest) -> list[TargetClass]:
        settings: SkosLabelerSettings = self.settings  # type: ignore[assignment]
        self.thesaurus = thesaurus
        self.request = request
        self.kinds = set(settings.label_kinds)
        self.warnings: list[str] = []
        link_triples = self._read_links(settings.links)
        self.links = thesaurus.set_links(link_triples)
        classes: list[TargetClass] = []
        self.expansions: dict[str, set[str]] = {}
        seen: dict[str, str] = {}
        for target in request.targets:
            uri = self.resolve(target, what="class")
            if uri in seen:
                raise ConfigError(
                    f"class {target!r} is the same concept as {seen[uri]!r} ({uri}): list it once"
                )
            seen[uri] = target
            self.expansions[uri] = thesaurus.expand(uri, settings.related, settings.follow)
        excluded: set[str] = set()
        for name in settings.exclude:
            excluded |= thesaurus.expand(self.resolve(name, what="excluded concept"), False, ())
        self.excluded = excluded
        for uri, concepts in self.expansions.items():
            concepts -= excluded - {uri}
            label = thesaurus.preferred_label(uri, request.language) or seen[uri]
            classes.append(TargetClass(uri, label, len(concepts)))
        self.concept_classes: dict[str, set[str]] = {}
        for uri, concepts in self.expansions.items():
            for concept in concepts:
                self.concept_classes.setdefault(concept, set()).add(uri)
        self.known = set(thesaurus.iter_concepts()) | set(self.concept_classes) | excluded
        self.fields = set(settings.fields)
        self.match_labels = settings.match_labels
        self._by_label: dict[tuple[str, str | None], LabelMatch] = {}
        # concepts a curated mapping file links: a text matched to one was matched "through a
        # mapping" (the provenance the matched-subjects graph gives)
        self.linked = {end for s, _, o in link_triples for end in (s, o)}
        return classes

    def class_concepts(self) -> dict[str, set[str]]:
        return {uri: set(concepts) for uri, concepts in self.expansions.items()}

    # -- resolving names ------------------------------------------------------------------------

    def resolve(self, name: str, what: str) -> str:
        """A concept IRI from an IRI or a label in the project's language; a clear error if none."""
        name = name.strip()
        if is_iri(name):
            if not self.thesaurus.is_concept(name):
                raise ConfigError(
                    f"{what} {name} is not a concept of the loaded thesaurus "
                    "(check [thesaurus] files, or the IRI)"
                )
            return name
        entries = self.thesaurus.find(
            name, self.request.language, kinds=self.kinds, schemes=self.request.schemes
        )
        if not entries:
            raise ConfigError(self._unknown_label(name, what))
        best_rank = KIND_RANK[entries[0].kind]
        best = sorted({entry.concept for entry in entries if KIND_RANK[entry.kind] == best_rank})
        if len(best) > 1:
            options = "; ".join(
                f"{uri} ({self.thesaurus.preferred_label(uri, self.request.language)})"
                for uri in best[:6]
            )
            raise ConfigError(
                f"{what} label {name!r} names {len(best)} concepts: {options}. "
                "Give the IRI instead, or restrict [classes] schemes"
            )
        return best[0]

    def _unknown_label(self, name: str, what: str) -> str:
        language = self.request.language
        labels = [
            entry.text
            for entries in self.thesaurus.labels().values()
            for entry in entries
            if language_matches(entry.lang, language)
        ]
        close = difflib.get_close_matches(name, labels, n=3, cutoff=0.75)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        return (
            f"unknown {what} label {name!r}: no concept of the loaded thesaurus has it as a "
            f"label in {language!r}{hint}"
        )

    # -- mapping files --------------------------------------------------------------------------

    def _read_links(self, names: list[str]) -> list[tuple[str, str, str]]:
        triples: list[tuple[str, str, str]] = []
        for name in names:
            path = resolve_data_file(self.context.project_dir, name)
            if path.suffix.lower() == ".csv":
                triples.extend(self._csv_links(path))
            else:
                triples.extend(self.thesaurus.add_link_file(path))
        return triples

    def _csv_links(self, path: Path) -> list[tuple[str, str, str]]:
        text = path.read_text(encoding="utf-8-sig")
        kept = [
            (number, line)
            for number, line in enumerate(text.splitlines(), start=1)
            if not line.lstrip().startswith("#")
        ]
        reader = csv.DictReader(io.StringIO("\n".join(line for _, line in kept)))
        missing = {"subject", "property", "object"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(
                f"mapping file {path}: needs the columns subject, property, object "
                f"(missing {', '.join(sorted(missing))})"
            )
        triples = []
        for row in reader:
            number = kept[reader.line_num - 1][0]  # the line in the file, comments counted
            prop = (row["property"] or "").strip()
            if prop.startswith("skos:"):
                prop = prop[5:]
            if prop in LINK_PROPERTIES:
                predicate = SKOS + prop
            elif is_iri(prop):
                predicate = prop
            else:
                raise ConfigError(
                    f"mapping file {path} row {number}: property {prop!r} is not one of "
                    f"{', '.join(LINK_PROPERTIES)} or an IRI"
                )
            ends = []
            for column in ("subject", "object"):
                value = (row[column] or "").strip()
                if is_iri(value):
                    # an IRI may be from a vocabulary not loaded (e.g. Behance attributes)
                    ends.append(value)
                    continue
                try:
                    ends.append(self.resolve(value, what=f"mapping {column}"))
                except ConfigError as exc:
                    # A shared mapping file may name concepts a thesaurus subset does not hold.
                    self.warnings.append(f"mapping file {path.name} row {number}: {exc}")
                    break
            if len(ends) == 2:
                triples.append((ends[0], predicate, ends[1]))
        return triples

    # -- matching -------------------------------------------------------------------------------

    def _label_classes(self, label: str, lang: str | None) -> LabelMatch:
        """(known, classes, ambiguous, concept, how) for a subject label, cached: labels
        repeat a lot. `concept` is the one concept the label names (None when several)."""
        key = (label, lang)
        cached = self._by_label.get(key)
        if cached is not None:
            return cached
        entries = [
            entry
            for entry in self.thesaurus.labels().get(normalize_label(label), ())
            if entry.kind in self.kinds
        ]
        language = lang or self.request.language
        entries = [entry for entry in entries if language_matches(entry.lang, language)] or entries
        if entries:
            best = min(KIND_RANK[entry.kind] for entry in entries)
            entries = [entry for entry in entries if KIND_RANK[entry.kind] == best]
        found = {frozenset(self.concept_classes.get(entry.concept, ())) for entry in entries}
        concepts = {entry.concept for entry in entries}
        concept = how = None
        if len(concepts) == 1:
            concept = next(iter(concepts))
            how = "mapping" if concept in self.linked else MATCHED_BY[entries[0].kind]
        result = (bool(entries), frozenset().union(*found), len(found) > 1, concept, how)
        self._by_label[key] = result
        return result

    def classes_for(self, subjects: list[Subject]) -> SubjectMatch:
        match = SubjectMatch()
        for subject in subjects:
            if self.fields and subject.field not in self.fields:
                continue
            if subject.uri and subject.uri in self.known:
                match.known += 1
                match.classes.update(self.concept_classes.get(subject.uri, ()))
                continue
            if subject.label and self.match_labels:
                known, classes, ambiguous, concept, how = self._label_classes(
                    subject.label, subject.lang
                )
                if known:
                    match.known += 1
                    match.classes.update(classes)
                    if ambiguous:
                        match.ambiguous.append(subject)
                    if concept is not None:
                        match.matched.append((subject, concept, how))
                    continue
            match.unmatched.append(subject)
        return match


@hookimpl
def register_labelers():
    return [SkosLabeler]
