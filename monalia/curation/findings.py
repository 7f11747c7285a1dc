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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, Protocol

from monalia.errors import ConfigError
from monalia.rdf.scores import as_written, band_floor, band_iri, score_decile
from monalia.rdf.sparql import (
    IRI,
    ScoreValue,
    bind,
    bind_block,
    select_values,
    value_of,
    values_block,
    values_rows,
)
from monalia.rdf.thesaurus import language_matches, normalize_label, query_text

DEFAULT_NOISE_BELOW = 0.1
DEFAULT_SILENCE_ABOVE = 0.9
DC_TITLE = "http://purl.org/dc/terms/title"
DC_SUBJECT = "http://purl.org/dc/terms/subject"
DC_IDENTIFIER = "http://purl.org/dc/terms/identifier"
DC_DESCRIPTION = "http://purl.org/dc/terms/description"
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
    band_floor: int = 5  # the lowest decile with unmentioned bands (see monalia.rdf.scores)


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
    method: str = "threshold"  # what made the finding: "threshold" or "confident"
    scores: str | None = None  # whose scores: the model, or its out-of-sample score set
    # for a concept broader than the model's classes: the narrower classes that made the
    # rolled-up score, best first (monalia.curation.rollup)
    via: list[str] = field(default_factory=list)
    # the hybrid ranking (monalia.curation.hybrid): the metadata's evidence for the class
    # ("class", "narrower", "text" or None) and the image score it was fused with
    evidence: str | None = None
    image_score: float | None = None

    @property
    def score_label(self) -> str:
        """What `score` is, as the pages say it: confident learning ranks by the out-of-sample
        score (fold models that never saw the record), the threshold method by the model's."""
        return "out-of-sample score" if self.method == "confident" else "model score"

    def as_dict(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "reference": self.identifier,
            "title": self.title,
            "class": self.class_uri,
            "class_label": self.class_label,
            "score": round(self.score, 4),
            "annotated": self.annotated,
            "image": self.image,
            "image_path": self.image_path,
            "page": self.page,
            "subjects": self.subjects,
            "method": self.method,
            "scores": self.scores,
            "via": self.via,
            "evidence": self.evidence,
            "image_score": None if self.image_score is None else round(self.image_score, 4),
        }


# the fields of a finding in JSON and CSV, in this order
FINDING_FIELDS = [
    "record",
    "reference",
    "title",
    "class",
    "class_label",
    "score",
    "annotated",
    "image",
    "image_path",
    "page",
    "subjects",
    "method",
    "scores",
    "via",
    "evidence",
    "image_score",
]


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
    concept_labels: dict[str, set[str]] | None = None,
) -> list[CurationClass]:
    """The model's classes with what counts as mentioning each, and their thresholds.

    `expansions` (class URI -> covered concepts, from the labeler) wins; without it a thesaurus
    expands each class; without either a class covers only itself. A concept's labels come
    from `concept_labels` (lower-cased, as the dataset kept them), else from the thesaurus.
    `overrides` are keyed by class URI or label; `everywhere` applies to all classes and wins
    over everything.
    """
    thresholds = model_row.thresholds or {}
    picked = (model_row.metrics or {}).get("curation") or {}
    overrides = {normalize_label(k): v for k, v in (overrides or {}).items()}
    labels_of: dict[str, set[str]] = defaultdict(set)
    if concept_labels is not None:
        labels_of.update(concept_labels)
    elif thesaurus is not None:
        for entries in thesaurus.labels().values():
            for entry in entries:
                if entry.kind != "notation" and language_matches(entry.lang, language):
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
                threshold=None if thresholds.get(uri) is None else as_written(thresholds[uri]),
                band_floor=band_floor(thresholds.get(uri)),
                # compared with scores as the RDF writes them: written the same way
                noise_below=as_written(DEFAULT_NOISE_BELOW if noise is None else float(noise)),
                silence_above=as_written(
                    DEFAULT_SILENCE_ABOVE if silence is None else float(silence)
                ),
            )
        )
    return classes


