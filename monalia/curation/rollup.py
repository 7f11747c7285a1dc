"""Scores rolled up the thesaurus: search, noise and silence for a concept broader than a
model's classes ("animal" when the classes are "cheval" and "chien").

The rule: a record's score for a broader concept is the **maximum** of its scores for the
model's classes under that concept; the record shows the concept when one of those classes is
detected (its score at or above its own threshold). The concept's derived threshold is the lowest
of those classes' thresholds: no record that shows it scores below. The classes' broader
concepts are read from the model's graph (`monalia enrich` publishes them with
``skos:broader``), so the same answer comes from any SPARQL store with a property path; see
``ontology/queries/rollup-search.rq``.
"""

from __future__ import annotations

from dataclasses import dataclass

from monalia.curation.findings import Curation, CurationClass, Finding, subject_terms
from monalia.curation.languages import pick_label
from monalia.errors import ConfigError
from monalia.rdf.sparql import IRI, bind, bind_block, value_of, values_rows
from monalia.rdf.thesaurus import normalize_label, query_text

RULE = "max"  # how narrower scores combine: the highest one


@dataclass(frozen=True)
class BroaderConcept:
    """A concept above some of a model's classes."""

    uri: str
    label: str
    labels: frozenset[str]  # every label, normalised, in any language
    classes: tuple[CurationClass, ...]  # the model's classes under it

    @property
    def threshold(self) -> float:
        """The derived threshold: the lowest of the narrower classes' thresholds."""
        return min(c.threshold if c.threshold is not None else 0.5 for c in self.classes)

    @property
    def class_labels(self) -> list[str]:
        return [c.label for c in self.classes]


def broader_concepts(curation: Curation, language: str | None = None) -> list[BroaderConcept]:
    """Every concept above one of the model's classes, as the model's graph publishes them."""
    query = bind(query_text("curation-broader"), scores=IRI(curation.graph))
    under: dict[str, set[str]] = {}
    labels: dict[str, set[tuple[str, str | None, str]]] = {}
    for row in curation.client.select(query):
        concept, cls = value_of(row, "concept"), value_of(row, "class")
        if cls not in curation.by_uri:
            continue
        under.setdefault(concept, set()).add(cls)
        cell = row.get("label") or {}
        if cell.get("value"):
            entry = (cell["value"], cell.get("xml:lang"), value_of(row, "kind"))
            labels.setdefault(concept, set()).add(entry)
    found = []
    for concept, classes in sorted(under.items()):
        entries = sorted(labels.get(concept, ()), key=lambda e: (e[2] != "pref", e[1] or "", e[0]))
        first = entries[0][0] if entries else concept
        found.append(
            BroaderConcept(
                concept,
                (pick_label(entries, language) if language else None) or first,
                frozenset(normalize_label(text) for text, _, _ in entries),
                tuple(sorted((curation.by_uri[uri] for uri in classes), key=lambda c: c.label)),
            )
        )
    return found


def find_broader(curation: Curation, term: str, language: str | None = None) -> BroaderConcept:
    """The broader concept a term names (its IRI or one of its labels, in any language)."""
    wanted = normalize_label(term)
    concepts = broader_concepts(curation, language)
    found = [c for c in concepts if c.uri == term] or [c for c in concepts if wanted in c.labels]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ConfigError(
            f"{term!r} names several broader concepts: {', '.join(c.uri for c in found)}"
        )
    known = ", ".join(sorted(c.label for c in curation.classes))
    broader = ", ".join(sorted(c.label for c in concepts))
    raise ConfigError(
        f"the model has no class {term!r} (its classes: {known}"
        + (f"; broader concepts: {broader})" if broader else ")")
    )


