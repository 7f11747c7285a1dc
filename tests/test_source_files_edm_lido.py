"""EDM and LIDO files: every real sample is a record with what it says or a failure with its
reason; broken links are repaired or dropped one by one; IRIs do not depend on where files lie;
large LIDO files stream; a ZIP dump reads like a folder."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from conftest import records_of
from sqlalchemy import select

from monalia.catalog.database import Catalog
from monalia.catalog.models import RunEventRow
from monalia.plugins.sources.edm import EdmFileSource
from monalia.plugins.sources.lido import LidoFileSource
from monalia.stages.harvest import harvest
from monalia.testing import check_source_contract, configure


def copy(real_fixtures: Path, kind: str, folder: Path) -> Path:
    shutil.copytree(real_fixtures / kind, folder)
    return folder


def events(catalog, run_id: int) -> list[tuple[str, str, str]]:
    with catalog.session() as session:
        return [
            (e.level, e.item, e.message)
            for e in session.scalars(select(RunEventRow).where(RunEventRow.run_id == run_id))
        ]


def test_every_edm_sample_is_a_record_with_what_it_says(real_fixtures, tmp_path):
    folder = copy(real_fixtures, "edm", tmp_path / "dump")
    result = check_source_contract(EdmFileSource, {"path": str(folder)}, tmp_path)
    assert result.records == 5
    records = records_of(result.catalog)
    painting = records["LIT_280_002"]
    assert painting.title == "Persian Envoys before the King of Ethiopia"
    assert painting.institution == "Lithuanian Art Museum"
    assert painting.rights == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert painting.images[0].url.startswith("https://www.dropbox.com/")
    assert {s.uri for s in painting.subjects} >= {"http://iconclass.org/61A"}
    letter = records["/12148/ivrla:3827"]  # Europeana's internal shape: read from its proxies
    assert letter.title.startswith("[Letter from John Henry Newman")
    assert letter.images[0].iiif_service == "https://iiif.ucd.ie/loris/ivrla:3828"
    # a subject pointing at a contextual skos:Concept keeps its URI and gains its label
    logic = next(s for s in letter.subjects if s.uri and "sh85078106" in s.uri)
    assert (logic.label, logic.lang) == ("Logic", "en")
    book = records["URN:NBN:SI:doc-35SZSOCF"]
    assert book.creators == ["Stanič, Valentin"] and book.date_start == 1826
    assert book.landing_page == "http://www.dlib.si/details/URN:NBN:SI:doc-35SZSOCF"


def test_a_broken_link_is_repaired_or_dropped_and_the_record_kept(real_fixtures, tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    text = (real_fixtures / "edm" / "europeana-cloud_lithuanian_art_museum.external.xml").read_text(
        encoding="utf-8"
    )
    text = text.replace("http://iconclass.org/61A", "http://iconclass.org/61 A")
    text = text.replace("https://www.limis.lt/", "javascript:alert(1)//www.limis.lt/", 1)
    (folder / "record.xml").write_text(text, encoding="utf-8")
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    run = harvest(catalog, configure(EdmFileSource, {"path": "dump"}, tmp_path, "edm"))
    assert (run.counts["new"], run.counts["failed"], run.warnings) == (1, 0, 2)
    [record] = records_of(catalog).values()
    assert "http://iconclass.org/61%20A" in {s.uri for s in record.subjects}
    assert record.landing_page is None  # not a web page: dropped, said so
    messages = [m for _, _, m in events(catalog, run.id)]
    assert any("holds characters an IRI cannot" in m for m in messages)
    assert any("not an http(s) URL; dropped" in m for m in messages)


def test_record_iris_do_not_depend_on_where_the_files_lie(real_fixtures, tmp_path):
    def iris(folder: Path, settings: dict) -> dict[str, str]:
        catalog = Catalog.open(f"sqlite:///{folder / 'c.sqlite'}")
        harvest(catalog, configure(EdmFileSource, {"path": "dump", **settings}, folder, "edm"))
        return {k: r.iri for k, r in records_of(catalog).items()}

    here, there = tmp_path / "a", tmp_path / "b" / "c"
    for folder in (here, there):
        copy(real_fixtures, "edm", folder / "dump")
    assert iris(here, {}) == iris(there, {})
    based = iris(tmp_path / "b", {"path": "c/dump", "base": "https://data.example.org/"})
    # a relative rdf:about resolves against the base setting, an absolute one stays
    assert based["CMC_HA/936"] == "https://data.example.org/CMC_HA/936"


def test_every_lido_sample_is_a_record_and_a_wrap_streams_record_by_record(real_fixtures, tmp_path):
    folder = copy(real_fixtures, "lido", tmp_path / "lido")
    result = check_source_contract(LidoFileSource, {"path": str(folder)}, tmp_path)
    assert result.records == 8  # six files, one of them a lidoWrap of three
    records = records_of(result.catalog)
    spring = records["DE-Mb112/lido-obj00154983"]
    assert spring.title == "Spring"  # English preferred; every title kept with its language
    assert ["it", "La Primavera"] in spring.raw["titles"]
    assert spring.creators == ["Botticelli, Sandro"]
    assert (spring.date_start, spring.date_end) == (1480, 1485)
    assert spring.institution == "Uffizi Gallery"
    assert spring.landing_page == "https://www.bildindex.de/document/obj00154983"
    assert spring.rights == "http://rightsstatements.org/vocab/NoC-OKLR/1.0/"
    # the largest representation of each resource set (1200 px, not the 350 px one)
    assert (
        next(i.url for i in spring.images)
        == "http://www.bildindex.de/bilder/d/fmp_gkka1982_01929_2l"
    )
    assert {"http://iconclass.org/23D42", "http://vocab.getty.edu/aat/300033618"} <= {
        s.uri for s in spring.subjects
    }
    token = records["DE-MUS-814819/18314033"]
    assert [i.url.rsplit("/", 1)[-1] for i in token.images] == ["vs_org.jpg", "rs_org.jpg"]
    digital = records["DE-MUS-276311/93855"]
    assert digital.images == []  # bare file names are not links: dropped, with a warning each
    assert "http://vocab.getty.edu/aat/300387395" in {s.uri for s in digital.subjects}


def test_a_lido_file_broken_half_way_keeps_the_records_before_the_break(real_fixtures, tmp_path):
    text = (real_fixtures / "lido" / "lido10_fotomarburg_fontana_del_moro.wrap3.xml").read_text(
        encoding="utf-8"
    )
    cut = text.index("<lido:lido>", text.index("<lido:lido>") + 1)  # inside the second record
    (tmp_path / "broken.xml").write_text(text[: cut + 400], encoding="utf-8")
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    run = harvest(catalog, configure(LidoFileSource, {"path": "broken.xml"}, tmp_path, "lido"))
    assert run.status == "done"
    assert (run.counts["seen"], run.counts["new"], run.counts["failed"]) == (2, 1, 1)
    [(_level, item, message)] = [e for e in events(catalog, run.id) if e[0] == "error"]
    assert item == "broken.xml after record 1" and "not well-formed XML" in message


def test_a_zip_dump_reads_like_a_folder(real_fixtures, tmp_path):
    with zipfile.ZipFile(tmp_path / "dump.zip", "w") as archive:
        for path in sorted((real_fixtures / "edm").glob("*.xml")):
            archive.write(path, f"records/{path.name}")
        archive.writestr("records/readme.txt", "not a record")
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    run = harvest(catalog, configure(EdmFileSource, {"path": "dump.zip"}, tmp_path, "edm"))
    assert (run.counts["new"], run.counts["failed"]) == (5, 0)