class Mentions:
    """Which of a model's classes a record's subjects mention, as the reports define it.

    The enrich stage uses it to write the curation bands; the reports check the store's current
    metadata again before they show a finding, so a record fixed since stays fixed.
    """

    def __init__(self, classes: list[CurationClass]):
        self.by_concept: dict[str, set[str]] = defaultdict(set)
        self.by_label: dict[str, set[str]] = defaultdict(set)
        for cls in classes:
            for concept in cls.concepts:
                self.by_concept[concept].add(cls.uri)
            for label in cls.labels:
                self.by_label[label].add(cls.uri)

    def of(self, subjects) -> frozenset[str]:
        """The classes mentioned by (concept URI, label text) pairs; either may be None."""
        found: set[str] = set()
        for uri, label in subjects:
            if uri:
                found |= self.by_concept.get(uri, set())
            if label:
                found |= self.by_label.get(label.lower(), set())
        return frozenset(found)


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


# what `_best_images` reads of each row of the noise and silence queries
BEST_IMAGE_COLUMNS = ("record", "class", "score", "image")


def _score(row: dict[str, Any]) -> float:
    return float(value_of(row, "score") or 0.0)


@dataclass
class OutOfSample:
    """The `confident` method's findings over a dataset's images (monalia.curation.confident_learning), from a
    model's out-of-sample scores; `records` are the dataset's records, which only these judge."""

    name: str  # the score set
    records: frozenset[str]
    # the findings of one kind, "noise" or "silence": read when that kind is asked for
    read: Callable[[str], list[Finding]]
    # every image the model scored is in the score set: no record is left to the thresholds
    # (`records` may then be left empty)
    covers_all: bool = False
    _read: dict[str, list[Finding]] = field(default_factory=dict, repr=False)

    def findings(self, kind: str) -> list[Finding]:
        if kind not in self._read:
            self._read[kind] = self.read(kind)
        return self._read[kind]

    @property
    def noise(self) -> list[Finding]:
        return self.findings("noise")

    @property
    def silence(self) -> list[Finding]:
        return self.findings("silence")


