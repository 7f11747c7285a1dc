"""The files in ontology/ are what stores and parsers read: each Turtle file and each query
parses in a strict parser, and every ml: term the code, the queries and the shapes use is
declared in the vocabulary."""

from __future__ import annotations

import re
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY = ROOT / "ontology"
ML = "http://ns.inria.fr/monalia/"
# written by the code, per model: ml:classifier_<model> (MonaLIA's ml:classifier40_classes), not
# a vocabulary term
GENERATED = re.compile(r"classifier[0-9]*_|fieldClassifier_")  # minted per model or field
USES = re.compile(
    r'ML \+ "(?P<a>[A-Za-z_][A-Za-z0-9_]*)"|\{ML\}(?P<b>[A-Za-z_][A-Za-z0-9_]*)|\bml:(?P<c>[A-Za-z_][A-Za-z0-9_]*)'
)


@pytest.mark.parametrize("path", sorted(ONTOLOGY.glob("*.ttl")), ids=lambda p: p.name)
def test_every_turtle_file_parses_strictly(path):
    assert list(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
    assert len(rdflib.Graph().parse(path, format="turtle")) > 0


@pytest.mark.parametrize("path", sorted(ONTOLOGY.glob("queries/*.rq")), ids=lambda p: p.name)
def test_every_query_parses(path):
    from monalia.rdf.thesaurus import HIERARCHY_PATH

    text = path.read_text(encoding="utf-8").replace("{{path}}", f"({HIERARCHY_PATH})*")
    ox.Store().query(text)  # raises SyntaxError on a query a SPARQL 1.1 store would refuse


def used_terms() -> dict[str, set[str]]:
    """ml: local names, each with the files that use it."""
    found: dict[str, set[str]] = {}
    files = [
        *ROOT.glob("monalia/**/*.py"),
        *ROOT.glob("plugins/**/*.py"),
        *ROOT.glob("harvesters/**/*.py"),
        *ONTOLOGY.glob("queries/*.rq"),
        ONTOLOGY / "shapes.ttl",
    ]
    for path in files:
        for match in USES.finditer(path.read_text(encoding="utf-8")):
            name = match.group("a") or match.group("b") or match.group("c")
            if not GENERATED.match(name):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_ml_term_in_use_is_declared():
    vocabulary = rdflib.Graph().parse(ONTOLOGY / "monalia.ttl", format="turtle")
    declared = {str(s)[len(ML) :] for s in vocabulary.subjects() if str(s).startswith(ML)}
    used = used_terms()
    assert len(used) > 20
    undeclared = {name: sorted(where) for name, where in used.items() if name not in declared}
    assert not undeclared, f"ml: terms used but not in ontology/monalia.ttl: {undeclared}"
    shapes = rdflib.Graph().parse(ONTOLOGY / "shapes.ttl", format="turtle")
    in_shapes = {
        str(term)[len(ML) :]
        for triple in shapes
        for term in triple
        if isinstance(term, rdflib.URIRef)
        and str(term).startswith(ML)
        and "/" not in str(term)[len(ML) :]  # the shapes' own namespace, mls:
    }
    assert in_shapes <= declared, sorted(in_shapes - declared)
