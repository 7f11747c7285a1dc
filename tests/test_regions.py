"""Regions (where a detected class is seen) and the W3C Web Annotations the web-annotation sink
writes: boxes from heat maps, their RDF, and annotation pages checked against the Annotation
Model (JSON-LD expanded with the shipped copy of its context, no network)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import numpy as np
import pytest
import rdflib
from rdflib import RDF, Namespace

from monalia.api.plugin import PluginContext
from monalia.formats.web_annotation import ANNO_CONTEXT, anno_context_document
from monalia.learning.regions import Box, heat_boxes, image_boxes
from monalia.plugins.sinks.web_annotation import WebAnnotationSink
from monalia.rdf.scores import (
    CanvasTarget,
    ImageScores,
    ModelClass,
    ModelInfo,
    score_ntriples,
    score_triples,
)
from monalia.rdf.terms import nt_line

OA = Namespace("http://www.w3.org/ns/oa#")
ML = Namespace("http://ns.inria.fr/monalia/")
AS = Namespace("http://www.w3.org/ns/activitystreams#")
HORSE, TREE = "urn:concept:horse", "urn:concept:tree"
MODEL = ModelInfo(
    "planted",
    (ModelClass(HORSE, "cheval", 0.4), ModelClass(TREE, "arbre", 0.6)),
    trainer="cnn",
)
WHEN = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def heat_with(*areas: tuple[int, int, int, int, float], side: int = 64) -> np.ndarray:
    heat = np.zeros((side, side), np.float32)
    for left, top, right, bottom, value in areas:
        heat[top:bottom, left:right] = value
    return heat


def test_a_box_encloses_the_hot_area_and_weak_ones_are_left_out():
    heat = heat_with((40, 10, 60, 30, 1.0), (0, 50, 4, 54, 0.9))
    assert heat_boxes(heat) == [(40, 10, 60, 30)]
    # two areas of the same heat: both, the larger first
    two = heat_with((0, 0, 10, 10, 1.0), (30, 30, 50, 50, 1.0))
    assert heat_boxes(two) == [(30, 30, 50, 50), (0, 0, 10, 10)]
    assert heat_boxes(np.zeros((8, 8), np.float32)) == []  # nowhere: no box


def test_boxes_are_in_the_pixels_of_the_image_file_the_model_saw_the_centre_of():
    heat = heat_with((32, 0, 64, 32, 1.0))  # the top right quarter of the model's view
    assert image_boxes(heat, 96, 96) == [Box(48, 0, 48, 48)]
    # a wide image: the model saw its centre square, 100 px in from the left
    assert image_boxes(heat, 400, 200) == [Box(200, 0, 100, 100)]
    # a tall one: the centre square starts 100 px down
    assert image_boxes(heat, 200, 400) == [Box(100, 100, 100, 100)]


def test_iou_and_canvas_scaling():
    assert Box(0, 0, 10, 10).iou(Box(0, 0, 10, 10)) == 1.0
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 5, 5)) == 0.0
    image = image_scores(canvas=CanvasTarget("urn:m", "urn:m/c1", 2000, 1000))
    # fetched at 400 x 200, painted on a 2000 x 1000 canvas: five times larger
    assert image.canvas_box((40, 20, 100, 50)) == (200, 100, 500, 250)


def image_scores(**extra) -> ImageScores:
    values = {
        "record_id": 1,
        "record_iri": "https://museum.example/record/1",
        "image_id": 7,
        "image_url": "https://museum.example/img/1.jpg",
        "image_sha256": "a" * 64,
        "run_id": 3,
        "scored_at": WHEN,
        "scores": {HORSE: 0.91, TREE: 0.2},
        "regions": {HORSE: ((40, 20, 100, 50),)},
        "image_size": (400, 200),
        "landing_page": "https://museum.example/page/1",
        "title": "Cavalier",
    }
    values.update(extra)
    return ImageScores(**values)


def test_the_rdf_gives_each_region_as_a_media_fragment_selector_both_ways_alike():
    images = [image_scores(), image_scores(image_id=8, regions={})]
    plain = [nt_line(t) for t in score_triples(MODEL, images, "urn:base/")]
    fast = "".join(text for text, _ in score_ntriples(MODEL, images, "urn:base/"))
    assert "".join(plain) == fast
    assert sum(count for _, count in score_ntriples(MODEL, images, "urn:base/")) == len(plain)
    graph = rdflib.Graph().parse(data=fast, format="nt")
    (selector,) = graph.subjects(RDF.type, OA.FragmentSelector)
    assert str(graph.value(selector, RDF.value)) == "xywh=40,20,100,50"
    (region,) = graph.subjects(OA.hasSelector, selector)
    assert str(graph.value(region, OA.hasSource)) == "https://museum.example/img/1.jpg"
    (detection,) = graph.subjects(ML.region, region)
    assert (detection, RDF.type, rdflib.URIRef(HORSE)) in graph


def expanded(document: dict) -> rdflib.Graph:
    """The JSON-LD's triples, its W3C context taken from the shipped copy (no network)."""
    local = copy.deepcopy(document)
    context = local["@context"]
    contexts = context if isinstance(context, list) else [context]
    assert ANNO_CONTEXT in contexts
    local["@context"] = [
        anno_context_document()["@context"] if c == ANNO_CONTEXT else c for c in contexts
    ]
    return rdflib.Graph().parse(data=json.dumps(local), format="json-ld")