class Curation:
    """Search, noise and silence for one model over one store.

    Where the model's graph has the curation bands (`monalia enrich` writes them), each query
    reads only the bands that can hold an answer, then checks the store's current metadata;
    otherwise, or for thresholds under the bands, it reads every score of the asked classes.

    With `out_of_sample` (the `confident` method), the records of the model's dataset are
    judged by confident learning over their out-of-sample scores, and the other records, which
    the model never trained on, by the thresholds.
    """

    def __init__(
        self,
        client: SelectClient,
        graph: str,
        classes: list[CurationClass],
        model_name: str | None = None,
        out_of_sample: OutOfSample | Callable[[], OutOfSample | None] | None = None,
        mentions_graph: str | None = None,
    ):
        self.client = client
        self.graph = graph
        # the model's mention index (monalia.rdf.mentions), where the store has it
        self.mentions_graph = mentions_graph
        self._indexed: bool | None = None
        self.model_name = model_name
        self._out_of_sample = out_of_sample
        self.classes = classes
        self.by_uri = {c.uri: c for c in classes}
        self.mentions = Mentions(classes)
        self._banded: bool | None = None
        self._details: dict[str, dict[str, list[tuple[str, str]]]] = {}

    @property
    def banded(self) -> bool:
        """Whether the model's graph has the curation bands."""
        if self._banded is None:
            query = bind(
                "PREFIX ml: <http://ns.inria.fr/monalia/>\n"
                "SELECT ?band WHERE { GRAPH ?scores { ?detection ml:band ?band } } LIMIT 1",
                scores=IRI(self.graph),
            )
            self._banded = bool(self.client.select(query))
        return self._banded

    def _bands(self, cls: CurationClass, mentioned: bool, deciles) -> list[IRI]:
        return [IRI(band_iri(self.graph, cls.uri, mentioned, d)) for d in deciles]

    def search(
        self, cls: CurationClass, min_score: float | None = None, limit: int | None = None
    ) -> list[Finding]:
        """Records the model scores at or above `min_score` for the class, best first."""
        if min_score is None:
            min_score = cls.threshold if cls.threshold is not None else 0.5
        if self.banded and score_decile(min_score) >= cls.band_floor:
            found = self._search_banded(cls, float(min_score), limit)
        else:
            found = self._search_everything(cls, float(min_score), limit)
        self.mark_annotated(found)
        for finding in found:
            finding.scores = self.model_name
        return found

    def _search_everything(self, cls, min_score: float, limit: int | None) -> list[Finding]:
        query = bind(
            query_text("curation-search"),
            scores=IRI(self.graph),
            **{"class": IRI(cls.uri)},
            minScore=ScoreValue(min_score),
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
        return list(findings.values())

    def _scored_detections(self, cls, min_score: float, lazily: bool):
        """(score, detection) best first. Lazily, one tenth of [0, 1] at a time from the top:
        a search for the best few reads the highest bands only."""
        deciles = range(score_decile(min_score), 10)
        groups = [[decile] for decile in reversed(deciles)] if lazily else [list(deciles)]
        for group in groups:
            bands = self._bands(cls, True, group) + self._bands(cls, False, group)
            query = bind(
                query_text("curation-search-banded"),
                scores=IRI(self.graph),
                minScore=ScoreValue(min_score),
            )
            query = bind_block(query, "bands", values_block("band", bands))
            yield from sorted(
                ((_score(row), value_of(row, "detection")) for row in self.client.select(query)),
                key=lambda pair: (-pair[0], pair[1]),
            )

    def _search_banded(self, cls, min_score: float, limit: int | None) -> list[Finding]:
        scored = self._scored_detections(cls, min_score, lazily=limit is not None)
        findings: dict[str, Finding] = {}
        # whose images the best detections are, a batch at a time until the limit is reached
        step = DETAIL_BATCH if limit is None else max(2 * limit, 50)
        while batch := list(islice(scored, step)):
            query = bind(query_text("curation-detections"), scores=IRI(self.graph))
            query = bind_block(
                query, "detections", values_block("detection", (IRI(d) for _, d in batch))
            )
            origin = {
                value_of(row, "detection"): (value_of(row, "record"), value_of(row, "image"))
                for row in self.client.select(query)
            }
            rows = sorted(
                (-score, *origin[detection]) for score, detection in batch if detection in origin
            )
            for score, record, image in rows:
                if record not in findings:  # the record's best image came first
                    findings[record] = Finding(record, cls.uri, cls.label, -score, image or "")
                if limit is not None and len(findings) >= limit:
                    return list(findings.values())
        return list(findings.values())

    def _report_everything(
        self, name: str, variable: str, classes: list[CurationClass], skip=frozenset()
    ) -> list[Finding]:
        threshold = "noise_below" if variable == "below" else "silence_above"
        query = bind(query_text(name), scores=IRI(self.graph))
        query = bind_block(
            query,
            "thresholds",
            values_rows(
                ("class", variable),
                [(IRI(c.uri), ScoreValue(getattr(c, threshold))) for c in classes],
            ),
        )
        query = _class_blocks(query, classes)
        rows = select_values(self.client, query, BEST_IMAGE_COLUMNS)
        found = self._best_images(rows, annotated=variable == "below")
        return [f for f in found if f.record not in skip]

    def _best_images(self, rows, annotated: bool | None) -> list[Finding]:
        """One finding per record and class, with the record's best image, from (record,
        class, score, image) rows."""
        best: dict[tuple[str, str], Finding] = {}
        for record, uri, score_text, image in rows:
            cls = self.by_uri.get(uri)
            if cls is None:
                continue
            key = (record, uri)
            score = float(score_text or 0.0)
            kept = best.get(key)
            # noise: the record's best image is still below; silence: show its best image
            if kept is None or score > kept.score:
                best[key] = Finding(record, uri, cls.label, score, image or "", annotated)
        return list(best.values())

    def _banded_rows(self, name: str, variable: str, bands) -> list[tuple[str | None, ...]]:
        """(record, class, score, image) rows of a banded query."""
        query = bind(query_text(name), scores=IRI(self.graph))
        query = bind_block(query, "bands", values_rows(("band", "class", variable), bands))
        return select_values(self.client, query, BEST_IMAGE_COLUMNS)

    def _noise_banded(self, classes: list[CurationClass], skip=frozenset()) -> list[Finding]:
        bands = [
            (band, IRI(c.uri), ScoreValue(c.noise_below))
            for c in classes
            for band in self._bands(c, True, range(score_decile(c.noise_below) + 1))
        ]
        rows = self._banded_rows("curation-noise-banded", "below", bands)
        images_below: dict[tuple[str, str], set[str]] = defaultdict(set)
        for record, uri, _score_text, image in rows:
            images_below[record, uri].add(image)
        found = [f for f in self._best_images(rows, annotated=True) if f.record not in skip]
        # a record is noise only if none of its images reaches the threshold: where the bands
        # show fewer images below than the record has, read the others' scores
        images = self._image_counts(sorted({f.record for f in found}))
        unsure = [
            f for f in found if images.get(f.record, 1) > len(images_below[f.record, f.class_uri])
        ]
        reached = self._reaching(unsure)
        found = [f for f in found if (f.record, f.class_uri) not in reached]
        self.mark_annotated(found)  # the metadata as it is now: a fixed record is not noise
        return [f for f in found if f.annotated]

    def _image_counts(self, records: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        counting = bind(query_text("curation-images"), scores=IRI(self.graph))
        for query, _ in _for_records(counting, records):
            for row in self.client.select(query):
                counts[value_of(row, "record")] = int(value_of(row, "images") or 0)
        return counts

    def _reaching(self, findings: list[Finding]) -> set[tuple[str, str]]:
        """The (record, class) pairs with an image scored at or above the class's noise threshold."""
        reached: set[tuple[str, str]] = set()
        pairs = sorted({(f.record, f.class_uri) for f in findings})
        for start in range(0, len(pairs), DETAIL_BATCH):
            query = bind(query_text("curation-class-scores"), scores=IRI(self.graph))
            query = bind_block(
                query,
                "pairs",
                values_rows(
                    ("record", "class"),
                    [(IRI(r), IRI(c)) for r, c in pairs[start : start + DETAIL_BATCH]],
                ),
            )
            for row in self.client.select(query):
                key = (value_of(row, "record"), value_of(row, "class"))
                if _score(row) >= self.by_uri[key[1]].noise_below:
                    reached.add(key)
        return reached

    def _silence_banded(self, classes: list[CurationClass], skip=frozenset()) -> list[Finding]:
        bands = [
            (band, IRI(c.uri), ScoreValue(c.silence_above))
            for c in classes
            for band in self._bands(c, False, range(score_decile(c.silence_above), 10))
        ]
        rows = self._banded_rows("curation-silence-banded", "above", bands)
        found = [f for f in self._best_images(rows, annotated=None) if f.record not in skip]
        self.mark_annotated(found)  # the metadata as it is now: a record fixed since is not silence
        return [f for f in found if not f.annotated]

    @property
    def out_of_sample(self) -> OutOfSample | None:
        if callable(self._out_of_sample):
            self._out_of_sample = self._out_of_sample()
        return self._out_of_sample

    @property
    def method(self) -> str:
        return "confident" if self._out_of_sample is not None else "threshold"

    def _judged(self, found: list[Finding], kind: str, classes) -> list[Finding]:
        """The threshold findings outside the dataset, and the confident ones inside it, as
        the store's metadata stands now."""
        for finding in found:
            finding.scores = self.model_name
        oos = self.out_of_sample
        if oos is None:
            return found
        wanted = {c.uri for c in classes}
        kept = [f for f in found if f.record not in oos.records]
        judged = [replace(f) for f in oos.findings(kind) if f.class_uri in wanted]
        self.mark_annotated(judged)  # a record fixed since is no longer a finding
        return kept + [f for f in judged if f.annotated == (kind == "noise")]

    def _judged_elsewhere(self) -> frozenset[str] | None:
        """The records confident learning judges (the thresholds leave them alone); None when
        it judges every record the model scored, and the thresholds have nothing to do."""
        oos = self.out_of_sample
        if oos is None:
            return frozenset()
        return None if oos.covers_all else oos.records

    def noise(self, classes: list[CurationClass] | None = None) -> list[Finding]:
        """Suspect annotations: lowest scores first."""
        classes = classes or self.classes
        skip = self._judged_elsewhere()
        if skip is None:
            found = []
        elif self.banded:
            found = self._noise_banded(classes, skip)
        else:
            found = self._report_everything("curation-noise", "below", classes, skip)
        found = self._judged(found, "noise", classes)
        return sorted(found, key=lambda f: (f.score, f.class_label, f.record))

    def silence(self, classes: list[CurationClass] | None = None) -> list[Finding]:
        """Missing annotations: highest scores first."""
        classes = classes or self.classes
        skip = self._judged_elsewhere()
        banded = [
            c for c in classes if self.banded and score_decile(c.silence_above) >= c.band_floor
        ]
        rest = [c for c in classes if c not in banded]
        found = []
        if skip is not None:
            found = self._silence_banded(banded, skip) if banded else []
            if rest:
                found += self._report_everything("curation-silence", "above", rest, skip)
        found = self._judged(found, "silence", classes)
        return sorted(found, key=lambda f: (-f.score, f.class_label, f.record))

    def _record_details(self, records) -> dict[str, dict[str, list[tuple[str, str]]]]:
        """Each record's title, reference, page and subjects: (term type, value) by property."""
        missing = sorted({r for r in records if r not in self._details})
        self._read_properties("curation-records", missing, self._details)
        return self._details

    def _read_properties(self, query_name: str, records: list[str], into: dict) -> None:
        """The (record, property, value) rows a query gives for these records, a batch at a
        time, into `into`: (term type, value) by property, by record."""
        for query, batch in _for_records(query_text(query_name), records):
            for record in batch:
                into.setdefault(record, defaultdict(list))
            for row in self.client.select(query):
                cell = row.get("value") or {}
                value = (cell.get("type", "literal"), cell.get("value", ""))
                values = into[value_of(row, "record")][value_of(row, "property")]
                if value not in values:
                    values.append(value)

    @property
    def indexed(self) -> bool:
        """Whether the store holds the model's mention index: annotations are then read from
        it, not from every record's subjects."""
        if self._indexed is None:
            self._indexed = False
            if self.mentions_graph:
                query = bind(
                    "PREFIX ml: <http://ns.inria.fr/monalia/>\n"
                    "SELECT ?model WHERE { GRAPH ?index { ?index a ml:MentionIndex ; ml:model ?model } }"
                    " LIMIT 1",
                    index=IRI(self.mentions_graph),
                )
                self._indexed = bool(self.client.select(query))
        return self._indexed

    def _indexed_mentions(self, records) -> set[tuple[str, str]]:
        """The (record, class) pairs of the mention index, for these records."""
        pairs: set[tuple[str, str]] = set()
        index = bind(query_text("curation-mentions"), mentions=IRI(self.mentions_graph))
        for query, _ in _for_records(index, sorted(set(records))):
            pairs.update(select_values(self.client, query, ("record", "class")))
        return pairs

    def mark_annotated(self, findings: list[Finding]) -> None:
        """Set `annotated` on each finding: does the record's metadata mention its class now?"""
        if self.indexed:
            pairs = self._indexed_mentions(f.record for f in findings)
            for finding in findings:
                finding.annotated = (finding.record, finding.class_uri) in pairs
            return
        details = self._record_details(f.record for f in findings)
        for finding in findings:
            uris, texts = subject_terms(details.get(finding.record, {}))
            subjects = [(uri, None) for uri in uris] + [(None, text) for text in texts]
            finding.annotated = finding.class_uri in self.mentions.of(subjects)

    def _titles(self, records) -> dict[str, dict[str, list[tuple[str, str]]]]:
        """Each record's title and reference only (what the reports' table shows)."""
        found: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for query, _ in _for_records(query_text("curation-titles"), sorted(set(records))):
            for record, prop, value in select_values(
                self.client, query, ("record", "property", "value")
            ):
                values = found.setdefault(record, {}).setdefault(prop, [])
                cell = ("literal", value or "")  # titles and references are literals
                if cell not in values:
                    values.append(cell)
        return found

    def describe(self, findings: list[Finding], brief: bool = False) -> None:
        """Fill in each finding's title, reference, landing page and subject texts (`brief`:
        its title and reference only, unless the details were read already)."""
        records = [f.record for f in findings]
        if brief and any(r not in self._details for r in records):
            details = self._titles(records)
        else:
            details = self._record_details(records)
        for finding in findings:
            found = details.get(finding.record, {})
            finding.title = _first(found.get(DC_TITLE))
            finding.identifier = _first(found.get(DC_IDENTIFIER))
            if not brief:
                finding.page = _first(found.get(FOAF_PAGE))
                finding.subjects = sorted(value for _, value in found.get(SUBJECT_TEXT, []))


def subject_terms(details: dict[str, list[tuple[str, str]]]) -> tuple[set[str], set[str]]:
    """A record's subjects from its details: (concept URIs, subject texts)."""
    uris, texts = set(), set()
    for kind, value in details.get(DC_SUBJECT, []):
        (uris if kind == "uri" else texts).add(value)
    texts.update(value for _, value in details.get(SUBJECT_TEXT, []))
    return uris, texts


def _first(values: list[tuple[str, str]] | None) -> str | None:
    return sorted(value for _, value in values)[0] if values else None


def _for_records(query: str, records: list[str]):
    """(the query with its ``# {records}`` line bound to a batch of records, the batch), for
    each batch of the records."""
    for batch in _batches(records):
        yield bind_block(query, "records", values_block("record", map(IRI, batch))), batch


def _batches(items: list[str]):
    for start in range(0, len(items), DETAIL_BATCH):
        yield items[start : start + DETAIL_BATCH]
