"""Joconde in its three shapes: the Ministry's text format, the open-data CSV, JocondeLab SPARQL."""

from __future__ import annotations

import csv
import io

import pytest
from conftest import records_of
from sqlalchemy import select

from monalia.catalog.models import RunEventRow
from monalia.errors import RecordError
from monalia.plugins.sources.joconde import (
    JOCONDE_IMAGES,
    JocondeCsvSource,
    JocondeSparqlSource,
    JocondeTextSource,
    parse_notice_text,
    repr_terms,
)
from monalia.stages.harvest import HarvestOptions, harvest
from monalia.testing import check_source_contract, configure


def failures_of(catalog, run_id: int) -> list[tuple[str, str]]:
    with catalog.session() as session:
        return [
            (e.item, e.message)
            for e in session.scalars(select(RunEventRow).where(RunEventRow.run_id == run_id))
        ]


# -- REPR terms --------------------------------------------------------------------------------------


def test_repr_nested_terms_become_single_terms():
    assert repr_terms("scène (couple, chien) ; fond de paysage (colline, cours d'eau)") == [
        "scène",
        "couple",
        "chien",
        "fond de paysage",
        "colline",
        "cours d'eau",
    ]
    assert repr_terms("figure (femme, nu, debout)") == ["figure", "femme", "nu", "debout"]
    assert repr_terms("portrait (homme (buste), de face) ; Portrait") == [
        "portrait",
        "homme",
        "buste",
        "de face",
    ]
    assert repr_terms("vase (fleur") == ["vase", "fleur"]  # unbalanced: still every term once


# -- the Ministry's text format ---------------------------------------------------------------------


def test_real_ministry_file_is_harvested_with_its_fields(tmp_path, real_fixtures):
    path = real_fixtures / "joconde" / "pop_joconde-valid-UTF-8.txt"
    expected = path.read_bytes().count(b"\r\n//\r\n") + path.read_bytes().endswith(b"//")
    result = check_source_contract(
        JocondeTextSource, {"path": str(path)}, tmp_path, min_records=expected, expect_failed=0
    )
    assert result.records == expected
    rows = records_of(result.catalog)
    first = rows["01610014032"]  # REF keeps its leading zero
    assert first.creators == ["anonymesss (céramiste, artisan)"]
    assert first.institution == "Autun ; musée Rolin"
    assert first.description.startswith(
        "Fond de vaisselle en sigillée, type coupelle, à pied annulaire rapporté, estampille"
    )
    assert [i.url for i in first.images] == [
        "https://pop-perf-assets.s3.gra.io.cloud.ovh.net/joconde/01610014032/m016183_0016630_p.jpg",
        "https://pop-perf-assets.s3.gra.io.cloud.ovh.net/joconde/01610014032/m016183_0016631_p.jpg",
    ]
    assert [(s.field, s.label) for s in first.subjects if s.field == "DOMN"] == [
        ("DOMN", "archéologie"),
        ("DOMN", "céramique"),
        ("DOMN", "gallo-romain"),
    ]
    assert first.landing_page == "https://www.pop.culture.gouv.fr/notice/joconde/01610014032"
    assert first.raw["PDEC"].endswith("Anonyme Anonyme (inventeur) ; 1980 (invention du site)")


NOTICE = """REF\r
{ref}\r
TITR\r
{title}\r
AUTR\r
COROT Jean-Baptiste Camille ; anonyme\r
DOMN\r
peinture\r
REPR\r
scène (couple, chien) ; fond de paysage -\r
(colline, cours d'eau)\r
MILL\r
1850\r
REFIM\r
M5037_0001_P.JPG,DS1,,0001.JPG;M5037_0002_P.JPG,DS1,,0002.JPG\r
DMAJ\r
{dmaj}\r
//\r
"""


def write_notices(path, count: int, broken: bool = True) -> None:
    parts = [
        NOTICE.format(ref=f"000PE{i:06d}", title=f"Paysage {i}", dmaj=f"2020-01-{1 + i % 28:02d}")
        for i in range(count)
    ]
    if broken:
        parts.insert(
            2,
            "REF\r\n000PE999998\r\nthis line is no field\r\n//\r\n".replace(
                "REF\r\n000PE999998\r\n", "stray text\r\nREF\r\n000PE999998\r\n"
            ),
        )
        parts.insert(5, "TITR\r\nSans référence\r\n//\r\n")
        parts.append("REF\r\n000PE999999\r\nTITR\r\nCut off\r\n")  # no closing //
    path.write_bytes("".join(parts).encode("utf-8"))


