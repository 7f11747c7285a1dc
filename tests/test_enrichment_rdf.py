"""The N-Triples fast path of the enrichment RDF says exactly what the triples say."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import rdflib

from monalia.rdf.scores import (
    ImageScores,
    ModelClass,
    ModelInfo,
    band_iri,
    model_graph_iri,
    score_decile,
    score_ntriples,
    score_triples,
)
from monalia.rdf.terms import nt_line

T523 = "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-"

MODEL = ModelInfo(
    name="chevaux & chiens {v2}",
    classes=(
        ModelClass(T523 + "cheval", "cheval", 0.5),
        ModelClass(T523 + "chien", "chien", 0.4),
        ModelClass("urn:x:odd concept<1>", "odd", 0.3),
    ),
)


def images() -> list[ImageScores]:
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    return [
        ImageScores(
            1,
            "urn:rec:1",
            1,
            "https://img.example.org/1.jpg",
            "a" * 64,
            3,
            at,
            {
                T523 + "cheval": 0.91234,
                T523 + "chien": 0.05,
                "urn:x:odd concept<1>": 0.3,
            },
            mentioned=frozenset({T523 + "chien"}),
        ),
        # a record IRI and image URL with characters N-Triples must escape, no run, a class
        # with no score at all
        ImageScores(
            2,
            'urn:rec:two "quoted"',
            2,
            "https://img.example.org/a b{c}.jpg",
            None,
            None,
            at,
            {T523 + "cheval": 0.0001, T523 + "chien": 1.0},
            mentioned=frozenset({T523 + "cheval"}),
        ),
        ImageScores(3, "urn:rec:3", 3, "https://img.example.org/3.jpg", None, 4, at, {}),
    ]


def test_ntriples_lines_equal_the_triples_written_one_by_one():
    for model, min_score in ((MODEL, 0.0), (MODEL, 0.2), (replace(MODEL, bands=True), 0.0)):
        expected = [nt_line(t) for t in score_triples(model, images(), "urn:base/", min_score)]
        pieces = list(score_ntriples(model, images(), "urn:base/", min_score))
        assert "".join(text for text, _ in pieces) == "".join(expected)
        assert sum(count for _, count in pieces) == len(expected)
        assert len(pieces) == 3  # one piece per image

    below = "".join(text for text, _ in score_ntriples(MODEL, images(), "urn:base/", 0.2))
    graph = rdflib.Graph().parse(data=below, format="nt")
    scores = sorted(
        float(o) for o in graph.objects(None, rdflib.URIRef("http://ns.inria.fr/monalia/score"))
    )
    assert scores == [0.3, 0.9123, 1.0]  # 0.05 and 0.0001 fall under min_score


def test_curation_bands_index_mentioned_and_high_scores():
    model = replace(MODEL, bands=True)
    text = "".join(text for text, _ in score_ntriples(model, images(), "urn:base/"))
    graph = rdflib.Graph().parse(data=text, format="nt")
    band = rdflib.URIRef("http://ns.inria.fr/monalia/band")
    found = {
        (str(graph.value(detection, rdflib.RDF.type)), str(iri))
        for detection, iri in graph.subject_objects(band)
    }
    base = model_graph_iri("urn:base/", model.name)
    assert found == {
        # mentioned: every score has a band, however low
        (T523 + "chien", band_iri(base, T523 + "chien", True, 0)),
        (T523 + "cheval", band_iri(base, T523 + "cheval", True, 0)),
        # not mentioned: from 0.5 up, or from the class's threshold where it is lower (0.3)
        (T523 + "cheval", band_iri(base, T523 + "cheval", False, 9)),
        (T523 + "chien", band_iri(base, T523 + "chien", False, 9)),
        # written percent-encoded: a strict parser refuses a space or <> in an IRI
        ("urn:x:odd%20concept%3C1%3E", band_iri(base, "urn:x:odd concept<1>", False, 3)),
    }
    # without bands asked for, none is written
    plain = "".join(text for text, _ in score_ntriples(MODEL, images(), "urn:base/"))
    assert "monalia/band>" not in plain


def test_score_deciles_follow_the_written_score():
    assert [score_decile(s) for s in (0.0, 0.0999, 0.09996, 0.1, 0.5, 0.89999, 0.99, 1.0)] == [
        0,
        0,
        1,
        1,
        5,
        9,
        9,
        9,
    ]
