"""The SKOS labeler: classes by IRI or label, expansion, exclusions, links, matching subjects."""

from __future__ import annotations

import pytest
from support.skos_data import (
    ANIMAL,
    CROSS_OBJECT,
    DOG,
    HORSE,
    HUMAN,
    IC_FOAL,
    ICONCLASS_NT,
    LINKS_CSV,
    MILITARY,
    OAK,
    RIDER,
    SOLDIER,
    THESAURUS_TTL,
    TREE,
    UNICORN,
)

from monalia import Subject
from monalia.api.labeler import ClassRequest
from monalia.api.plugin import PluginContext
from monalia.errors import ConfigError
from monalia.plugins.labelers.skos import SkosLabeler
from monalia.rdf.thesaurus import Thesaurus


@pytest.fixture
def store(tmp_path):
    (tmp_path / "garnier.ttl").write_text(THESAURUS_TTL, encoding="utf-8")
    (tmp_path / "iconclass.nt").write_text(ICONCLASS_NT, encoding="utf-8")
    (tmp_path / "links.csv").write_text(LINKS_CSV, encoding="utf-8")
    with Thesaurus() as thesaurus:
        thesaurus.load(tmp_path / "garnier.ttl")
        thesaurus.load(tmp_path / "iconclass.nt")
        yield thesaurus


def labeler(tmp_path, **settings) -> SkosLabeler:
    return SkosLabeler(
        SkosLabeler.Settings(**settings), PluginContext("labeler", project_dir=tmp_path)
    )


def request(*targets: str, language: str = "fr", schemes: tuple[str, ...] = ()) -> ClassRequest:
    return ClassRequest(tuple(targets), language, schemes)


def test_classes_by_iri_or_label_in_the_requested_order(store, tmp_path):
    classes = labeler(tmp_path).prepare(store, request("cheval", TREE, "Être Humain"))
    assert [(c.uri, c.label) for c in classes] == [
        (HORSE, "cheval"),
        (TREE, "arbre"),
        (HUMAN, "être humain"),
    ]
    assert [c.concepts for c in classes] == [4, 2, 1]


def test_a_label_in_another_language_resolves_in_that_language(store, tmp_path):
    (target,) = labeler(tmp_path).prepare(
        store,
        request(
            "Horse",
            language="en",
            schemes=("http://data.culture.fr/thesaurus/resource/ark:/67717/T523",),
        ),
    )
    assert target.uri == HORSE and target.label == "horse"


def test_an_unknown_class_label_is_a_clear_error_with_a_suggestion(store, tmp_path):
    with pytest.raises(ConfigError) as error:
        labeler(tmp_path).prepare(store, request("cheval", "chevall"))
    assert "unknown class label 'chevall'" in error.value.message
    assert "did you mean 'cheval'" in error.value.message


def test_an_ambiguous_label_names_its_concepts_and_an_unknown_iri_is_refused(store, tmp_path):
    with pytest.raises(ConfigError, match="names 2 concepts") as error:
        labeler(tmp_path).prepare(store, request("croix"))
    assert CROSS_OBJECT in error.value.message and "Give the IRI" in error.value.message
    (target,) = labeler(tmp_path).prepare(store, request(CROSS_OBJECT))
    assert target.uri == CROSS_OBJECT
    with pytest.raises(ConfigError, match="is not a concept of the loaded thesaurus"):
        labeler(tmp_path).prepare(store, request("http://example.org/nothing"))
    with pytest.raises(ConfigError, match="same concept"):
        labeler(tmp_path).prepare(store, request("cheval", HORSE))


def test_exclusions_related_and_curated_links_shape_the_expansion(store, tmp_path):
    plain = labeler(tmp_path)
    plain.prepare(store, request("animal", "être humain", "cavalier"))
    assert UNICORN in plain.expansions[ANIMAL]
    assert plain.expansions[HUMAN] == {HUMAN}
    assert plain.expansions[RIDER] == {RIDER}

    shaped = labeler(tmp_path, exclude=["animal fantastique"], related=True, links=["links.csv"])
    shaped.prepare(store, request("animal", "être humain", "cavalier"))
    assert UNICORN not in shaped.expansions[ANIMAL] and DOG in shaped.expansions[ANIMAL]
    assert shaped.expansions[HUMAN] == {HUMAN, MILITARY, SOLDIER}, "the CSV link is followed"
    assert HORSE in shaped.expansions[RIDER], "related, then narrower"
    assert shaped.links == 2
    # the row naming an unknown label is reported, not fatal
    assert len(shaped.warnings) == 1 and "row 5" in shaped.warnings[0]
    assert "nobody knows this" in shaped.warnings[0]


