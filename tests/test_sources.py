"""The built-in file sources pass the contract every source must pass."""

from __future__ import annotations

from pathlib import Path

from conftest import sample_records, write_jsonl
from sqlalchemy import select

from monalia.catalog.models import RecordRow
from monalia.plugins.sources.jsonl import JsonLinesSource
from monalia.plugins.sources.rdf_file import RdfFileSource
from monalia.testing import check_source_contract

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample"


def test_jsonl_source_contract(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", [*sample_records(30), "not json"])
    result = check_source_contract(JsonLinesSource, {"path": "r.jsonl"}, tmp_path, min_records=30)
    assert result.first.counts["failed"] == 1


def test_jsonl_keys_are_configurable(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", [{"inv": "A-1", "name": "Vase", "who": "Anonyme"}])
    settings = {"path": "r.jsonl", "keys": {"id": "inv", "title": "name", "creators": "who"}}
    result = check_source_contract(JsonLinesSource, settings, tmp_path)
    with result.catalog.session() as session:
        row = session.scalar(select(RecordRow))
    assert (row.source_id, row.title, row.creators) == ("A-1", "Vase", ["Anonyme"])


def test_rdf_file_source_contract_on_jocondelab_shaped_turtle(tmp_path):
    result = check_source_contract(
        RdfFileSource, {"path": str(SAMPLE / "notices.ttl")}, tmp_path, min_records=3
    )
    with result.catalog.session() as session:
        row = session.scalar(select(RecordRow).where(RecordRow.source_id == "sample-0001"))
        assert row.iri == "https://jocondelab.iri-research.org/data/notice/sample-0001"
        assert row.title == "Cheval au pré" and row.date_start == 1850
        assert [i.url for i in row.images] == ["https://images.example.org/joconde/sample-0001.jpg"]
        assert ("http://data.culture.fr/thesaurus/resource/ark:/67717/T523-2037", None) in [
            (s.uri, s.label) for s in row.subjects
        ]
        assert ("cheval ; arbre ; nuage", "subject_text") in [
            (s.label, s.field) for s in row.subjects
        ]


def test_rdf_file_source_reads_rdf_xml(tmp_path):
    (tmp_path / "c.rdf").write_text(
        """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:dcterms="http://purl.org/dc/terms/" xmlns:schema="http://schema.org/">
  <schema:VisualArtwork rdf:about="https://museum.example.org/object/7">
    <dcterms:identifier>7</dcterms:identifier>
    <dcterms:title xml:lang="fr">Nature morte</dcterms:title>
    <dcterms:subject>fleur</dcterms:subject>
    <schema:image rdf:resource="https://museum.example.org/img/7.jpg"/>
  </schema:VisualArtwork>
</rdf:RDF>""",
        encoding="utf-8",
    )
    result = check_source_contract(RdfFileSource, {"path": "c.rdf"}, tmp_path)
    with result.catalog.session() as session:
        row = session.scalar(select(RecordRow))
        assert (row.source_id, row.title) == ("7", "Nature morte")
        assert [s.label for s in row.subjects] == ["fleur"]