def sink(folder, **settings) -> WebAnnotationSink:
    context = PluginContext("annotations", folder, folder, base_iri="urn:base/")
    values = {"path": "annotations", "base_url": "http://127.0.0.1:9/annotations/", **settings}
    return WebAnnotationSink(settings=WebAnnotationSink.Settings(**values), context=context)


def published(folder, images, **settings) -> tuple[dict, list[dict]]:
    written = sink(folder, **settings).publish_model(
        "urn:graph",
        MODEL,
        [],
        images,
        "urn:base/",
        labels={HORSE: [("cheval", "fr"), ("horse", "en")]},
        card={"name": "planted"},
    )
    root = folder / "annotations" / "models" / "planted"
    collection = json.loads((root / "collection.json").read_text(encoding="utf-8"))
    pages = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(root.glob("page-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    ]
    assert written == collection["total"]
    return collection, pages


def test_annotations_follow_the_annotation_model_and_say_what_the_rdf_says(tmp_path):
    images = [
        image_scores(image_id=n, image_url=f"https://museum.example/img/{n}.jpg") for n in range(5)
    ] + [
        image_scores(
            image_id=9,
            image_url="https://museum.example/img/9.jpg",
            scores={HORSE: 0.1, TREE: 0.7},
            regions={},
        )
    ]
    collection, pages = published(tmp_path, images, page_size=2)
    assert collection["type"] == "AnnotationCollection" and collection["total"] == 6
    assert [len(page["items"]) for page in pages] == [2, 2, 2]
    assert pages[0]["next"] == pages[1]["id"] and pages[1]["prev"] == pages[0]["id"]
    assert collection["first"] == pages[0]["id"] and collection["last"] == pages[-1]["id"]
    rdf = rdflib.Graph().parse(
        data="".join(text for text, _ in score_ntriples(MODEL, images, "urn:base/")), format="nt"
    )
    said = set()
    for page in pages:
        graph = expanded(page)
        assert (None, RDF.type, AS.OrderedCollectionPage) in graph
        for item in page["items"]:
            # the model's required keys and their types
            assert {"id", "type", "body", "target"} <= item.keys()
            assert item["type"] == "Annotation" and item["motivation"] == "tagging"
            assert item["id"].startswith("http://127.0.0.1:9/annotations/models/planted/")
            annotation = rdflib.URIRef(item["id"])
            assert (annotation, RDF.type, OA.Annotation) in graph
            assert (annotation, OA.motivatedBy, OA.tagging) in graph
            bodies = set(graph.objects(annotation, OA.hasBody))
            concept = next(b for b in bodies if isinstance(b, rdflib.URIRef))
            texts = {
                (str(graph.value(b, RDF.value)), str(graph.value(b, rdflib.DC.language)))
                for b in bodies
                if (b, RDF.type, OA.TextualBody) in graph
            }
            target = graph.value(annotation, OA.hasTarget)
            source = str(graph.value(target, OA.hasSource))
            score = graph.value(annotation, ML.score)
            assert score.datatype == rdflib.XSD.float
            creator = graph.value(annotation, rdflib.DCTERMS.creator)
            assert (creator, RDF.type, AS.Application) in graph
            assert graph.value(annotation, rdflib.DCTERMS.created).datatype == rdflib.XSD.dateTime
            selector = graph.value(target, OA.hasSelector)
            box = str(graph.value(selector, RDF.value)) if selector else None
            said.add((str(concept), source, round(float(score), 4), box))
            if str(concept) == HORSE:
                assert texts == {("cheval", "fr"), ("horse", "en")}
                assert str(graph.value(target, OA.hasScope)) == "https://museum.example/page/1"
    # the same facts as the RDF: each detection at or above its threshold, score and region
    facts = set()
    for detection, concept in (
        (d, c) for d, _, c in rdf.triples((None, RDF.type, None)) if str(c) in (HORSE, TREE)
    ):
        score = float(rdf.value(detection, ML.score))
        threshold = {HORSE: 0.4, TREE: 0.6}[str(concept)]
        if score < threshold:
            continue
        (classification,) = rdf.subjects(ML.detected, detection)
        image = str(rdf.value(classification, ML.image))
        region = rdf.value(detection, ML.region)
        box = str(rdf.value(rdf.value(region, OA.hasSelector), RDF.value)) if region else None
        facts.add((str(concept), image, round(score, 4), box))
    assert said == facts and len(facts) == 6


def test_publishing_again_gives_the_same_ids_and_replaces_the_annotations(tmp_path):
    _, first = published(tmp_path, [image_scores()])
    _, again = published(tmp_path, [image_scores()])
    assert first == again
    _, fewer = published(tmp_path, [image_scores(scores={HORSE: 0.1, TREE: 0.1})])
    assert fewer[0]["items"] == []  # nothing detected now: the old annotation is gone
    assert not list((tmp_path / "annotations").glob(".*partial"))


def test_iiif_pages_target_the_canvas_in_its_own_coordinates(tmp_path):
    from iiif_prezi3 import AnnotationPage

    canvas = CanvasTarget("https://museum.example/m/1", "https://museum.example/m/1/c1", 2000, 1000)
    published(tmp_path, [image_scores(canvas=canvas)])
    (page_file,) = (tmp_path / "annotations" / "iiif" / "planted").glob("*.json")
    page = json.loads(page_file.read_text(encoding="utf-8"))
    AnnotationPage(**page)  # valid against the Presentation 3 models
    (item,) = page["items"]
    assert item["target"] == "https://museum.example/m/1/c1#xywh=200,100,500,250"
    assert item["body"]["value"] == "cheval (0.91)"
    assert item["seeAlso"][0]["id"] == HORSE
