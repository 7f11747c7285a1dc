"""The N-Triples fast path of the enrichment RDF says exactly what the triples say."""

from __future__ import annotations

from datetime import UTC, datetime

import rdflib

from monalia.enrichment import (
    ImageScores,
    ModelClass,
    ModelInfo,
    score_ntriples,
    score_triples,
)
from monalia.rdf import nt_line

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
        ),
        ImageScores(3, "urn:rec:3", 3, "https://img.example.org/3.jpg", None, 4, at, {}),
    ]


def test_ntriples_lines_equal_the_triples_written_one_by_one():
    for min_score in (0.0, 0.2):
        expected = [nt_line(t) for t in score_triples(MODEL, images(), "urn:base/", min_score)]
        pieces = list(score_ntriples(MODEL, images(), "urn:base/", min_score))
        assert "".join(text for text, _ in pieces) == "".join(expected)
        assert sum(count for _, count in pieces) == len(expected)
        assert len(pieces) == 3  # one piece per image

    below = "".join(text for text, _ in score_ntriples(MODEL, images(), "urn:base/", 0.2))
    graph = rdflib.Graph().parse(data=below, format="nt")
    scores = sorted(
        float(o) for o in graph.objects(None, rdflib.URIRef("http://ns.inria.fr/monalia/score"))
    )
    assert scores == [0.3, 0.9123, 1.0]  # 0.05 and 0.0001 fall under min_score
