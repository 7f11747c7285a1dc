"""Europeana, Cleveland, Smithsonian and Behance sources against real local servers and files."""

from __future__ import annotations

import copy
import csv
import json
import sqlite3

import pytest
from conftest import records_of
from sqlalchemy import select
from support.servers import ApiServer, Reply

from monalia.catalog.database import Catalog
from monalia.catalog.models import RunEventRow
from monalia.errors import SourceUnavailable
from monalia.plugins.sources.behance import BehanceSource
from monalia.plugins.sources.cleveland import ClevelandApiSource, ClevelandCsvSource
from monalia.plugins.sources.europeana import EuropeanaSource
from monalia.plugins.sources.smithsonian import SmithsonianSource, html_to_text
from monalia.stages.harvest import harvest
from monalia.testing import check_source_contract, configure

FAST = {"timeout": 1.0, "retries": 6, "backoff": 0.02, "max_backoff": 0.1}
KEY = "k3y-not-to-leak"


# -- Europeana --------------------------------------------------------------------------------------


def europeana_items(real_fixtures, copies: int = 3) -> list[dict]:
    """The real page's items, repeated with distinct ids to make several pages."""
    page = json.loads(
        (real_fixtures / "europeana" / "openverse_europeana_search_cursor_page.json").read_text()
    )
    items = []
    for n in range(copies):
        for item in page["items"]:
            item = copy.deepcopy(item)
            item["id"] = item["id"] + (f"_{n}" if n else "")
            item["link"] = item["link"].replace("test_key", KEY)
            item["guid"] = item["guid"].replace("test_key", KEY)
            items.append(item)
    return items


def europeana_handler(items: list[dict], rows_seen: list):
    def handle(path: str, params: dict[str, str]) -> Reply:
        if params.get("wskey") != KEY:
            return Reply(401, {"success": False, "error": "Invalid API key"})
        rows = int(params["rows"])
        rows_seen.append(params)
        cursor = params["cursor"]
        start = 0 if cursor == "*" else int(cursor.removeprefix("AoE/"))
        page = items[start : start + rows]
        body = {
            "success": True,
            "apikey": KEY,
            "requestNumber": 999,
            "itemsCount": len(page),
            "totalResults": len(items),
            "items": page,
        }
        if rows and start + rows < len(items):
            body["nextCursor"] = f"AoE/{start + rows}"  # real cursors hold / + and =
        return Reply(200, body)

    return handle


def test_europeana_cursor_paging_to_the_end_with_failures_on_the_way(
    tmp_path, real_fixtures, monkeypatch
):
    monkeypatch.setenv("EUROPEANA_API_KEY", KEY)
    items = europeana_items(real_fixtures)
    seen: list = []
    with ApiServer(europeana_handler(items, seen)) as server:
        server.fail_next(
            Reply(200, {"totalResults": len(items)}),  # the count request
            Reply(429, b"", {"Retry-After": "1"}),
            Reply(500, b"boom"),
            Reply(200, b"x" * 200, cut=True),
            Reply(200, b'{"success": true, "items": [{"id": '),
            Reply(200, {}, delay=1.5),
        )
        settings = {
            "endpoint": server.url + "/record/v2/search.json",
            "rows": 20,
            "qf": ["TYPE:IMAGE", 'PROVIDER:"Hispana"'],
            "http": FAST,
        }
        result = check_source_contract(
            EuropeanaSource, settings, tmp_path, min_records=len(items), expect_failed=0
        )
    assert result.records == len(items) == 81
    first = seen[0]
    assert first["query"] == "*" and first["reusability"] == "open" and first["media"] == "true"
    assert first["profile"] == "rich"
    rows = records_of(result.catalog)
    row = rows["2022704/lod_oai_bibliotecadigital_jcyl_es_26229_ent1"]
    assert (
        row.iri
        == "http://data.europeana.eu/item/2022704/lod_oai_bibliotecadigital_jcyl_es_26229_ent1"
    )
    assert row.title.startswith("Claustro del Monasterio de S. Salvador en Oña")
    assert row.rights == "http://creativecommons.org/publicdomain/zero/1.0/"
    assert row.images[0].url.startswith("http://bibliotecadigital.jcyl.es/")
    assert ("Monasterio de San Salvador de Oña-Grabados", "es") in [
        (s.label, s.lang) for s in row.subjects
    ]
    # the key never lands in the catalog, though Europeana echoes it in link and guid
    with result.catalog.engine.connect() as connection:
        dump = "\n".join(connection.connection.iterdump())
    assert KEY not in dump
    assert row.raw["link"].endswith("wskey=***") and "utm_campaign" not in row.landing_page


