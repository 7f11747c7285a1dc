"""Harvesting OAI-PMH: real responses served page by page by a local repository, with
resumption tokens, deleted records, errors, incremental runs, every shipped metadata format, a
format added by a package, and a harvest killed mid-list."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import records_of
from sqlalchemy import create_engine, select, text
from support.oai_server import OaiServer, fixture, list_records, record_elements

from monalia.api import registry as registry_module
from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow, RunEventRow
from monalia.plugins.sources.oai_pmh import OaiPmhSource
from monalia.stages.harvest import HarvestOptions, dry_run, harvest
from monalia.testing import configure


def adds_up(run) -> bool:
    c = run.counts
    return c["seen"] == c["new"] + c["changed"] + c["unchanged"] + c["failed"]


def source(tmp_path, server: OaiServer, **settings):
    return configure(
        OaiPmhSource,
        {"url": server.endpoint, "http": {"retries": 1, "backoff": 0.01, "timeout": 5}, **settings},
        tmp_path,
        "repository",
    )


@pytest.fixture
def catalog(tmp_path):
    return Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}")


def test_a_list_of_four_pages_is_harvested_record_by_record(tmp_path, catalog):
    with OaiServer() as server:
        configured = source(tmp_path, server)
        preview = dry_run(catalog, configured)
        run = harvest(catalog, configured)
    assert run.status == "done" and adds_up(run)
    # 8 records: 4 with metadata, 3 deletions of records never harvested (nothing to mark),
    # and 1 deleted header without an identifier: a failure with its reason
    assert {k: run.counts[k] for k in ("seen", "new", "unchanged", "failed")} == {
        "seen": 8,
        "new": 4,
        "unchanged": 3,
        "failed": 1,
    }
    assert preview["counts"] == run.counts
    tokens = [r.get("resumptionToken") for r in server.requests if r.get("verb") == "ListRecords"]
    # the dry run read the list once, the harvest once more
    assert tokens == [None, "ListRecords2.xml", "ListRecords3.xml", "ListRecords4.xml"] * 2
    records = records_of(catalog)
    assert sorted(records) == [f"oai:test.example.com:p{n}-1585322" for n in range(1, 5)]
    record = records["oai:test.example.com:p1-1585322"]
    assert record.title == "Sample Title" and record.creators == ["John Doe"]
    assert record.landing_page == "http://test.example.com/publication/1585322"
    assert record.modified == "2011-01-10T10:19:23Z"
    with catalog.session() as session:
        [event] = session.scalars(select(RunEventRow)).all()
    assert event.item == "page 4 record 1" and "no identifier (a deleted record)" in event.message


def live(identifier: str, title: str, datestamp: str = "2026-01-01") -> bytes:
    return (
        f"<record><header><identifier>{identifier}</identifier>"
        f"<datestamp>{datestamp}</datestamp></header><metadata>"
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{title}</dc:title><dc:subject>horse</dc:subject>"
        f"<dc:identifier>https://museum.example.org/{identifier}/image.jpg</dc:identifier>"
        "</oai_dc:dc></metadata></record>"
    ).encode()


def deleted(identifier: str, datestamp: str = "2026-02-01") -> bytes:
    return (
        f'<record><header status="deleted"><identifier>{identifier}</identifier>'
        f"<datestamp>{datestamp}</datestamp></header></record>"
    ).encode()


def test_an_incremental_run_asks_from_the_last_response_date_and_marks_deletions(
    tmp_path, catalog, cli
):
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "catalog.sqlite"}"\n'
        '[sources.repository]\nplugin = "oai-pmh"\nurl = "URL"\n'
        '[sinks.files]\nplugin = "turtle"\npath = "out/{graph}.ttl"\n',
        encoding="utf-8",
    )
    with OaiServer({None: list_records([live("a", "Horse"), live("b", "Ship")])}) as server:
        project_file = tmp_path / "monalia.toml"
        project_file.write_text(project_file.read_text().replace("URL", server.endpoint))
        assert cli("harvest", project=tmp_path).exit_code == 0
        assert cli("publish", project=tmp_path).exit_code == 0
        published = "".join(p.read_text() for p in (tmp_path / "out").glob("*.ttl"))
        assert "Horse" in published and "Ship" in published
        server.pages = {
            None: list_records([deleted("a"), live("c", "Tree")], date="2026-12-01T08:00:00Z")
        }
        second = cli("harvest", project=tmp_path)
        assert second.exit_code == 0, second.output
        assert cli("publish", project=tmp_path).exit_code == 0
    first_list, second_list = [r for r in server.requests if r.get("verb") == "ListRecords"]
    assert "from" not in first_list
    # the repository says YYYY-MM-DD (Identify): the bookmark goes at day granularity
    assert second_list["from"] == "2026-11-30"
    with catalog.session() as session:
        rows = {r.source_id: r for r in session.scalars(select(RecordRow))}
    assert rows["a"].deleted_at is not None and rows["a"].title == "Horse"  # kept, marked
    assert rows["b"].deleted_at is None and rows["c"].deleted_at is None
    published = "".join(p.read_text() for p in (tmp_path / "out").glob("*.ttl"))
    assert "Horse" not in published and "Ship" in published and "Tree" in published
    assert "1 changed" in second.output or "changed" in second.output


def test_no_records_match_is_an_empty_harvest_not_a_failure(tmp_path, catalog):
    with OaiServer({None: fixture("sickle_error_noRecordsMatch.xml")}) as server:
        run = harvest(catalog, source(tmp_path, server, set="nothing-here"))
    assert run.status == "done" and run.counts["seen"] == 0


def test_an_oai_error_fails_the_run_with_its_code(tmp_path, catalog):
    body = fixture("sickle_error_noRecordsMatch.xml").replace(
        b'code="noRecordsMatch"', b'code="cannotDisseminateFormat"'
    )
    with OaiServer({None: body}) as server:
        with pytest.raises(Exception, match="cannotDisseminateFormat"):
            harvest(catalog, source(tmp_path, server, metadata_prefix="oai_dc"))


def test_an_expired_token_on_resume_reads_the_list_again_and_loses_nothing(tmp_path, catalog):
    with OaiServer() as server:
        configured = source(tmp_path, server)
        first = harvest(catalog, configured, options=HarvestOptions(limit=3))
        assert first.message.startswith("stopped at --limit 3")
        # the repository forgot the token the checkpoint holds
        server.pages = {
            None if token is None else f"new-{token}": body.replace(
                b">ListRecords", b">new-ListRecords"
            )
            for token, body in server.pages.items()
        }
        second = harvest(catalog, configured)
    assert second.status == "done" and adds_up(second)
    assert sorted(records_of(catalog)) == [
        f"oai:test.example.com:p{n}-1585322" for n in range(1, 5)
    ]


def test_lido_edm_and_dublin_core_lists_as_repositories_serve_them(tmp_path, catalog):
    kenom = fixture("kenom_ListRecords_lido_page1.cut3.xml")
    europeana = record_elements(fixture("europeana_GetRecord_edm_92062.xml"))
    erasmus = fixture("pyoai_erasmus_ListRecords_oai_dc_complete.xml")
    import re

    token = re.search(rb"<resumptionToken[^>]*>([^<]+)<", kenom).group(1).decode()
    pages = {None: kenom, token: list_records([])}
    with OaiServer(pages) as server:
        run = harvest(catalog, source(tmp_path, server, metadata_prefix="lido"))
        assert (run.status, run.counts["new"], run.counts["failed"]) == ("done", 3, 0)
        server.pages = {None: list_records(europeana)}
        edm_source = configure(
            OaiPmhSource, {"url": server.endpoint, "metadata_prefix": "edm"}, tmp_path, "europeana"
        )
        assert harvest(catalog, edm_source).counts["new"] == 1
        server.pages = {None: erasmus}
        dc_source = configure(OaiPmhSource, {"url": server.endpoint}, tmp_path, "erasmus")
        dc_run = harvest(catalog, dc_source)
    records = records_of(catalog)
    note = (
        records["oai:kenom.de:record_DE-68_kenom_123644"]
        if "oai:kenom.de:record_DE-68_kenom_123644" in records
        else next(r for k, r in records.items() if k.endswith("record_DE-68_kenom_123644"))
    )
    assert note.title == "Geldschein / Notgeld, 50 Pfennig, 7.1921"
    assert (note.date_start, note.institution) == (1921, "Schleswig-Holsteinische Landesbibliothek")
    assert "Druckerei W. Clausen <Büsum>" in note.creators
    assert {s.uri for s in note.subjects} >= {"http://d-nb.info/gnd/4180639-6"}
    # one image per resourceSet (obverse, reverse), each an IIIF Image API request
    assert [i.iiif_service for i in note.images] == [
        "https://www.kenom.de/iiif/image/record_DE-68_kenom_123644/record_DE-68_kenom_123644_vs.jpg",
        "https://www.kenom.de/iiif/image/record_DE-68_kenom_123644/record_DE-68_kenom_123644_rs.jpg",
    ]
    portrait = next(r for r in records.values() if r.raw.get("id", "").endswith("1000126015451"))
    assert portrait.title == "Pyrker-Oberwart, Johann Ladislaus"
    assert portrait.iri == "http://data.europeana.eu/item/92062/BibliographicResource_1000126015451"
    assert portrait.institution == "Österreichische Nationalbibliothek - Austrian National Library"
    assert portrait.images[0].url == "http://www.bildarchivaustria.at/Preview/3480072.jpg"
    assert any(s.uri == "http://data.europeana.eu/concept/base/106" for s in portrait.subjects)
    assert dc_run.status == "done" and dc_run.counts["new"] == erasmus.count(b"<record>")
    assert all(r.title for r in records.values() if r.source_id.startswith("hdl:"))


def test_a_package_adds_a_metadata_format(tmp_path, catalog, monkeypatch):
    from monalia import hookimpl
    from monalia.api.metadata_format import MetadataFormat
    from monalia.api.records import Record

    class Catalogue(MetadataFormat):
        name = "museum_xml"

        def read(self, element, options):
            return [Record(source_id=options.identifier, title=element.findtext("{urn:m}name"))]

    class Package:
        @hookimpl
        def register_metadata_formats(self):
            return [Catalogue]

    manager = registry_module.get_plugin_manager()
    manager.register(Package())
    monkeypatch.setattr(
        registry_module, "_default_registry", registry_module.PluginRegistry(manager)
    )
    page = list_records(
        [
            b"<record><header><identifier>m1</identifier><datestamp>2026-01-01</datestamp>"
            b'</header><metadata><object xmlns="urn:m"><name>Vase</name></object></metadata>'
            b"</record>"
        ]
    )
    with OaiServer({None: page}) as server:
        run = harvest(catalog, source(tmp_path, server, metadata_prefix="museum_xml"))
        assert run.counts["new"] == 1 and records_of(catalog)["m1"].title == "Vase"
        with pytest.raises(Exception, match="no metadata format reads metadata_prefix 'mods'"):
            harvest(catalog, source(tmp_path, server, metadata_prefix="mods"))


def many_pages(pages: int, per_page: int) -> dict[str | None, bytes]:
    served: dict[str | None, bytes] = {}
    for page in range(pages):
        records = [live(f"r{page:03d}-{n:02d}", f"Object {page}.{n}") for n in range(per_page)]
        token = f"page-{page + 1}" if page + 1 < pages else None
        served[None if page == 0 else f"page-{page}"] = list_records(records, token)
    return served


@pytest.mark.slow
def test_a_harvest_killed_mid_list_resumes_to_what_an_uninterrupted_run_stores(tmp_path):
    pages, per_page = 30, 20

    class SlowServer(OaiServer):
        def answer(self, path, params):
            time.sleep(0.15)  # a slow repository: the kills fall between pages and inside them
            return super().answer(path, params)

    with SlowServer(many_pages(pages, per_page)) as server:
        for name in ("killed", "whole"):
            folder = tmp_path / name
            folder.mkdir()
            (folder / "monalia.toml").write_text(
                f'[project]\ncatalog = "sqlite:///{folder / "c.sqlite"}"\n'
                "[harvest]\ncommit_seconds = 0.3\n"
                f'[sources.repository]\nplugin = "oai-pmh"\nurl = "{server.endpoint}"\n'
                'granularity = "day"\n',
                encoding="utf-8",
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
        command = [sys.executable, "-m", "monalia", "-q", "--project"]
        engine = create_engine(f"sqlite:///{tmp_path / 'killed' / 'c.sqlite'}")
        for kill_at in (60, 250, 400):  # records stored when the harvest is killed
            process = subprocess.Popen(
                [*command, str(tmp_path / "killed"), "harvest"], env=env, stdout=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    with engine.connect() as connection:
                        stored = connection.execute(text("select count(*) from records")).scalar()
                except Exception:
                    stored = 0
                if stored >= kill_at:
                    break
            process.send_signal(signal.SIGKILL)
            process.wait()
        engine.dispose()
        for name in ("killed", "whole"):
            done = subprocess.run(
                [*command, str(tmp_path / name), "harvest"], env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
    killed = Catalog.open(f"sqlite:///{tmp_path / 'killed' / 'c.sqlite'}")
    whole = Catalog.open(f"sqlite:///{tmp_path / 'whole' / 'c.sqlite'}")

    def stored(catalog):
        with catalog.session() as session:
            return dict(session.execute(select(RecordRow.source_id, RecordRow.content_hash)).all())

    assert stored(killed) == stored(whole) and len(stored(whole)) == pages * per_page
    from monalia.catalog.models import RunRow

    with killed.session() as session:
        runs = session.scalars(select(RunRow).order_by(RunRow.id)).all()
    assert [r.status for r in runs] == ["interrupted"] * 3 + ["done"]
    # each run counted what it stored, nothing twice: together, every record once
    assert sum(r.new for r in runs) == pages * per_page
    assert all(r.seen == r.new + r.changed + r.unchanged + r.failed for r in runs)


def test_a_repository_refusing_its_own_token_fails_the_run_instead_of_looping(tmp_path, catalog):
    first = fixture("sickle_ListRecords_oai_dc_page1.xml")  # its token is never served
    with OaiServer({None: first}) as server:
        with pytest.raises(Exception, match=r"badResumptionToken|BadResumptionToken|invalid"):
            harvest(catalog, source(tmp_path, server))
    first_pages = [r for r in server.requests if r.get("verb") == "ListRecords"]
    assert len(first_pages) == 4  # the list, its token, the list once more, its token again


def test_an_ordinary_page_is_read_ahead_from_its_text_and_anything_else_is_parsed():
    """The next page is asked for with the token read from the page's end, without parsing it
    (the parsing process parses it once); any page that is not plainly an ordinary one is
    parsed whole before the next request."""
    from monalia.formats.oai_protocol import PageFacts, page_facts

    records = [live(f"r{n}", f"Object {n}") for n in range(3)]
    assert page_facts(list_records(records, "next-1")) == PageFacts(
        "next-1", "2026-11-30T12:00:00Z"
    )
    assert page_facts(list_records(records)) == PageFacts(None, "2026-11-30T12:00:00Z")
    prefixed = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<oai:OAI-PMH xmlns:oai="http://www.openarchives'
        b'.org/OAI/2.0/">\n  <oai:responseDate> 2026-01-02 </oai:responseDate>\n'
        b"  <oai:request>x</oai:request><oai:ListRecords>"
        + records[0].replace(b"<record>", b"<oai:record>").replace(b"</record>", b"</oai:record>")
        + b'\n<oai:resumptionToken completeListSize="9" cursor="0"> tok </oai:resumptionToken>'
        b"\n</oai:ListRecords>\n</oai:OAI-PMH>\n"
    )
    assert page_facts(prefixed) == PageFacts("tok", "2026-01-02")
    parsed_whole = {
        "an error": fixture("sickle_error_badResumptionToken.xml"),
        "a token with an entity": list_records(records, "a&amp;b"),
        "a token in CDATA": list_records(records, "<![CDATA[x]]>"),
        "a comment after the last record": list_records(records, "t").replace(
            b"</record><resumptionToken>", b"</record><!-- x --><resumptionToken>"
        ),
        "another encoding": list_records(records, "t").replace(b"UTF-8", b"ISO-8859-1"),
        "a page cut short": list_records(records, "t")[:-40],
        "an empty list": list_records([], "t"),
    }
    for what, page in parsed_whole.items():
        assert page_facts(page) is None, what


def test_a_page_cut_short_inside_its_xml_is_asked_for_again(tmp_path, catalog):
    from support.oai_server import XML
    from support.servers import Reply

    with OaiServer(many_pages(3, 5)) as server:
        page = server.pages["page-1"]
        server.fail_next(Reply(200, server.pages[None], XML))  # the first page, whole
        # the second: whole as HTTP sees it (its length announced), cut short as XML
        server.fail_next(Reply(200, page[: len(page) // 2], XML))
        run = harvest(catalog, source(tmp_path, server), options=HarvestOptions(commit_records=5))
        assert run.status == "done" and run.counts["new"] == 15
    tokens = [dict(seen.params).get("resumptionToken") for seen in server.seen]
    assert tokens == [None, "page-1", "page-1", "page-2"]


@pytest.mark.parametrize("parse_in_worker", [True, False])
def test_a_page_whose_parse_does_not_say_what_its_text_did_fails_the_run_loudly(
    tmp_path, catalog, parse_in_worker
):
    """A page that reads as an ordinary one from its ends but parses as something else (another
    namespace, broken XML between its records) fails the run after the pages before it; no
    page is left out quietly."""
    served = many_pages(4, 5)
    served["page-2"] = served["page-2"].replace(
        b"http://www.openarchives.org/OAI/2.0/", b"urn:another"
    )
    served["page-3"] = served["page-3"].replace(b"Object 3.1<", b"Object 3 & 1<")
    options = HarvestOptions(commit_records=5, parse_in_worker=parse_in_worker)
    listed = [f"r{page:03d}-{n:02d}" for page in range(4) for n in range(5)]
    with OaiServer(served) as server:
        configured = source(tmp_path, server)
        with pytest.raises(Exception, match="page 3 parsed does not say what its text did"):
            harvest(catalog, configured, options=options)
        # what was committed before it (how much depends on when the batches were committed):
        # the list's beginning, none of the page or after it
        stored = sorted(records_of(catalog))
        assert stored == listed[: len(stored)] and len(stored) <= 10
        served["page-2"] = many_pages(4, 5)["page-2"]
        with pytest.raises(Exception, match="page 4 is not well-formed XML"):
            harvest(catalog, configured, options=options)
        stored = sorted(records_of(catalog))
        assert stored == listed[: len(stored)] and len(stored) <= 15