def test_the_shipped_joconde_mapping_adds_monalias_missing_link(store, tmp_path):
    shaped = labeler(tmp_path, related=True, links=["builtin:mappings/joconde-monalia.csv"])
    shaped.prepare(store, request("être humain"))
    assert SOLDIER in shaped.expansions[HUMAN]
    with pytest.raises(ConfigError, match="ships no such file"):
        labeler(tmp_path, links=["builtin:nothing.csv"]).prepare(store, request("arbre"))


def test_subjects_match_by_uri_or_by_label_and_unmatched_ones_are_counted(store, tmp_path):
    skos = labeler(tmp_path)
    classes = skos.prepare(store, request("cheval", "arbre"))
    records = [
        (1, [Subject(uri=HORSE, label="cheval", field="REPR")]),
        (2, [Subject(label="  CHÊNE ", lang="fr-FR", field="REPR_text")]),
        (3, [Subject(uri=IC_FOAL, field="iconclass")]),
        (4, [Subject(label="Poulain", field="REPR_text"), Subject(label="arbre")]),
        (5, [Subject(label="chevaux")]),
        (6, [Subject(label="chien"), Subject(label="paysage nocturne", field="REPR_text")]),
        (7, [Subject(label="paysage nocturne", field="REPR_text")]),
        (8, []),
        (9, [Subject(uri="http://example.org/unknown", label="cheval")]),
    ]
    result = skos.label(classes, records)
    assert result.assignments == {
        1: {HORSE},
        2: {TREE},
        3: {HORSE},
        4: {HORSE, TREE},
        5: {HORSE},
        9: {HORSE},
    }
    assert result.unmatched == {("REPR_text", "paysage nocturne"): 2}
    assert result.records_without_class == {6, 7}, "chien is known but in no class"
    assert result.records_seen == 9 and result.records_with_subjects == 8
    assert result.per_class() == {HORSE: 5, TREE: 2}


def test_fields_and_label_matching_can_be_restricted(store, tmp_path):
    skos = labeler(tmp_path, fields=["REPR"], match_labels=False)
    classes = skos.prepare(store, request("cheval", OAK))
    result = skos.label(
        classes,
        [
            (1, [Subject(uri=HORSE, field="REPR")]),
            (2, [Subject(uri=HORSE, field="DOMN")]),
            (3, [Subject(label="chêne", field="REPR")]),
        ],
    )
    assert result.assignments == {1: {HORSE}}
    assert result.unmatched == {("REPR", "chêne"): 1}


def test_a_homonym_in_subjects_is_counted_as_ambiguous(store, tmp_path):
    skos = labeler(tmp_path)
    classes = skos.prepare(store, request(CROSS_OBJECT, "cheval"))
    result = skos.label(classes, [(1, [Subject(label="croix", field="REPR")])])
    assert result.assignments == {1: {CROSS_OBJECT}}
    assert result.ambiguous == {("REPR", "croix"): 1}


def test_a_mapping_file_brings_another_vocabulary_onto_the_same_classes(store, tmp_path):
    behance_dog = "http://ns.inria.fr/monalia/bam/content_dog"
    (tmp_path / "behance.csv").write_text(
        f"subject,property,object\n{behance_dog},exactMatch,chien\n", encoding="utf-8"
    )
    (tmp_path / "aat.ttl").write_text(
        "<http://vocab.getty.edu/aat/300250148> "
        f"<http://www.w3.org/2004/02/skos/core#closeMatch> <{HORSE}> .\n",
        encoding="utf-8",
    )
    skos = labeler(tmp_path, links=["behance.csv", "aat.ttl"])
    classes = skos.prepare(store, request("chien", "cheval"))
    result = skos.label(
        classes,
        [
            (1, [Subject(uri=behance_dog, field="automatic")]),
            (2, [Subject(uri="http://vocab.getty.edu/aat/300250148")]),
        ],
    )
    assert result.assignments == {1: {DOG}, 2: {HORSE}}
    assert not result.unmatched
