"""The thesaurus store: loading every RDF syntax, label lookup, descriptions, expansion."""

from __future__ import annotations

import gzip
import json

import pytest
import rdflib
from support.skos_data import (
    ANIMAL,
    DOG,
    FANTASTIC,
    FOAL,
    HORSE,
    IC_FOAL,
    IC_HORSE,
    ICONCLASS_NT,
    RIDER,
    THESAURUS_TTL,
    UNICORN,
)

from monalia.errors import ConfigError, MonaliaError
from monalia.rdf.thesaurus import Thesaurus, normalize_label


@pytest.fixture
def thesaurus_files(tmp_path):
    garnier = tmp_path / "garnier.ttl"
    garnier.write_text(THESAURUS_TTL, encoding="utf-8")
    iconclass = tmp_path / "iconclass.nt"
    iconclass.write_text(ICONCLASS_NT, encoding="utf-8")
    return garnier, iconclass


@pytest.fixture
def store(thesaurus_files):
    with Thesaurus() as thesaurus:
        for path in thesaurus_files:
            thesaurus.load(path)
        yield thesaurus


def test_labels_match_without_case_accents_or_spacing():
    assert normalize_label("  Être\u00a0 HUMAIN\n") == normalize_label("etre humain")
    assert normalize_label("Œuvre d’art") == "oeuvre d'art"
    assert normalize_label("chêne") != normalize_label("chaîne")


@pytest.mark.parametrize("syntax", ["xml", "json-ld", "nt", "turtle"])
def test_every_rdf_syntax_loads_the_same_concepts(tmp_path, syntax):
    graph = rdflib.Graph().parse(data=THESAURUS_TTL, format="turtle")
    extension = {"xml": "rdf", "json-ld": "jsonld", "nt": "nt", "turtle": "ttl"}[syntax]
    path = tmp_path / f"thesaurus.{extension}"
    graph.serialize(path, format=syntax, encoding="utf-8")
    with Thesaurus() as store:
        result = store.load(path)
        assert result.triples == len(graph)
        assert result.concepts == 14
        assert [entry.concept for entry in store.find("poulain", "fr")] == [FOAL]


def test_gzip_files_load_and_a_broken_file_is_one_clear_error(tmp_path):
    packed = tmp_path / "thesaurus.ttl.gz"
    packed.write_bytes(gzip.compress(THESAURUS_TTL.encode("utf-8")))
    broken = tmp_path / "broken.ttl"
    broken.write_text(THESAURUS_TTL[:400] + " <oops", encoding="utf-8")
    with Thesaurus() as store:
        assert store.load(packed).concepts == 14
        with pytest.raises(MonaliaError, match=r"broken\.ttl is not valid"):
            store.load(broken)
        assert store.concept_count() == 14, "a failed load must leave the store as it was"
    unknown = tmp_path / "thesaurus.txt"
    unknown.write_text(THESAURUS_TTL, encoding="utf-8")
    with Thesaurus() as store, pytest.raises(ConfigError, match="cannot tell the RDF format"):
        store.load(unknown)


def test_find_prefers_the_language_and_the_best_kind_of_label(store):
    assert [e.concept for e in store.find("CHEVAL", "fr")] == [HORSE]
    assert [e.kind for e in store.find("equide", "fr")] == ["alt"], "fr-FR counts as fr"
    assert [e.kind for e in store.find("chevaux", "fr")] == ["hidden"]
    assert [e.concept for e in store.find("licorne", "fr")] == [UNICORN], "untagged fits all"
    # "horse" exists only in English: found anyway, in both vocabularies
    assert {e.concept for e in store.find("horse", "fr")} == {HORSE, IC_HORSE}
    assert store.find("poulain", "fr")[0].text == "poulain", "labels are stripped"


def test_describe_reads_hierarchy_in_both_directions(store):
    info = store.describe(HORSE, "fr")
    assert info.broader == [(ANIMAL, "animal")]
    assert info.narrower == [(FOAL, "poulain")], "skos:broader read backwards is narrower"
    assert info.related == [(RIDER, "cavalier")], "skos:related is symmetric"
    assert info.matches == [("exactMatch", IC_HORSE, "horse")]
    # language tags come back lower-cased, as RDF 1.1 allows
    assert {(e.kind, e.text, e.lang.lower()) for e in info.labels} >= {
        ("pref", "cheval", "fr"),
        ("alt", "équidé", "fr-fr"),
        ("hidden", "chevaux", "fr"),
    }


