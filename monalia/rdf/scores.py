"""The enrichment in RDF: a model's scores as MonaLIA's classification triples, with provenance.

Shape (documented in ontology/enrichment.md, checked by ontology/shapes.ttl)::

    <record> ml:imageClassifier <classification> .
    <classification> a <classifier class> ; ml:image <image> ;
        prov:wasGeneratedBy <run> ; prov:generatedAtTime "..."^^xsd:dateTime ;
        ml:detected <detection> .
    <detection> a <concept> ; ml:score "0.8102"^^xsd:float ;
        ml:band <graph/band/{concept digest}/m8> ;
        ml:region <detection-r1> .                      # with `enrich --regions`
    <detection-r1> a oa:SpecificResource ; oa:hasSource <image> ;
        oa:hasSelector <detection-r1s> .
    <detection-r1s> a oa:FragmentSelector ; dcterms:conformsTo <http://www.w3.org/TR/media-frags/> ;
        rdf:value "xywh=12,40,30,28" .                  # in the image file's pixels

`ml:band` is an index for the curation reports: which tenth of [0, 1] the score falls in, and
whether the record's metadata mentioned the concept when the graph was published ("m", "u").
Every detection of a mentioned concept has one; an unmentioned one has one from 0.5 (or the
class's lower decision threshold) up. Noise, silence and search then read the few detections in
the bands they ask about, instead of every score of the collection.

The classifier class is a subclass of ml:classifierRepresentedSubject, labelled with the model's
name, as MonaLIA's "40_classes". Every IRI is minted from the record, image, model and concept, so
the same scores always give the same triples: a re-run replaces a model's named graph instead of
adding a second copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from monalia.hashing import text_digest
from monalia.rdf.terms import (
    DCTERMS,
    IRI,
    MEDIA_FRAGMENTS,
    ML,
    OA,
    PROV,
    RDF,
    RDFS,
    SKOS,
    XSD,
    Literal,
    Triple,
    nt_iri,
    nt_line,
)

VOCAB_ID = "REPR"  # the Joconde field whose vocabulary a project's default task predicts
# unmentioned detections are banded from this score up (or from the class's threshold if lower):
# silence and search ask about high scores only, and the low ones are most of the collection
UNMENTIONED_BANDS_FROM = 0.5
# decimal places of a score as the RDF writes it; thresholds are stored with the same places, so
# that the reports compare a written score with a threshold written the same way
SCORE_DECIMALS = 4


def as_written(score: float) -> float:
    """A score (or threshold) rounded as the RDF writes it."""
    return float(f"{score:.{SCORE_DECIMALS}f}")


@dataclass(frozen=True)
class ModelClass:
    uri: str
    label: str
    threshold: float | None = None
    average_precision: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What the RDF says about a model: from its catalog row and card."""

    name: str
    classes: tuple[ModelClass, ...]
    backbone: str | None = None
    trainer: str | None = None
    dataset_hash: str | None = None
    created_at: datetime | None = None
    test_map: float | None = None
    # write the curation bands (the publisher knows each image's `mentioned` classes)
    bands: bool = False
    vocab_id: str = VOCAB_ID  # the field the model's task predicts (its project task's)
    # the classes' place in their thesaurus (monalia.rdf.class_context): (narrower, broader)
    # pairs up to the top, and (concept, text, language, "pref" or "alt") labels
    hierarchy: tuple[tuple[str, str], ...] = ()
    concept_labels: tuple[tuple[str, str, str | None, str], ...] = ()


@dataclass
class ImageScores:
    """One image's scores under one model, with where they came from."""

    record_id: int
    record_iri: str
    image_id: int
    image_url: str
    image_sha256: str | None
    run_id: int | None
    scored_at: datetime
    scores: dict[str, float] = field(default_factory=dict)
    # the classes the record's metadata mentions (see monalia.curation.findings.Mentions)
    mentioned: frozenset[str] = frozenset()
    # where each detected class is seen: (left, top, width, height) boxes in the image's pixels
    regions: dict[str, tuple[tuple[int, int, int, int], ...]] = field(default_factory=dict)
    image_size: tuple[int, int] | None = None  # (width, height) of the image file
    canvas: CanvasTarget | None = None  # the IIIF canvas the image is painted on, if known
    landing_page: str | None = None  # the record's page at its institution
    title: str | None = None

    def canvas_box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in the canvas's coordinates: scaled from the image file's size to the
        canvas's (an IIIF image is fetched smaller than the canvas it is painted on)."""
        canvas = self.canvas
        if canvas is None or not canvas.width or not canvas.height or not self.image_size:
            return box
        sx, sy = canvas.width / self.image_size[0], canvas.height / self.image_size[1]
        x, y, w, h = box
        left, top = round(x * sx), round(y * sy)
        return left, top, max(1, round((x + w) * sx) - left), max(1, round((y + h) * sy) - top)