def test_text_notices_continuations_refim_and_malformed_records(tmp_path):
    write_notices(tmp_path / "notices.txt", 12)
    result = check_source_contract(
        JocondeTextSource, {"path": "notices.txt"}, tmp_path, min_records=12, expect_failed=3
    )
    assert result.records == 12
    row = records_of(result.catalog)["000PE000003"]
    assert row.title == "Paysage 3" and row.date_start == 1850
    assert row.creators == ["COROT Jean-Baptiste Camille", "anonyme"]
    assert [s.label for s in row.subjects if s.field == "REPR"] == [
        "scène",
        "couple",
        "chien",
        "fond de paysage",
        "colline",
        "cours d'eau",
    ]
    assert len(row.images) == 2 and row.images[0].is_main
    failures = failures_of(result.catalog, result.first.id)
    messages = " | ".join(f"{item}: {message}" for item, message in failures)
    assert "holds 'stray text', not a field" in messages
    assert "the notice has no REF" in messages
    assert "REF 000PE999999" in messages and "no closing //" in messages


def test_text_since_keeps_only_notices_updated_since(tmp_path):
    write_notices(tmp_path / "notices.txt", 10, broken=False)
    from monalia.catalog.database import Catalog

    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    run = harvest(
        catalog,
        configure(JocondeTextSource, {"path": "notices.txt"}, tmp_path),
        options=HarvestOptions(since="2020-01-06"),
    )
    assert sorted(records_of(catalog)) == [f"000PE{i:06d}" for i in range(5, 10)]
    assert run.counts["new"] == 5


def test_text_field_errors_are_one_clear_line():
    with pytest.raises(RecordError, match="field TITR appears twice"):
        parse_notice_text("REF\nA1\nTITR\nx\nTITR\ny\n")
    with pytest.raises(RecordError, match="field TITR has no value"):
        parse_notice_text("REF\nA1\nTITR\n")


# -- the open-data CSV --------------------------------------------------------------------------------


def write_open_data_csv(path, count: int) -> None:
    """The export's layout: BOM, `;` separators, label headers, `;` inside quoted fields."""
    header = [
        "Référence",
        "Titre",
        "Auteur",
        "Domaine",
        "Sujet représenté",
        "Millésime de création",
        "Localisation",
        "Adresse image",
        "Date de mise à jour",
        "Inscriptions",
    ]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for i in range(count):
        writer.writerow(
            [
                f"0{i:010d}",
                f"Nature morte {i}",
                "CHARDIN Jean Siméon ; anonyme",
                "peinture ; dessin",
                "nature morte (fruit, vase) ; fleur",
                "1750",
                "Paris ; musée du Louvre",
                f"joconde/0{i:010d}/img{i}.jpg",
                "2021-03-04",
                "signé ; daté\r\nau revers",  # a field with ; and a line break inside
            ]
        )
    writer.writerow(["0999", "short row"])  # malformed: too few columns
    path.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))


def test_open_data_csv_with_bom_semicolons_and_multi_values(tmp_path):
    write_open_data_csv(tmp_path / "base-joconde-extrait.csv", 20)
    result = check_source_contract(
        JocondeCsvSource,
        {"path": "base-joconde-extrait.csv"},
        tmp_path,
        min_records=20,
        expect_failed=1,
    )
    row = records_of(result.catalog)["00000000007"]
    assert row.creators == ["CHARDIN Jean Siméon", "anonyme"]
    assert [s.label for s in row.subjects if s.field == "DOMN"] == ["peinture", "dessin"]
    assert [s.label for s in row.subjects if s.field == "REPR"] == [
        "nature morte",
        "fruit",
        "vase",
        "fleur",
    ]
    assert row.images[0].url.endswith("/joconde/00000000007/img7.jpg")
    ((item, message),) = failures_of(result.catalog, result.first.id)
    assert "2 columns where the header has 10" in message and item.startswith("row ")


def test_open_data_csv_column_mapping_is_checked(tmp_path):
    write_open_data_csv(tmp_path / "x.csv", 1)
    from monalia.catalog.database import Catalog
    from monalia.errors import SourceUnavailable

    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(
        JocondeCsvSource, {"path": "x.csv", "columns": {"TITR": "Nom"}}, tmp_path
    )
    with pytest.raises(SourceUnavailable, match="column 'Nom' \\(for TITR\\) is not in the header"):
        harvest(catalog, configured)


# -- JocondeLab over SPARQL ----------------------------------------------------------------------------


def monalia_classes(real_fixtures) -> list[tuple[str, str]]:
    path = real_fixtures / "thesaurus" / "joconde_REPR_T523_concepts_from_monalia.csv"
    with path.open(encoding="utf-8") as handle:
        # two classes (de face, de profil) have no T523 URI in MonaLIA's table
        return [
            (row["prefLabel_fr"], row["concept_uri"])
            for row in csv.DictReader(handle)
            if row["concept_uri"].startswith("http")
        ]


