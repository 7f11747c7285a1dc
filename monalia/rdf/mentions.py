"""Which records mention which of a model's classes: the index that noise and silence read
instead of every record's subjects.

A record mentions a class when its subjects name the class's concept or a concept it covers,
or a subject text equals one of their labels (`monalia.curation.findings.Mentions`). The
index is a named graph per model (``graph/mentions/MODEL``), rewritten whole by `monalia
enrich` with the model's graph and by every `monalia publish` of the records, so it says what
the published records say::

    <graph/mentions/MODEL> a ml:MentionIndex ; ml:model <model/MODEL> .
    <record> ml:mentionsClass <class> .
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import quote

from monalia.rdf.terms import IRI, ML, RDF, Triple


def mentions_graph_iri(base_iri: str, model_name: str) -> str:
    return f"{base_iri}graph/mentions/{quote(model_name, safe='')}"


def mention_triples(
    graph: str, model_iri: str, mentions: Iterable[tuple[str, Iterable[str]]]
) -> Iterator[Triple]:
    """The index's triples from (record IRI, class URIs it mentions) pairs."""
    node = IRI(graph)
    yield node, RDF + "type", IRI(ML + "MentionIndex")
    yield node, ML + "model", IRI(model_iri)
    predicate = ML + "mentionsClass"
    for record, classes in mentions:
        record_node = IRI(record)
        for uri in sorted(classes):
            yield record_node, predicate, IRI(uri)