@dataclass(frozen=True)
class CanvasTarget:
    """A IIIF canvas an image is painted on, and the manifest that holds it."""

    manifest: str  # the manifest's id
    canvas: str  # the canvas's id
    width: int | None = None
    height: int | None = None
    manifest_url: str | None = None  # where the manifest was fetched from, when it differs


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "model"


def model_graph_iri(base_iri: str, model: str) -> str:
    """The named graph holding one model's scores."""
    return f"{base_iri}graph/model/{quote(model, safe='')}"


def model_iri(base_iri: str, model: str) -> str:
    return f"{base_iri}model/{quote(model, safe='')}"


def run_iri(base_iri: str, run_id: int | None) -> str:
    return f"{base_iri}run/{run_id}"


def classifier_class_iri(model: str) -> str:
    """MonaLIA's `ml:classifier40_classes`: the class of a model's classifications."""
    return f"{ML}classifier_{_slug(model)}"


def classification_iri(base_iri: str, model: str, record_iri: str, image_url: str) -> str:
    return f"{base_iri}classification/{_slug(model)}/{text_digest(record_iri, image_url)}"


def detection_iri(classification: str, concept: str) -> str:
    return f"{classification}-{text_digest(concept, length=12)}"


def score_decile(score: float) -> int:
    """The tenth of [0, 1] a score falls in (0 to 9), taken on the score as written (4 places)."""
    return min(9, max(0, round(as_written(score) * 10_000) // 1000))


def band_floor(threshold: float | None) -> int:
    """The lowest decile an unmentioned detection of a class with this threshold is banded in."""
    if threshold is None:
        return score_decile(UNMENTIONED_BANDS_FROM)
    return score_decile(min(UNMENTIONED_BANDS_FROM, threshold))


def region_iri(detection: str, number: int) -> str:
    """The `number`-th (from 1) region of a detection; its selector is this IRI + "s"."""
    return f"{detection}-r{number}"


def xywh(box) -> str:
    x, y, w, h = (int(v) for v in box)
    return f"xywh={x},{y},{w},{h}"


def region_triples(detection: str, image_url: str, boxes) -> Iterator[Triple]:
    """A detection's regions: W3C Web Annotation specific resources of the image, each with
    a media-fragment selector."""
    for number, box in enumerate(boxes, start=1):
        region = IRI(region_iri(detection, number))
        selector = IRI(f"{region}s")
        yield IRI(detection), ML + "region", region
        yield region, RDF + "type", IRI(OA + "SpecificResource")
        yield region, OA + "hasSource", IRI(image_url)
        yield region, OA + "hasSelector", selector
        yield selector, RDF + "type", IRI(OA + "FragmentSelector")
        yield selector, DCTERMS + "conformsTo", IRI(MEDIA_FRAGMENTS)
        yield selector, RDF + "value", Literal(xywh(box))


def vocabulary_class_iri(vocab_id: str) -> str:
    """The superclass of the classifiers of one field: MonaLIA's
    ml:classifierRepresentedSubject for REPR, ml:fieldClassifier_FIELD for another task's."""
    if vocab_id == VOCAB_ID:
        return ML + "classifierRepresentedSubject"
    return f"{ML}fieldClassifier_{vocab_id}"


def band_iri(graph: str, concept: str, mentioned: bool, decile: int) -> str:
    """A curation band of a model's graph: one concept, mentioned or not, one decile."""
    return f"{graph}/band/{text_digest(concept, length=12)}/{'m' if mentioned else 'u'}{decile}"


def _time(value: datetime) -> Literal:
    return Literal(value.isoformat().replace("+00:00", "Z"), datatype=XSD + "dateTime")


def _float(value: float) -> Literal:
    return Literal(f"{value:.{SCORE_DECIMALS}f}", datatype=XSD + "float")


def model_triples(
    model: ModelInfo, base_iri: str, run_id: int | None, published_at: datetime
) -> Iterator[Triple]:
    """The model, its classifier class, per-class thresholds and the graph's provenance."""
    graph = IRI(model_graph_iri(base_iri, model.name))
    model_node = IRI(model_iri(base_iri, model.name))
    classifier = IRI(classifier_class_iri(model.name))
    run = IRI(run_iri(base_iri, run_id))
    field_class = IRI(vocabulary_class_iri(model.vocab_id))
    yield field_class, ML + "vocabID", Literal(model.vocab_id)
    if model.vocab_id != VOCAB_ID:
        yield field_class, RDF + "type", IRI(RDFS + "Class")
        yield field_class, RDFS + "subClassOf", IRI(ML + "Classifier")
    yield classifier, RDF + "type", IRI(RDFS + "Class")
    yield classifier, RDFS + "label", Literal(model.name)
    yield classifier, RDFS + "subClassOf", field_class
    yield classifier, ML + "model", model_node
    for entry in model.classes:
        yield classifier, ML + "containsClass", IRI(entry.uri)
    yield model_node, RDF + "type", IRI(ML + "Model")
    yield model_node, RDF + "type", IRI(PROV + "Entity")
    yield model_node, RDFS + "label", Literal(model.name)
    if model.backbone:
        yield model_node, ML + "backbone", Literal(model.backbone)
    if model.trainer:
        yield model_node, ML + "trainer", Literal(model.trainer)
    if model.dataset_hash:
        yield model_node, ML + "datasetHash", Literal(model.dataset_hash)
    if model.created_at:
        yield model_node, DCTERMS + "created", _time(model.created_at)
    if model.test_map is not None:
        yield model_node, ML + "meanAveragePrecision", _float(model.test_map)
    for entry in model.classes:
        setting = IRI(f"{model_node}/class/{text_digest(entry.uri, length=12)}")
        yield model_node, ML + "classSetting", setting
        yield setting, ML + "concept", IRI(entry.uri)
        yield setting, RDFS + "label", Literal(entry.label)
        if entry.threshold is not None:
            yield setting, ML + "threshold", _float(entry.threshold)
        if entry.average_precision is not None:
            yield setting, ML + "averagePrecision", _float(entry.average_precision)
    # the classes' broader concepts and everyone's labels in every language: a plain SPARQL
    # store rolls scores up with `?class skos:broader+ ?concept` and labels them in any language
    for narrower, broader in model.hierarchy:
        yield IRI(narrower), SKOS + "broader", IRI(broader)
    for concept, text, lang, kind in model.concept_labels:
        label = SKOS + ("prefLabel" if kind == "pref" else "altLabel")
        yield IRI(concept), label, Literal(text, lang=lang or None)
    yield from rolled_up_settings(model, model_node)
    yield graph, RDF + "type", IRI(PROV + "Entity")
    yield graph, PROV + "wasDerivedFrom", model_node
    yield graph, PROV + "wasGeneratedBy", run
    yield graph, PROV + "generatedAtTime", _time(published_at)
    yield run, RDF + "type", IRI(PROV + "Activity")
    yield run, PROV + "used", model_node


def rolled_up_settings(model: ModelInfo, model_node: IRI) -> Iterator[Triple]:
    """Each concept above the model's classes, with the classes under it and its derived
    threshold: the lowest of theirs (a record shows the concept when one of them is detected;
    its rolled-up score is the highest of their scores, monalia.curation.rollup)."""
    above: dict[str, set[str]] = {}
    thresholds = {entry.uri: entry.threshold for entry in model.classes}
    for entry in model.classes:
        frontier, seen = [entry.uri], set()
        while frontier:
            current = frontier.pop()
            for narrower, broader in model.hierarchy:
                if narrower == current and broader not in seen:
                    seen.add(broader)
                    frontier.append(broader)
        for concept in seen:
            above.setdefault(concept, set()).add(entry.uri)
    for concept, classes in sorted(above.items()):
        setting = IRI(f"{model_node}/rollup/{text_digest(concept, length=12)}")
        yield model_node, ML + "rolledUpSetting", setting
        yield setting, ML + "concept", IRI(concept)
        yield setting, ML + "rule", Literal("max")
        for uri in sorted(classes):
            yield setting, ML + "narrowerClass", IRI(uri)
        known = [thresholds[uri] for uri in classes if thresholds.get(uri) is not None]
        if known:
            yield setting, ML + "threshold", _float(min(known))


def score_triples(
    model: ModelInfo, images: Iterable[ImageScores], base_iri: str, min_score: float = 0.0
) -> Iterator[Triple]:
    """The classification triples of each image, streamed (nothing is held but one image)."""
    classifier = IRI(classifier_class_iri(model.name))
    graph = model_graph_iri(base_iri, model.name)
    order = [entry.uri for entry in model.classes]
    floors = {entry.uri: band_floor(entry.threshold) for entry in model.classes}
    runs: dict[int | None, IRI] = {}
    for image in images:
        node = IRI(classification_iri(base_iri, model.name, image.record_iri, image.image_url))
        run = runs.get(image.run_id)
        if run is None:
            run = runs[image.run_id] = IRI(run_iri(base_iri, image.run_id))
        yield IRI(image.record_iri), ML + "imageClassifier", node
        yield node, RDF + "type", classifier
        yield node, ML + "image", IRI(image.image_url)
        yield node, PROV + "wasGeneratedBy", run
        yield node, PROV + "generatedAtTime", _time(image.scored_at)
        detections = []
        for uri in order:
            score = image.scores.get(uri)
            if score is None or score < min_score:
                continue
            detection = IRI(detection_iri(node, uri))
            yield node, ML + "detected", detection
            detections.append((detection, uri, score))
        for detection, uri, score in detections:
            yield detection, RDF + "type", IRI(uri)
            yield detection, ML + "score", _float(score)
            if model.bands:
                decile, mentioned = score_decile(score), uri in image.mentioned
                if mentioned or decile >= floors[uri]:
                    yield detection, ML + "band", IRI(band_iri(graph, uri, mentioned, decile))
            yield from region_triples(detection, image.image_url, image.regions.get(uri, ()))


def score_ntriples(
    model: ModelInfo, images: Iterable[ImageScores], base_iri: str, min_score: float = 0.0
) -> Iterator[tuple[str, int]]:
    """`score_triples` already written as N-Triples: (one image's lines, their count) per image.

    The lines are those `nt_line` gives for `score_triples`, in the same order; everything
    that is the same for every image (predicates, classes, each concept's detection suffix) is
    formatted once, which makes this several times faster for sinks that send N-Triples text.
    """
    classifier = nt_iri(classifier_class_iri(model.name))
    image_classifier = f" {nt_iri(ML + 'imageClassifier')} "
    is_a = f" {nt_iri(RDF + 'type')} "
    typed_node = f"{is_a}{classifier} .\n"
    image_of = f" {nt_iri(ML + 'image')} "
    generated_by = f" {nt_iri(PROV + 'wasGeneratedBy')} "
    generated_at = f" {nt_iri(PROV + 'generatedAtTime')} "
    detected = f" {nt_iri(ML + 'detected')} "
    score_of = f" {nt_iri(ML + 'score')} "
    date_time = f"^^{nt_iri(XSD + 'dateTime')} .\n"
    float_type = f"^^{nt_iri(XSD + 'float')} .\n"
    band_of = f" {nt_iri(ML + 'band')} "
    graph = model_graph_iri(base_iri, model.name)
    # per concept: the detection IRI's tail (a hex digest, never escaped), its type line's tail,
    # its band lines' tails by (mentioned, decile) and its lowest unmentioned band
    concepts = [
        (
            entry.uri,
            f"-{text_digest(entry.uri, length=12)}>",
            f"{is_a}{nt_iri(entry.uri)} .\n",
            {
                (
                    mentioned,
                    decile,
                ): f"{band_of}{nt_iri(band_iri(graph, entry.uri, mentioned, decile))} .\n"
                for mentioned in (True, False)
                for decile in range(10)
            },
            band_floor(entry.threshold),
        )
        for entry in model.classes
    ]
    runs: dict[int | None, str] = {}
    for image in images:
        node = nt_iri(classification_iri(base_iri, model.name, image.record_iri, image.image_url))
        node_open = node[:-1]  # "<...": the detection IRIs extend it
        run = runs.get(image.run_id)
        if run is None:
            run = runs[image.run_id] = nt_iri(run_iri(base_iri, image.run_id))
        time = _time(image.scored_at).value
        lines = [
            f"{nt_iri(image.record_iri)}{image_classifier}{node} .\n"
            f"{node}{typed_node}"
            f"{node}{image_of}{nt_iri(image.image_url)} .\n"
            f"{node}{generated_by}{run} .\n"
            f'{node}{generated_at}"{time}"{date_time}'
        ]
        scores = image.scores
        found = [
            (uri, tail, type_line, bands, floor, score)
            for uri, tail, type_line, bands, floor in concepts
            if (score := scores.get(uri)) is not None and score >= min_score
        ]
        lines.extend(f"{node}{detected}{node_open}{entry[1]} .\n" for entry in found)
        banded = 0
        for uri, tail, type_line, bands, floor, score in found:
            lines.append(f"{node_open}{tail}{type_line}")
            lines.append(f'{node_open}{tail}{score_of}"{score:.4f}"{float_type}')
            if model.bands:
                decile, mentioned = score_decile(score), uri in image.mentioned
                if mentioned or decile >= floor:
                    lines.append(f"{node_open}{tail}{bands[mentioned, decile]}")
                    banded += 1
            boxes = image.regions.get(uri) if image.regions else None
            if boxes:  # rare beside the scores: written the plain way
                detection = f"{node_open[1:]}{tail[:-1]}"
                triples = list(region_triples(detection, image.image_url, boxes))
                lines.extend(nt_line(triple) for triple in triples)
                banded += len(triples)
        yield "".join(lines), 5 + 3 * len(found) + banded