def jocondelab_turtle(real_fixtures) -> tuple[str, dict[str, dict]]:
    """JocondeLab-shaped Turtle for MonaLIA's real result rows, with real T523 terms."""
    classes = monalia_classes(real_fixtures)
    path = real_fixtures / "joconde" / "monalia_notebook_sparql_result_rows.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    lines = [
        "@prefix jcl: <http://jocondelab.iri-research.org/ns/jocondelab/> .",
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
    ]
    for label, uri in classes:
        lines.append(f'<{uri}> a jcl:Term ; skos:prefLabel "{label}"@fr .')
    expected: dict[str, dict] = {}
    for i, row in enumerate(rows):
        ref = row["ref"]
        image = row["imagePath"] or row["image_path"]
        a, b, c = (classes[(i * 7 + k) % len(classes)] for k in (0, 1, 2))
        repr_text = row["repr"] if row["repr"] not in ("", "None") else f"{a[0]} ({b[0]}, {c[0]})"
        term_uris = sorted({a[1], b[1], c[1]})
        notice = f"<https://jocondelab.iri-research.org/data/notice/{ref}>"
        lines.append(
            f'{notice} a jcl:Notice ; jcl:noticeRef "{ref}" ; '
            f'jcl:noticeRepr "{repr_text}" ; jcl:noticeHasImage {"true" if image else "false"} ; '
            + "".join(f"jcl:noticeReprTerm <{u}> ; " for u in term_uris)
            + (f'jcl:noticeDomn "{row["domain"]}" ; ' if row["domain"] else "")
            + (
                f'jcl:noticeImage [ a jcl:NoticeImage ; jcl:noticeImagePath "{image}" ; '
                "jcl:noticeImageIsMain true ] ; "
                if image
                else ""
            )
            + f'jcl:noticeTitr "Notice {ref}" .'
        )
        if image:
            expected[ref] = {
                "repr": repr_terms(repr_text),
                "terms": term_uris,
                "image": JOCONDE_IMAGES + image.lstrip("/"),
                "domain": row["domain"],
            }
    return "\n".join(lines) + "\n", expected


def test_jocondelab_notices_over_sparql(tmp_path, real_fixtures, oxigraph):
    turtle, expected = jocondelab_turtle(real_fixtures)
    oxigraph.load(turtle, "text/turtle")
    settings = {"endpoint": oxigraph.query_url, "page_size": 10}
    result = check_source_contract(
        JocondeSparqlSource, settings, tmp_path, min_records=len(expected), expect_failed=0
    )
    rows = records_of(result.catalog)
    assert sorted(rows) == sorted(expected)  # every notice with an image, none without
    for ref, want in expected.items():
        row = rows[ref]
        assert row.iri == f"https://jocondelab.iri-research.org/data/notice/{ref}"
        assert [i.url for i in row.images] == [want["image"]]
        assert sorted(s.uri for s in row.subjects if s.field == "REPR") == want["terms"]
        assert all(s.label for s in row.subjects if s.field == "REPR")  # prefLabels came along
        assert [s.label for s in row.subjects if s.field == "REPR_text"] == want["repr"]


def test_jocondelab_domain_filter_is_bound_not_formatted(tmp_path, real_fixtures, oxigraph):
    turtle, expected = jocondelab_turtle(real_fixtures)
    oxigraph.load(turtle, "text/turtle")
    from monalia.catalog.database import Catalog

    def refs_for(domain: str) -> set[str]:
        catalog = Catalog.open(f"sqlite:///{tmp_path / (str(abs(hash(domain))) + '.sqlite')}")
        settings = {"endpoint": oxigraph.query_url, "domain": domain}
        harvest(catalog, configure(JocondeSparqlSource, settings, tmp_path))
        return set(records_of(catalog))

    assert refs_for("Dessin") == {r for r, w in expected.items() if "dessin" in w["domain"]}
    assert refs_for('dessin" } UNION { ?item ?p ?o } #') == set()
    assert refs_for("l'{ouvrage}\\ \n") == set()


def test_dry_run_counts_without_writing(tmp_path, cli):
    write_notices(tmp_path / "notices.txt", 12)
    (tmp_path / "monalia.toml").write_text(
        '[project]\ncatalog = "sqlite:///c.sqlite"\n\n'
        '[sources.joconde]\nplugin = "joconde-text"\npath = "notices.txt"\n'
    )
    dry = cli("harvest", "--dry-run", project=tmp_path)
    assert dry.exit_code == 0, dry.output
    assert "12 new, 0 changed, 0 unchanged, 3 failed" in dry.output
    assert "would skip line" in dry.output and "the notice has no REF" in dry.output
    from monalia.catalog.database import Catalog

    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    assert records_of(catalog) == {}
    with catalog.engine.connect() as connection:
        assert connection.exec_driver_sql("select count(*) from runs").scalar() == 0
    assert cli("harvest", project=tmp_path).exit_code == 0
    again = cli("harvest", "--dry-run", project=tmp_path)
    assert "0 new, 0 changed, 12 unchanged, 3 failed" in again.output
