"""A model's classes in their thesaurus: their broader concepts up to the top, and the labels of
each in every language the thesaurus has.

Published with the model's graph (``skos:broader`` and ``skos:prefLabel``/``skos:altLabel``), so
that a plain SPARQL store can roll scores up the hierarchy with a property path
(``?class skos:broader+ ?concept``) and show labels in any language; `monalia search` reads the
same triples to answer a term broader than every class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREF, ALT = "pref", "alt"


@dataclass
class ClassContext:
    """The classes' broader concepts and every concept's labels, as published."""

    broader: list[tuple[str, str]] = field(default_factory=list)  # (narrower, broader) pairs
    # concept -> (text, language, "pref" or "alt"), languages sorted, pref first
    labels: dict[str, list[tuple[str, str | None, str]]] = field(default_factory=dict)

    def preferred(self, concept: str) -> list[tuple[str, str | None]]:
        """The concept's preferred labels, one per language where the thesaurus has one."""
        return [(text, lang) for text, lang, kind in self.labels.get(concept, []) if kind == PREF]


def class_context(thesaurus, class_uris: list[str]) -> ClassContext:
    """The classes' broader chains and the labels of the classes and of those concepts: their
    own, and the preferred labels of the concepts they are an exact match of (a label in
    another scheme's language) when that scheme is loaded."""
    context = ClassContext()
    seen: set[str] = set()
    frontier = list(dict.fromkeys(class_uris))
    while frontier:
        concept = frontier.pop(0)
        if concept in seen:
            continue
        seen.add(concept)
        info = thesaurus.describe(concept)
        labels: list[tuple[str, str | None, str]] = []
        for entry in info.labels:
            if entry.kind in (PREF, ALT):
                labels.append((entry.text, entry.lang, entry.kind))
        for relation, other, _ in info.matches:
            if relation != "exactMatch":
                continue
            for entry in thesaurus.describe(other).labels:
                # a matched concept's preferred labels, in the languages this one lacks
                if entry.kind == PREF and not any(
                    lang == entry.lang and kind == PREF for _, lang, kind in labels
                ):
                    labels.append((entry.text, entry.lang, PREF))
                elif entry.kind in (PREF, ALT):
                    labels.append((entry.text, entry.lang, ALT))
        unique = list(dict.fromkeys(labels))
        unique.sort(key=lambda item: (item[2] != PREF, item[1] or "", item[0]))
        context.labels[concept] = unique
        for broader, _ in info.broader:
            pair = (concept, broader)
            if pair not in context.broader:
                context.broader.append(pair)
            frontier.append(broader)
    return context


def project_class_context(project, class_uris: list[str]) -> ClassContext:
    """`class_context` over the project's thesaurus; empty when the project loads none."""
    if not project.file.thesaurus.files:
        return ClassContext()
    from monalia.rdf.thesaurus import open_project_thesaurus

    with open_project_thesaurus(project) as thesaurus:
        return class_context(thesaurus, class_uris)
