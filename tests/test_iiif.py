"""Reading IIIF Presentation 2 and 3 documents into records, and Image API size negotiation."""

from __future__ import annotations

import json

import pytest

from monalia.errors import RecordError
from monalia.formats import iiif_presentation as iiif


def load(real_fixtures, name):
    return json.loads((real_fixtures / "iiif" / name).read_text(encoding="utf-8"))


def test_a_v2_museum_manifest_gives_its_label_metadata_and_image_services(real_fixtures):
    doc = load(real_fixtures, "v2/mirador_v2_299843.json")
    [record] = iiif.to_records(doc, languages=("en",))
    assert record.source_id == "https://iiif.harvardartmuseums.org/manifests/object/299843"
    assert record.title == "Self-Portrait Dedicated to Paul Gauguin"
    assert record.date == "1888" and record.date_start == 1888
    assert record.creators == ["Artist: Vincent van Gogh, Dutch, 1853 - 1890"]
    # `attribution` is a credit line, not the holding institution: no metadata pair names one
    assert doc["attribution"] == "Harvard Art Museums" and record.institution is None
    assert record.landing_page == "https://www.harvardartmuseums.org/collections/object/299843"
    assert len(record.images) == len(doc["sequences"][0]["canvases"])
    first = record.images[0]
    assert first.is_main and not any(image.is_main for image in record.images[1:])
    assert first.iiif_service == "https://ids.lib.harvard.edu/ids/iiif/47174896"
    assert record.raw == doc


def test_v2_license_and_attribution(real_fixtures):
    doc = load(real_fixtures, "v2/mirador_v2_BibliographicResource_3000126341277.json")
    [record] = iiif.to_records(doc)
    assert record.rights == "http://creativecommons.org/publicdomain/mark/1.0/"
    # the credit line names the library, but a credit line is not an institution field
    assert "National Library of Finland" in record.raw["attribution"]
    assert record.institution is None
    assert all(image.iiif_service for image in record.images)


def test_v3_language_maps_pick_the_preferred_language(real_fixtures):
    doc = load(real_fixtures, "v3/cookbook_0006-text-language_manifest.json")
    doc["id"] = "https://example.org/manifest"
    [english] = iiif.to_records(doc, languages=("en",))
    [french] = iiif.to_records(doc, languages=("fr",))
    assert english.title == "Whistler's Mother"
    assert french.title != english.title and french.title
    # subjects keep every language they are given in
    assert {(s.lang, s.field) for s in english.subjects} >= {("en", "Subject"), ("fr", "Subject")}


def test_v3_rights_choice_and_service(real_fixtures):
    rights = load(real_fixtures, "v3/cookbook_0008-rights_manifest.json")
    rights["id"] = "https://example.org/rights"
    [record] = iiif.to_records(rights)
    assert record.rights == "http://creativecommons.org/licenses/by-sa/3.0/"
    choice = load(real_fixtures, "v3/cookbook_0033-choice_manifest.json")
    choice["id"] = "https://example.org/choice"
    [record] = iiif.to_records(choice)
    # a choice body gives its first option (natural light), with that option's service
    assert [image.iiif_service for image in record.images] == [
        "https://iiif.io/api/image/3.0/example/reference/421e65be2ce95439b3ad6ef1f2ab87a9-dee-natural"
    ]


def test_one_record_per_canvas_where_configured(real_fixtures):
    doc = load(real_fixtures, "v3/cookbook_0009-book-1_manifest.json")
    doc = json.loads(
        json.dumps(doc)
        .replace("{{ id.url }}", "https://example.org/book/manifest.json")
        .replace("{{ id.path }}", "https://example.org/book")
    )
    records = iiif.to_records(doc, per="canvas", languages=("en",))
    assert len(records) == 5
    assert len({r.source_id for r in records}) == 5
    assert all(r.title.startswith("Simple Manifest - Book") for r in records)
    assert all(len(r.images) == 1 and r.images[0].is_main for r in records)


def test_collections_list_their_members(real_fixtures):
    v2 = load(real_fixtures, "v2/mirador_v2_collection.json")
    collections, manifests = iiif.members(v2)
    assert collections == [] and len(manifests) == len(v2["manifests"])
    v3 = load(real_fixtures, "v3/cookbook_0032-collection_collection.json")
    # the cookbook's members are templates, not URLs: each is a problem with its reason
    listed = iiif.listed_members(v3)
    assert listed.manifests == [] and [member for member, _ in listed.problems] == [
        "member 1 ({{ id.path }}/manifest-01.json)",
        "member 2 ({{ id.path }}/manifest-02.json)",
    ]


