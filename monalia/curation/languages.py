"""A model's classes in every language its graph publishes: search terms in any language, and
reports and search results labelled in the one a curator asks for (`--lang`)."""

from __future__ import annotations

from dataclasses import replace

from monalia.curation.findings import Curation, CurationClass
from monalia.rdf.sparql import IRI, bind, value_of
from monalia.rdf.thesaurus import normalize_label, query_text


def class_labels(curation: Curation) -> dict[str, list[tuple[str, str | None, str]]]:
    """Class URI -> (text, language, "pref" or "alt") of every label its graph publishes."""
    query = bind(query_text("curation-class-labels"), scores=IRI(curation.graph))
    found: dict[str, list[tuple[str, str | None, str]]] = {}
    for row in curation.client.select(query):
        cell = row.get("label") or {}
        entry = (cell.get("value", ""), cell.get("xml:lang"), value_of(row, "kind"))
        found.setdefault(value_of(row, "class"), []).append(entry)
    return found


def pick_label(labels: list[tuple[str, str | None, str]], language: str) -> str | None:
    """The preferred label in `language` (or a regional variant: "en" finds "en-GB"), else the
    alternative one, else None."""
    wanted = language.lower()
    for kind in ("pref", "alt"):
        for text, lang, entry_kind in labels:
            if entry_kind == kind and lang and wanted in (lang.lower(), lang.lower().split("-")[0]):
                return text
    return None


def in_language(curation: Curation, language: str | None) -> list[str]:
    """Label the curation's classes in `language` where the graph has a label in it; the
    labels of the others stay. Returns the classes left without one."""
    if not language:
        return []
    labels = class_labels(curation)
    missing = []
    relabelled: list[CurationClass] = []
    for cls in curation.classes:
        text = pick_label(labels.get(cls.uri, []), language)
        if text is None:
            missing.append(cls.label)
        relabelled.append(replace(cls, label=text or cls.label))
    curation.classes = relabelled
    curation.by_uri = {c.uri: c for c in relabelled}
    return missing


def class_by_any_label(curation: Curation, term: str) -> CurationClass | None:
    """The class one of whose labels, in any language, is `term`."""
    wanted = normalize_label(term)
    labels = class_labels(curation)
    found = [
        curation.by_uri[uri]
        for uri, entries in labels.items()
        if uri in curation.by_uri and any(normalize_label(t) == wanted for t, _, _ in entries)
    ]
    return found[0] if len(found) == 1 else None