def test_europeana_bookmark_asks_only_for_updates(tmp_path, real_fixtures, monkeypatch):
    monkeypatch.setenv("EUROPEANA_API_KEY", KEY)
    seen: list = []
    with ApiServer(europeana_handler(europeana_items(real_fixtures, 1), seen)) as server:
        catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
        configured = configure(
            EuropeanaSource, {"endpoint": server.url + "/s", "http": FAST}, tmp_path
        )
        harvest(catalog, configured)
        assert not any("timestamp_update" in str(p) for p in seen)
        server.seen.clear()
        harvest(catalog, configured)
    qfs = [v for k, v in server.seen[-1].params if k == "qf"]
    newest = max(item["timestamp_update"] for item in europeana_items(real_fixtures, 1))
    assert f"timestamp_update:[{newest} TO *]" in qfs


def test_europeana_refused_key_is_one_clear_error(tmp_path, real_fixtures, monkeypatch):
    monkeypatch.setenv("EUROPEANA_API_KEY", "wrong")
    with ApiServer(europeana_handler([], [])) as server:
        catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
        configured = configure(EuropeanaSource, {"endpoint": server.url + "/s"}, tmp_path)
        with pytest.raises(SourceUnavailable) as failed:
            harvest(catalog, configured)
    message = str(failed.value)
    assert "HTTP 401" in message and "check the API key" in message and "wrong" not in message


def test_europeana_missing_key_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("EUROPEANA_API_KEY", raising=False)
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(EuropeanaSource, {}, tmp_path)
    with pytest.raises(Exception, match=r"\$EUROPEANA_API_KEY, which is not set"):
        harvest(catalog, configured)


# -- Cleveland ------------------------------------------------------------------------------------------


def cleveland_artworks(real_fixtures) -> list[dict]:
    page = json.loads(
        (real_fixtures / "cleveland" / "openverse_cma_api_page_subset.json").read_text()
    )
    return page["data"]


def test_cleveland_api_skip_limit_paging_with_failures(tmp_path, real_fixtures):
    artworks = cleveland_artworks(real_fixtures)
    with_image = [a for a in artworks if a.get("images")]

    def handle(path, params):
        pool = [a for a in artworks if a.get("images")] if params.get("has_image") else artworks
        if params.get("cc0"):
            pool = [a for a in pool if a["share_license_status"] == "CC0"]
        skip, limit = int(params["skip"]), int(params["limit"])
        return Reply(
            200,
            {"info": {"total": len(pool), "parameters": params}, "data": pool[skip : skip + limit]},
        )

    with ApiServer(handle) as server:
        server.fail_next(
            Reply(200, {"info": {"total": 1}, "data": []}), Reply(503, b"", {"Retry-After": "0"})
        )
        settings = {
            "endpoint": server.url + "/api/artworks/",
            "limit": 5,
            "cc0_only": True,
            "http": FAST,
        }
        result = check_source_contract(ClevelandApiSource, settings, tmp_path, expect_failed=0)
        assert all(p.param("cc0") == "1" and p.param("has_image") == "1" for p in server.seen)
    cc0 = [a for a in with_image if a["share_license_status"] == "CC0"]
    assert result.records == len(cc0)
    rows = records_of(result.catalog)
    mount = rows["172815"]
    assert mount.title == "Mount Starr King, Yosemite" and mount.date_start == 1866
    assert mount.creators == ["Albert Bierstadt (American, 1830-1902)"]
    assert (
        mount.images[0].url == "https://openaccess-cdn.clevelandart.org/221.1922/221.1922_web.jpg"
    )
    assert mount.raw["images"]["full"]["url"].endswith("_full.tif")  # every size kept
    assert ("Painting", "type") in [(s.label, s.field) for s in mount.subjects]
    assert mount.landing_page == "https://clevelandart.org/art/221.1922"