def test_expansion_equals_the_sparql_property_path_of_an_independent_engine(store, thesaurus_files):
    graph = rdflib.Graph()
    for path in thesaurus_files:
        graph.parse(path)
    query = """PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
    SELECT DISTINCT ?c WHERE {
      { ?top (skos:narrower|^skos:broader|skos:exactMatch|^skos:exactMatch|skos:closeMatch|^skos:closeMatch)* ?c }
      UNION { ?top skos:related/(skos:narrower|^skos:broader|skos:exactMatch|^skos:exactMatch|skos:closeMatch|^skos:closeMatch)* ?c }
    }"""
    for top in (ANIMAL, HORSE, RIDER, FANTASTIC):
        expected = {
            str(row.c) for row in graph.query(query, initBindings={"top": rdflib.URIRef(top)})
        }
        assert store.expand(top, related=True) == expected, top
    assert store.expand(HORSE) == {HORSE, FOAL, IC_HORSE, IC_FOAL}
    assert store.expand(HORSE, follow=()) == {HORSE, FOAL}
    assert DOG in store.expand(ANIMAL) and UNICORN in store.expand(ANIMAL)
    assert store.expand(RIDER) == {RIDER}
    assert store.expand(RIDER, related=True) == {RIDER, HORSE, FOAL, IC_HORSE, IC_FOAL}
    # related is followed as stated, from the class, as MonaLIA's query does
    assert RIDER not in store.expand(HORSE, related=True)


def test_the_shared_iconclass_sample_expands_like_monalias_query(real_fixtures):
    path = real_fixtures / "thesaurus" / "iconclass.skos.nt"
    graph = rdflib.Graph().parse(path)
    query = """PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
    SELECT DISTINCT ?c WHERE { { ?top skos:narrower* ?c } UNION { ?top skos:related/skos:narrower* ?c } }"""
    tops = {
        str(s)
        for s in graph.subjects(
            rdflib.RDF.type, rdflib.URIRef("http://www.w3.org/2004/02/skos/core#Concept")
        )
    }
    with Thesaurus() as store:
        assert store.load(path).concepts == 161
        for top in sorted(tops):
            expected = {
                str(r.c) for r in graph.query(query, initBindings={"top": rdflib.URIRef(top)})
            }
            assert store.expand(top, related=True) == expected, top


def test_the_shared_ginco_sample_loads_with_mixed_language_tags(real_fixtures):
    path = real_fixtures / "thesaurus" / "ginco_T69_concept_associations.rdf"
    with Thesaurus() as store:
        result = store.load(path)
        assert result.concepts >= 20
        found = store.find("meuble domestique", "fr")
        assert found and found[0].concept.endswith("T69-1930")
        # labels tagged fr-FR answer a French lookup too, and stray newlines do not matter
        tagged = [
            e
            for entries in store.labels().values()
            for e in entries
            if e.lang and e.lang.lower() == "fr-fr"
        ]
        assert tagged, "the sample has fr-FR labels"
        assert store.find(" " + tagged[0].text.upper() + "\n", "fr")


def test_the_store_persists_and_reloads_only_changed_files(tmp_path, thesaurus_files):
    garnier, iconclass = thesaurus_files
    with Thesaurus(tmp_path / "store") as store:
        first = store.sync([garnier, iconclass])
        assert [r.skipped for r in first] == [False, False]
        fingerprint = store.fingerprint()
    with Thesaurus(tmp_path / "store") as store:
        again = store.sync([garnier, iconclass])
        assert [r.skipped for r in again] == [True, True]
        assert store.fingerprint() == fingerprint
        assert store.concept_count() == 16
        garnier.write_text(THESAURUS_TTL.replace('"chien"@fr', '"chien"@fr, "toutou"@fr'))
        changed = store.sync([garnier])
        assert [r.skipped for r in changed] == [False]
        assert store.concept_count() == 14, "a file no longer listed is unloaded"
        assert [e.concept for e in store.find("toutou", "fr")] == [DOG]
        assert store.fingerprint() != fingerprint
        manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
        assert list(manifest) == [str(garnier.resolve())]


@pytest.mark.slow
def test_a_thesaurus_of_tens_of_thousands_of_concepts_loads_and_expands(tmp_path):
    lines = []
    for i in range(30_000):
        uri = f"<http://example.org/c/{i}>"
        lines.append(f'{uri} <http://www.w3.org/2004/02/skos/core#prefLabel> "concept {i}"@fr .')
        if i:
            lines.append(
                f"{uri} <http://www.w3.org/2004/02/skos/core#broader> <http://example.org/c/{(i - 1) // 10}> ."
            )
    path = tmp_path / "big.nt"
    path.write_text("\n".join(lines), encoding="utf-8")
    with Thesaurus(tmp_path / "store") as store:
        result = store.load(path)
        assert result.concepts == 30_000
        assert len(store.expand("http://example.org/c/0", follow=())) == 30_000
        assert len(store.labels()) == 30_000