def _merge(concept: BroaderConcept, per_class: list[Finding]) -> dict[str, Finding]:
    """One finding per record: its highest score over the narrower classes, and which of them
    made it (best first)."""
    merged: dict[str, Finding] = {}
    for finding in sorted(per_class, key=lambda f: (-f.score, f.class_label, f.record)):
        kept = merged.get(finding.record)
        if kept is None:
            kept = merged[finding.record] = Finding(
                finding.record,
                concept.uri,
                concept.label,
                finding.score,
                finding.image,
                annotated=finding.annotated,
                method=finding.method,
                scores=finding.scores,
                via=[finding.class_label],
                image_path=finding.image_path,
            )
        elif finding.class_label not in kept.via:
            kept.via.append(finding.class_label)
            kept.annotated = bool(kept.annotated or finding.annotated)
    return merged


def rolled_up_search(
    curation: Curation,
    concept: BroaderConcept,
    min_score: float | None = None,
    limit: int | None = None,
) -> list[Finding]:
    """Records by their rolled-up score, best first: each narrower class searched at its own
    threshold (or `min_score`); a record's best `limit` over all of them are among each
    class's best `limit`."""
    found: list[Finding] = []
    for cls in concept.classes:
        found.extend(curation.search(cls, min_score, limit))
    merged = _merge(concept, found)
    ranked = sorted(merged.values(), key=lambda f: (-f.score, f.record))
    return ranked[:limit] if limit is not None else ranked


def _mentions_concept(curation: Curation, concept: BroaderConcept, records) -> set[str]:
    """The records whose metadata names the broader concept itself (its IRI or a label)."""
    details = curation._record_details(records)
    named = set()
    for record in records:
        uris, texts = subject_terms(details.get(record, {}))
        if concept.uri in uris or {normalize_label(text) for text in texts} & concept.labels:
            named.add(record)
    return named


def silence_at(curation: Curation, concept: BroaderConcept) -> list[Finding]:
    """Records a narrower class is seen in whose metadata names nothing under the concept (no
    narrower class, not the concept itself): highest rolled-up score first."""
    per_class = curation.silence(list(concept.classes))
    records = {f.record for f in per_class}
    covered = set()
    for cls in concept.classes:  # a record mentioning a sibling class mentions the concept
        probe = [Finding(r, cls.uri, cls.label, 0.0, "") for r in records]
        curation.mark_annotated(probe)
        covered |= {f.record for f in probe if f.annotated}
    covered |= _mentions_concept(curation, concept, records)
    merged = _merge(concept, [f for f in per_class if f.record not in covered])
    for finding in merged.values():
        finding.annotated = False
    return sorted(merged.values(), key=lambda f: (-f.score, f.record))


def noise_at(curation: Curation, concept: BroaderConcept) -> list[Finding]:
    """Records whose metadata mentions the concept (through a narrower class) while no class
    under it is seen: every mentioned class is noise and the others score under their noise
    thresholds. Lowest rolled-up score first."""
    per_class = curation.noise(list(concept.classes))
    by_record: dict[str, list[Finding]] = {}
    for finding in per_class:
        by_record.setdefault(finding.record, []).append(finding)
    if not by_record:
        return []
    noisy = {(f.record, f.class_uri) for f in per_class}
    # the other narrower classes' scores of these records: one above its noise threshold
    # means the concept is seen after all
    pairs = [(IRI(r), IRI(c.uri)) for r in by_record for c in concept.classes]
    query = bind(query_text("curation-class-scores"), scores=IRI(curation.graph))
    query = bind_block(query, "pairs", values_rows(("record", "class"), pairs))
    best: dict[tuple[str, str], float] = {}
    for row in curation.client.select(query):
        key = (value_of(row, "record"), value_of(row, "class"))
        best[key] = max(best.get(key, 0.0), float(value_of(row, "score") or 0.0))
    kept = []
    for record, findings in by_record.items():
        seen_elsewhere = any(
            (record, c.uri) not in noisy and best.get((record, c.uri), 0.0) >= c.noise_below
            for c in concept.classes
        )
        if not seen_elsewhere:
            kept.extend(findings)
    merged = _merge(concept, kept)
    for finding in merged.values():
        finding.annotated = True
    return sorted(merged.values(), key=lambda f: (f.score, f.record))
