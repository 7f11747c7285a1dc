"""Search and curation over the extended metadata: ranked search, noise and silence.

Everything is SPARQL from ``ontology/queries/curation-*.rq``, with values bound, run against any
store that holds the records and a model's scores: the embedded store, an RDF file, or a SPARQL
endpoint. A class "is mentioned" by a record's metadata when the record has the class's concept
or one of the concepts it covers (narrower terms, matches) as ``dcterms:subject``, or a subject
text equal (ignoring case) to one of their labels.

*Noise*: records mentioning a class that the model scores below the class's noise threshold on
every image (suspect annotations). *Silence*: records the model scores above the class's silence
threshold that do not mention it (missing annotations). Thresholds come per class from the model
card (picked on validation at training time), else from defaults, and can be overridden.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from monalia.errors import ConfigError
from monalia.sparql import IRI, bind, bind_block, value_of, values_block, values_rows
from monalia.thesaurus import language_matches, normalize_label, query_text

DEFAULT_NOISE_BELOW = 0.1
DEFAULT_SILENCE_ABOVE = 0.9
DC_TITLE = "http://purl.org/dc/terms/title"
DC_IDENTIFIER = "http://purl.org/dc/terms/identifier"
FOAF_PAGE = "http://xmlns.com/foaf/0.1/page"
SUBJECT_TEXT = "http://ns.inria.fr/monalia/subjectText"
# records per query when fetching details: keeps the VALUES block of a request small
DETAIL_BATCH = 500


class SelectClient(Protocol):
    endpoint: str

    def select(self, query: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class CurationClass:
    """One class of a model, as search and the reports see it."""

    uri: str
    label: str
    concepts: frozenset[str]  # the concepts whose mention counts as the class's
    labels: frozenset[str]  # subject texts (lower case) that count as a mention
    threshold: float | None  # the model's decision threshold (F-beta on validation)
    noise_below: float
    silence_above: float


@dataclass
class Finding:
    """One record in a search result or a report."""

    record: str
    class_uri: str
    class_label: str
    score: float
    image: str
    annotated: bool | None = None
    title: str | None = None
    identifier: str | None = None
    page: str | None = None
    subjects: list[str] = field(default_factory=list)
    image_path: str | None = None  # the local copy, where the catalog has one

    def as_dict(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "identifier": self.identifier,
            "title": self.title,
            "class": self.class_uri,
            "class_label": self.class_label,
            "score": round(self.score, 4),
            "annotated": self.annotated,
            "image": self.image,
            "image_path": self.image_path,
            "page": self.page,
            "subjects": self.subjects,
        }


@dataclass(frozen=True)
class ThresholdOverride:
    noise_below: float | None = None
    silence_above: float | None = None


def curation_classes(
    model_row,
    expansions: dict[str, set[str]] | None = None,
    thesaurus=None,
    language: str | None = "fr",
    overrides: dict[str, ThresholdOverride] | None = None,
    everywhere: ThresholdOverride | None = None,
) -> list[CurationClass]:
    """The model's classes with what counts as mentioning each, and their thresholds.

    `expansions` (class URI -> covered concepts, from the labeler) wins; without it a thesaurus
    expands each class; without either a class covers only itself. `overrides` are keyed by class
    URI or label; `everywhere` applies to all classes and wins over everything.
    """
    thresholds = model_row.thresholds or {}
    picked = (model_row.metrics or {}).get("curation") or {}
    overrides = {normalize_label(k): v for k, v in (overrides or {}).items()}
    labels_of: dict[str, set[str]] = defaultdict(set)
    if thesaurus is not None:
        for entries in thesaurus.labels().values():
            for entry in entries:
                if language_matches(entry.lang, language):
                    labels_of[entry.concept].add(entry.text.lower())
    classes = []
    for entry in model_row.classes:
        uri, label = entry["uri"], entry.get("label") or entry["uri"]
        if expansions and uri in expansions:
            concepts = set(expansions[uri]) | {uri}
        elif thesaurus is not None:
            concepts = thesaurus.expand(uri)
        else:
            concepts = {uri}
        texts = {label.lower()}
        for concept in concepts:
            texts |= labels_of.get(concept, set())
        card = picked.get(uri) or {}
        noise = card.get("noise_below")
        silence = card.get("silence_above")
        for override in (
            overrides.get(normalize_label(uri)),
            overrides.get(normalize_label(label)),
            everywhere,
        ):
            if override is not None:
                noise = override.noise_below if override.noise_below is not None else noise
                silence = override.silence_above if override.silence_above is not None else silence
        classes.append(
            CurationClass(
                uri=uri,
                label=label,
                concepts=frozenset(concepts),
                labels=frozenset(texts),
                threshold=thresholds.get(uri),
                noise_below=DEFAULT_NOISE_BELOW if noise is None else float(noise),
                silence_above=DEFAULT_SILENCE_ABOVE if silence is None else float(silence),
            )
        )
    return classes


def find_class(classes: list[CurationClass], term: str) -> CurationClass:
    """The class a search term names: its URI, its label, or a concept or label it covers."""
    wanted = normalize_label(term)
    for match in (
        lambda c: c.uri == term,
        lambda c: normalize_label(c.label) == wanted,
        lambda c: term in c.concepts,
        lambda c: term.lower() in c.labels or wanted in {normalize_label(t) for t in c.labels},
    ):
        found = [c for c in classes if match(c)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(c.label for c in found)
            raise ConfigError(f"{term!r} names several of the model's classes: {names}")
    known = ", ".join(sorted(c.label for c in classes))
    raise ConfigError(f"the model has no class {term!r} (its classes: {known})")


def _class_blocks(query: str, classes: list[CurationClass]) -> str:
    concepts = [(IRI(c.uri), IRI(concept)) for c in classes for concept in sorted(c.concepts)]
    labels = [(IRI(c.uri), text) for c in classes for text in sorted(c.labels)]
    query = bind_block(query, "concepts", values_rows(("class", "covered"), concepts))
    return bind_block(query, "labels", values_rows(("class", "label"), labels))


def _score(row: dict[str, Any]) -> float:
    return float(value_of(row, "score") or 0.0)


class Curation:
    """Search, noise and silence for one model over one store."""

    def __init__(self, client: SelectClient, graph: str, classes: list[CurationClass]):
        self.client = client
        self.graph = graph
        self.classes = classes
        self.by_uri = {c.uri: c for c in classes}

    def search(
        self, cls: CurationClass, min_score: float | None = None, limit: int | None = None
    ) -> list[Finding]:
        """Records the model scores at or above `min_score` for the class, best first."""
        if min_score is None:
            min_score = cls.threshold if cls.threshold is not None else 0.5
        query = bind(
            query_text("curation-search"),
            scores=IRI(self.graph),
            **{"class": IRI(cls.uri)},
            minScore=float(min_score),
        )
        findings: dict[str, Finding] = {}
        for row in self.client.select(query):
            record = value_of(row, "record")
            if record in findings:
                continue  # the record's best image came first
            findings[record] = Finding(
                record, cls.uri, cls.label, _score(row), value_of(row, "image") or ""
            )
            if limit is not None and len(findings) >= limit:
                break
        found = list(findings.values())
        self.mark_annotated(found)
        return found

    def _report(self, name: str, variable: str, classes: list[CurationClass] | None):
        classes = classes or self.classes
        threshold = "noise_below" if variable == "below" else "silence_above"
        query = bind(query_text(name), scores=IRI(self.graph))
        query = bind_block(
            query,
            "thresholds",
            values_rows(
                ("class", variable), [(IRI(c.uri), float(getattr(c, threshold))) for c in classes]
            ),
        )
        query = _class_blocks(query, classes)
        best: dict[tuple[str, str], Finding] = {}
        for row in self.client.select(query):
            record, uri = value_of(row, "record"), value_of(row, "class")
            cls = self.by_uri.get(uri)
            if cls is None:
                continue
            key = (record, uri)
            score = _score(row)
            kept = best.get(key)
            # noise: the record's best image is still below; silence: show its best image
            if kept is None or score > kept.score:
                best[key] = Finding(
                    record,
                    uri,
                    cls.label,
                    score,
                    value_of(row, "image") or "",
                    annotated=variable == "below",
                )
        return list(best.values())

    def noise(self, classes: list[CurationClass] | None = None) -> list[Finding]:
        """Suspect annotations: lowest scores first."""
        found = self._report("curation-noise", "below", classes)
        return sorted(found, key=lambda f: (f.score, f.class_label, f.record))

    def silence(self, classes: list[CurationClass] | None = None) -> list[Finding]:
        """Missing annotations: highest scores first."""
        found = self._report("curation-silence", "above", classes)
        return sorted(found, key=lambda f: (-f.score, f.class_label, f.record))

    def mark_annotated(self, findings: list[Finding]) -> None:
        """Set `annotated` on each finding: does the record's metadata mention its class?"""
        classes = [self.by_uri[uri] for uri in sorted({f.class_uri for f in findings})]
        mentioned: set[tuple[str, str]] = set()
        for batch in _batches(sorted({f.record for f in findings})):
            query = bind_block(
                query_text("curation-annotated"),
                "records",
                values_block("record", map(IRI, batch)),
            )
            query = _class_blocks(query, classes)
            for row in self.client.select(query):
                mentioned.add((value_of(row, "record"), value_of(row, "class")))
        for finding in findings:
            finding.annotated = (finding.record, finding.class_uri) in mentioned

    def describe(self, findings: list[Finding]) -> None:
        """Fill in each finding's title, reference, landing page and subject texts."""
        details: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for batch in _batches(sorted({f.record for f in findings})):
            query = bind_block(
                query_text("curation-records"), "records", values_block("record", map(IRI, batch))
            )
            for row in self.client.select(query):
                values = details[value_of(row, "record")][value_of(row, "property")]
                value = value_of(row, "value")
                if value not in values:
                    values.append(value)
        for finding in findings:
            found = details.get(finding.record, {})
            finding.title = _first(found.get(DC_TITLE))
            finding.identifier = _first(found.get(DC_IDENTIFIER))
            finding.page = _first(found.get(FOAF_PAGE))
            finding.subjects = sorted(found.get(SUBJECT_TEXT, []))


def _first(values: list[str] | None) -> str | None:
    return sorted(values)[0] if values else None


def _batches(items: list[str]):
    for start in range(0, len(items), DETAIL_BATCH):
        yield items[start : start + DETAIL_BATCH]