def write_cleveland_csv(path, artworks: list[dict], rows: int) -> None:
    """data.csv's layout: the API's fields flattened into columns, image URLs per size."""
    columns = [
        "id",
        "accession_number",
        "share_license_status",
        "tombstone",
        "title",
        "creation_date",
        "creation_date_earliest",
        "creation_date_latest",
        "creators",
        "culture",
        "technique",
        "department",
        "collection",
        "type",
        "url",
        "image_web",
        "image_print",
        "image_full",
        "wall_description",
        "citations",
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for n in range(rows):
            art = artworks[n % len(artworks)]
            images = art.get("images") or {}
            writer.writerow(
                [
                    f"{art['id']}{n:06d}",
                    art["accession_number"],
                    art["share_license_status"],
                    art.get("tombstone", ""),
                    art["title"],
                    art.get("creation_date") or "",
                    art.get("creation_date_earliest") or "",
                    art.get("creation_date_latest") or "",
                    "; ".join(c["description"] for c in art.get("creators") or []),
                    "; ".join(art.get("culture") or []),
                    art.get("technique") or "",
                    art["department"],
                    art.get("collection") or "",
                    art["type"],
                    art["url"],
                    *((images.get(s) or {}).get("url", "") for s in ("web", "print", "full")),
                    art.get("wall_description") or "",
                    json.dumps(art.get("citations") or [])[:300],  # HTML, quotes, commas inside
                ]
            )
        handle.write('999,"unterminated,\n')


def test_cleveland_csv_streamed_with_mapped_columns(tmp_path, real_fixtures):
    artworks = cleveland_artworks(real_fixtures)
    write_cleveland_csv(tmp_path / "data.csv", artworks, 60)
    result = check_source_contract(
        ClevelandCsvSource,
        {"path": "data.csv", "with_image_only": False},
        tmp_path,
        min_records=60,
        expect_failed=1,
    )
    assert result.records == 60
    row = records_of(result.catalog)[f"{artworks[0]['id']}000000"]
    assert row.title == artworks[0]["title"] and row.creators == [
        "Albert Bierstadt (American, 1830-1902)"
    ]
    assert row.images[0].url.endswith("_web.jpg") and row.raw["image_full"].endswith("_full.tif")


def test_cleveland_csv_unknown_mapping_is_a_clear_error(tmp_path, real_fixtures):
    write_cleveland_csv(tmp_path / "data.csv", cleveland_artworks(real_fixtures), 1)
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    configured = configure(
        ClevelandCsvSource, {"path": "data.csv", "columns": {"title": "name"}}, tmp_path
    )
    with pytest.raises(
        SourceUnavailable, match="column 'name' \\(for title\\) is not in the header"
    ):
        harvest(catalog, configured)


# -- Smithsonian -------------------------------------------------------------------------------------------


def test_smithsonian_cidoc_crm_over_sparql(tmp_path, real_fixtures, oxigraph):
    oxigraph.load((real_fixtures / "smithsonian" / "saam_lod_cidoc_crm_subset.nt").read_bytes())
    result = check_source_contract(
        SmithsonianSource,
        {"endpoint": oxigraph.query_url, "page_size": 7},
        tmp_path,
        min_records=30,
        expect_failed=0,
    )
    assert result.records == 30
    row = records_of(result.catalog)["1882.1.1"]
    assert row.creators == ["John Rogers"]
    assert row.description.startswith("Taking the Oath and Drawing Rations exemplifies")
    assert "<" not in row.description
    assert (
        next(i.url for i in row.images) == "http://2.americanart.si.edu/images/1882/1882.1.1_1a.jpg"
    )
    assert len(row.images) == 3
    raw_html = row.raw["http://data.americanart.si.edu/object/id/1882.1.1/description"]
    assert "<EM>" in json.dumps(raw_html)  # the HTML itself is kept in the raw payload


def test_html_to_text():
    assert html_to_text("<SPAN><P>A &amp; B<BR>c&nbsp;d</P></SPAN>") == "A & B\nc d"


# -- Behance ---------------------------------------------------------------------------------------------------


def write_bam(path, modules: int) -> None:
    attributes = [
        "content_cat",
        "content_dog",
        "emotion_happy",
        "media_oilpaint",
        "media_watercolor",
    ]
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE modules (mid INTEGER PRIMARY KEY, project_id INTEGER, src TEXT, mature_content INTEGER, license TEXT)"
    )
    db.execute(
        "CREATE TABLE automatic_labels (mid INTEGER PRIMARY KEY, "
        + ", ".join(f"{a} TEXT" for a in attributes)
        + ")"
    )
    db.execute("CREATE TABLE crowd_labels (mid INTEGER, attribute TEXT, label TEXT)")
    values = ("positive", "negative", "unsure")
    for mid in range(1, modules + 1):
        src = (
            ""
            if mid == 5
            else f"https://mir-s3-cdn-cf.behance.net/project_modules/disp/{mid:08x}.jpg"
        )
        db.execute(
            "INSERT INTO modules VALUES (?,?,?,?,?)",
            (mid, 1000 + mid // 3, src, int(mid % 10 == 0), "CC BY-NC 4.0"),
        )
        db.execute(
            f"INSERT INTO automatic_labels VALUES (?{',?' * len(attributes)})",
            (mid, *(values[(mid + i) % 3] for i in range(len(attributes)))),
        )
        db.execute(
            "INSERT INTO crowd_labels VALUES (?,?,?)",
            (mid, "content_cat", "positive" if mid % 2 else "negative"),
        )
    db.commit()
    db.close()


def test_behance_modules_with_positive_labels_and_no_mature_content(tmp_path):
    write_bam(tmp_path / "bam.sqlite", 40)
    result = check_source_contract(
        BehanceSource, {"path": "bam.sqlite"}, tmp_path, min_records=30, expect_failed=1
    )
    rows = records_of(result.catalog)
    assert len(rows) == 40 - 4 - 1  # mature modules left out, the one without src reported
    assert "10" not in rows and "5" not in rows
    row = rows["2"]
    # automatic: content_cat=(2+0)%3=unsure, content_dog=positive, emotion_happy=positive...
    assert sorted((s.uri.rsplit("/", 1)[1], s.field) for s in row.subjects) == [
        ("content_dog", "automatic"),
        ("media_watercolor", "automatic"),
    ]
    assert row.rights == "CC BY-NC 4.0" and row.raw["mature_content"] == 0
    row = rows["1"]
    assert ("content_cat", "crowd") in [(s.uri.rsplit("/", 1)[1], s.field) for s in row.subjects]


def test_behance_labels_setting_and_mature_content(tmp_path):
    write_bam(tmp_path / "bam.sqlite", 12)
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    settings = {
        "path": "bam.sqlite",
        "labels": ["positive", "unsure"],
        "include_mature": True,
        "crowd_labels": False,
    }
    harvest(catalog, configure(BehanceSource, settings, tmp_path))
    rows = records_of(catalog)
    assert "10" in rows
    assert len([s for s in rows["2"].subjects]) == 4  # unsure counts too now
    with catalog.session() as session:
        events = session.scalars(select(RunEventRow)).all()
    assert [e.message for e in events] == ["the module has no image URL (src)"]
