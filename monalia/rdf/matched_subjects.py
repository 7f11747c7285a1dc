"""The subjects monalia matched from text, as linked data apart from the institution's own.

`monalia label` resolves subject texts ("cheval", a REPR term) to thesaurus concepts; each
resolution becomes a ``dcterms:subject`` link from the record to the concept, in a named graph of
its own per task (``graph/matched-subjects/DATASET``), with how it was matched. Shape (checked by
``mls:SubjectMatchShape`` in ontology/shapes.ttl)::

    <record> dcterms:subject <concept> .
    <match> a ml:SubjectMatch ; ml:record <record> ; ml:concept <concept> ;
        ml:subjectText "cheval"@fr ; ml:sourceField "REPR_text" ;
        ml:matchedBy "prefLabel" ;              # altLabel, hiddenLabel, label, notation, mapping
        ml:thesaurusVersion "3f9a…" ; prov:wasGeneratedBy <run/12> .
    <graph/matched-subjects/demo> a prov:Entity ; prov:wasGeneratedBy <run/12> .
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from monalia.hashing import text_digest
from monalia.rdf.scores import run_iri
from monalia.rdf.terms import DCTERMS, IRI, ML, PROV, RDF, Literal, Triple

MATCHED_BY = ("prefLabel", "altLabel", "hiddenLabel", "label", "notation", "mapping")


def matched_subjects_graph_iri(base_iri: str, dataset: str) -> str:
    return f"{base_iri}graph/matched-subjects/{quote(dataset, safe='')}"


def match_iri(base_iri: str, record: str, field: str | None, text: str, concept: str) -> str:
    digest = text_digest(f"{record}\n{field or ''}\n{text}\n{concept}", length=20)
    return f"{base_iri}match/{digest}"


def match_triples(
    base_iri: str,
    graph: str,
    rows,
) -> Iterator[Triple]:
    """The graph's triples from (record IRI, field, text, lang, concept, how, thesaurus
    fingerprint, run id) rows."""
    runs: set[int | None] = set()
    for record, field, text, lang, concept, how, thesaurus, run_id in rows:
        record_node, concept_node = IRI(record), IRI(concept)
        run = IRI(run_iri(base_iri, run_id))
        node = IRI(match_iri(base_iri, record, field, text, concept))
        yield record_node, DCTERMS + "subject", concept_node
        yield node, RDF + "type", IRI(ML + "SubjectMatch")
        yield node, ML + "record", record_node
        yield node, ML + "concept", concept_node
        yield node, ML + "subjectText", Literal(text, lang=lang or None)
        if field:
            yield node, ML + "sourceField", Literal(field)
        yield node, ML + "matchedBy", Literal(how)
        if thesaurus:
            yield node, ML + "thesaurusVersion", Literal(thesaurus)
        yield node, PROV + "wasGeneratedBy", run
        if run_id not in runs:
            runs.add(run_id)
            yield IRI(graph), RDF + "type", IRI(PROV + "Entity")
            yield IRI(graph), PROV + "wasGeneratedBy", run
            yield run, RDF + "type", IRI(PROV + "Activity")