def test_every_shared_manifest_reads_without_error(real_fixtures):
    read = 0
    for path in sorted((real_fixtures / "iiif").glob("v*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if iiif.document_type(doc) == "Manifest":
            records = iiif.to_records(doc)
            assert records and records[0].title, path.name
            assert records[0].images, path.name
            read += 1
    assert read >= 10


def test_label_shapes():
    assert iiif.text_of("plain") == "plain"
    assert (
        iiif.text_of(
            [{"@value": "Titre", "@language": "fr"}, {"@value": "Title", "@language": "en"}],
            ("en",),
        )
        == "Title"
    )
    assert iiif.text_of({"fr-FR": ["Titre"], "de": ["Titel"]}, ("fr",)) == "Titre"
    assert iiif.text_of({"none": ["Sans langue"], "de": ["Titel"]}, ("en",)) == "Sans langue"
    assert iiif.text_of({"de": ["Titel"], "it": ["Titolo"]}, ("en",)) == "Titel"
    assert iiif.text_of('<span>Oil <a href="x">on</a> canvas</span>') == "Oil on canvas"
    assert iiif.text_of({"en": ["a", "b", "a"]}) == "a; b"
    assert iiif.text_of(None) is None and iiif.text_of({"en": []}) is None


@pytest.mark.parametrize(
    "doc, message",
    [
        ([], "a manifest is a JSON object"),
        ({"type": "Collection", "id": "x"}, "not a IIIF manifest"),
        ({"type": "Manifest"}, "has no id"),
    ],
)
def test_what_is_not_a_manifest_is_a_record_error(doc, message):
    with pytest.raises(RecordError, match=message):
        iiif.to_records(doc)


def test_size_negotiation_from_info_json(real_fixtures):
    info = load(real_fixtures, "image_info/metis_iiif_info_v2.json")
    # 3710x3088 in a 512 box is 512x426: the smallest listed size covering it is 928 wide
    assert iiif.size_from_info(info, 512, 512).endswith("/full/928,/0/default.jpg")
    assert iiif.size_from_info(info, 8000, 8000).endswith("/full/3710,/0/default.jpg")
    v3 = {
        "id": "https://x/s",
        "type": "ImageService3",
        "width": 100,
        "height": 50,
        "sizes": [{"width": 50, "height": 25}],
    }
    assert iiif.size_from_info(v3, 40, 40) == "https://x/s/full/50,25/0/default.jpg"
    assert (
        iiif.size_from_info({"@id": "https://x/t", "width": 9, "height": 9}, 5, 5)
        == "https://x/t/full/full/0/default.jpg"
    )
    assert iiif.image_request("https://x/s/", 512, 384) == "https://x/s/full/!512,384/0/default.jpg"


def test_dates_and_institution_come_from_the_metadata_labels_a_user_names(real_fixtures):
    doc = load(real_fixtures, "v2/mirador_v2_299843.json")
    doc["metadata"] += [
        {"label": "Holding Institution", "value": "Fogg Museum"},
        {"label": "Date Statement", "value": "ca. 1890"},
    ]
    [record] = iiif.to_records(doc)
    assert record.institution == "Fogg Museum" and record.date == "1888"
    [record] = iiif.to_records(
        doc,
        date_labels=frozenset({"date statement"}),
        institution_labels=frozenset({"credit line"}),
    )
    assert record.date == "ca. 1890" and record.date_start == 1890
    assert record.institution.startswith("Harvard Art Museums/Fogg Museum")


def test_a_collection_member_that_is_not_a_url_is_a_problem_not_a_crash():
    listed = iiif.listed_members(
        {
            "type": "Collection",
            "items": [
                {"id": "https://example.org/m/1", "type": "Manifest"},
                {"id": "{{ id.path }}", "type": "Manifest"},
                {"id": "m/3.json", "type": "Manifest"},
                {"type": "Manifest"},
                {"id": "https://example.org/c/2", "type": "Collection"},
                {"id": "https://example.org/m/4", "type": "Manifest"},
            ],
        }
    )
    assert listed.manifests == ["https://example.org/m/1", "https://example.org/m/4"]
    assert listed.collections == ["https://example.org/c/2"]
    assert [why for _, why in listed.problems] == [
        "the manifest id '{{ id.path }}' is not an absolute http(s) URL",
        "the manifest id 'm/3.json' is not an absolute http(s) URL",
        "the manifest has no id",
    ]
