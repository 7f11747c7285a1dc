"""Hostile records: URLs that point at local files, devices, other schemes, metadata services or
private networks; redirect chains; endless bodies. Each is one clear failure (or a warning on a
kept record) with its reason, and every other item is processed."""

from __future__ import annotations

import resource
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import write_jsonl
from sqlalchemy import insert, select
from support.iiif_server import IiifServer, jpeg, picture
from support.servers import Reply

from monalia.api.records import ImageRef, Record
from monalia.api.source import RawItem, Source
from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, RecordRow, RunEventRow, RunRow
from monalia.net.url_policy import UrlPolicy, UrlRefused
from monalia.stages.harvest import harvest
from monalia.testing import configure

JPEG = {"Content-Type": "image/jpeg"}


def project(folder, records, project_extra="", images_extra=""):
    write_jsonl(folder / "records.jsonl", records)
    (folder / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{folder / "c.sqlite"}"\ndata_dir = "data"\n'
        f"{project_extra}\n"
        '[sources.local]\nplugin = "jsonl"\npath = "records.jsonl"\n'
        "[images]\nwidth = 64\nheight = 64\nretries = 0\ntimeout = 2\nmax_bytes = 200_000\n"
        f"{images_extra}\n",
        encoding="utf-8",
    )
    return folder


def images_of(folder) -> dict[str, tuple[str, str | None]]:
    catalog = Catalog.open(f"sqlite:///{folder / 'c.sqlite'}")
    with catalog.session() as session:
        return {
            record: (status, error)
            for record, status, error in session.execute(
                select(RecordRow.source_id, ImageRow.status, ImageRow.error).join(
                    ImageRow, ImageRow.record_id == RecordRow.id
                )
            )
        }


def warnings_of(folder) -> list[tuple[str, str]]:
    catalog = Catalog.open(f"sqlite:///{folder / 'c.sqlite'}")
    with catalog.session() as session:
        return [
            (e.item, e.message)
            for e in session.scalars(select(RunEventRow).where(RunEventRow.level == "warning"))
        ]


def test_the_policy_says_what_it_refuses_and_which_setting_allows_it():
    strict, open_ = UrlPolicy(), UrlPolicy(allow_file=True, allow_private=True)
    for url, words in [
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("urn:nbn:de:1234", "scheme 'urn'"),
        ("ftp://example.org/a.jpg", "scheme 'ftp'"),
        ("//example.org/a.jpg", "scheme none"),
        ("file:///etc/passwd", "allow_file_urls"),
        ("http://127.0.0.1/a.jpg", "allow_private_addresses"),
        ("http://10.1.2.3/a.jpg", "allow_private_addresses"),
        ("http://[::1]/a.jpg", "allow_private_addresses"),
        ("http://localhost/a.jpg", "allow_private_addresses"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
    ]:
        with pytest.raises(UrlRefused, match=words):
            strict.check(url, local_source=True)
    # allowed only where the project says so, and never the metadata service
    assert open_.check("file:///tmp/a.jpg", local_source=True)
    with pytest.raises(UrlRefused, match="not a local file"):
        open_.check("file:///tmp/a.jpg", local_source=False)
    assert open_.check("http://10.1.2.3/a.jpg")
    with pytest.raises(UrlRefused, match="metadata"):
        open_.check("http://169.254.169.254/")
    # the host the user configured may be private
    assert strict.check("http://127.0.0.1:8080/oai", trusted_host="127.0.0.1")
    assert strict.check("https://images.example.org/a.jpg")


class RemoteSource(Source):
    """A source whose input is a remote service: it may not name local files."""

    name = "remote"

    def items(self, state):
        yield RawItem(key="a", payload=None)

    def parse(self, item):
        return Record(
            source_id="a",
            title="A",
            images=[
                ImageRef(url="file:///etc/passwd", is_main=True),
                ImageRef(url="https://images.example.org/a.jpg"),
            ],
            raw={"images": ["file:///etc/passwd", "https://images.example.org/a.jpg"]},
        )


def test_a_remote_source_naming_local_files_keeps_its_record_without_them(tmp_path):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    run = harvest(catalog, configure(RemoteSource, {}, tmp_path, "remote"))
    assert (run.counts["new"], run.counts["failed"], run.warnings) == (1, 0, 1)
    with catalog.session() as session:
        row = session.scalar(select(RecordRow))
        assert [image.url for image in row.images] == ["https://images.example.org/a.jpg"]
        assert row.images[0].is_main and "file:///etc/passwd" in row.raw["images"]
        [event] = session.scalars(select(RunEventRow)).all()
    assert "not a local file" in event.message


def memory_limit(megabytes: int):
    """Run a child under an address-space limit (the crawl processes inherit it)."""
    limit = megabytes * 1024 * 1024
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def endless_server():
    """An HTTP server whose /endless answer never ends and announces no length."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            chunk = b"\xff\xd8" + b"\0" * 65_534
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_hostile_image_urls_fail_one_by_one_under_a_memory_limit(tmp_path):
    """/dev/zero, a large local file, other schemes, metadata and private addresses, redirect
    chains, an endless body: each image fails with its reason, the good ones are fetched, and the
    crawl stays under 1 GB of address space (it used to grow to 21 GB on /dev/zero)."""
    import subprocess
    import sys

    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * 5_000_000)
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg(picture("good", 80, 60)))
    endless = endless_server()

    def redirects(path: str) -> Reply | None:
        if path == "/to-https":
            return Reply(status=301, headers={"Location": f"{server.url}/ok.jpg"})
        if path == "/to-file":
            return Reply(status=302, headers={"Location": "file:///etc/passwd"})
        if path == "/to-metadata":
            return Reply(status=302, headers={"Location": "http://169.254.169.254/latest/"})
        if path.startswith("/loop"):
            return Reply(status=302, headers={"Location": f"{server.url}/loop{len(path)}"})
        if path == "/ok.jpg":
            return Reply(body=jpeg(picture("ok", 90, 70)), headers=JPEG)
        return None

    with IiifServer(extra=redirects) as server:
        base = server.url
        records = [
            {"id": "zero", "images": ["file:///dev/zero"]},
            {"id": "big", "images": [big.as_uri()]},
            {"id": "good-file", "images": [good.as_uri()]},
            {"id": "redirected", "images": [f"{base}/to-https"]},
            {"id": "to-file", "images": [f"{base}/to-file"]},
            {"id": "to-metadata", "images": [f"{base}/to-metadata"]},
            {"id": "loop", "images": [f"{base}/loop"]},
            {"id": "endless", "images": [f"http://127.0.0.1:{endless.server_address[1]}/endless"]},
            {"id": "metadata", "images": ["http://169.254.169.254/latest/meta-data/"]},
            {"id": "script", "images": ["javascript:alert(1)"]},
            {"id": "urn", "images": ["urn:nbn:de:1234-5678"]},
            {"id": "after", "images": [f"{base}/ok.jpg?after"]},
        ]
        folder = project(
            tmp_path,
            records,
            "allow_file_urls = true\nallow_private_addresses = true\nmax_redirects = 3",
            "processes = 1",
        )
        command = [sys.executable, "-m", "monalia", "-q", "--project", str(folder)]
        assert subprocess.run([*command, "harvest"], capture_output=True).returncode == 0
        fetched = subprocess.run(
            [*command, "images"],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=memory_limit(1024),
        )
    endless.shutdown()
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    outcome = images_of(folder)
    # other schemes and the metadata address never reached the catalog's images: warnings
    assert {"script", "urn", "metadata"}.isdisjoint(outcome)
    refused = {item for item, _ in warnings_of(folder)}
    assert {"line 9", "line 10", "line 11"} <= refused
    for record, words in {
        "zero": "not a regular file",
        "big": "larger than max_bytes",
        "to-file": "file: URL",
        "to-metadata": "metadata",
        "loop": "redirect",
        "endless": "max_bytes",
    }.items():
        status, error = outcome[record]
        assert status == "rejected" and words in error, (record, status, error)
    for record in ("good-file", "redirected", "after"):
        assert outcome[record][0] == "fetched", (record, outcome[record])
    catalog = Catalog.open(f"sqlite:///{folder / 'c.sqlite'}")
    with catalog.session() as session:
        run = session.scalars(select(RunRow).where(RunRow.stage == "images")).one()
    assert (run.seen, run.new, run.failed) == (9, 3, 6)


def test_an_unsupported_url_in_the_catalog_fails_alone(tmp_path):
    """A catalog filled before these checks (or by hand) may hold any URL: the crawl fails
    that image and fetches the rest (it used to stop at the first one on every run)."""
    import subprocess
    import sys

    with IiifServer(extra=lambda p: Reply(body=jpeg(picture(p, 40, 40)), headers=JPEG)) as server:
        folder = project(
            tmp_path,
            [{"id": f"r{n}", "images": [f"{server.url}/{n}.jpg"]} for n in range(3)],
            "allow_private_addresses = true",
        )
        command = [sys.executable, "-m", "monalia", "-q", "--project", str(folder)]
        assert subprocess.run([*command, "harvest"], capture_output=True).returncode == 0
        catalog = Catalog.open(f"sqlite:///{folder / 'c.sqlite'}")
        with catalog.session() as session:
            record_id = session.scalar(select(RecordRow.id).where(RecordRow.source_id == "r0"))
            session.execute(
                insert(ImageRow),
                [
                    {"record_id": record_id, "position": 5, "url": url, "status": "pending"}
                    for url in ("urn:x:1", "javascript:alert(1)", "no scheme at all")
                ],
            )
        done = subprocess.run([*command, "images"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    statuses = {}
    with catalog.session() as session:
        for url, status, error in session.execute(
            select(ImageRow.url, ImageRow.status, ImageRow.error)
        ):
            statuses[url] = (status, error)
    assert sum(status == "fetched" for status, _ in statuses.values()) == 3
    for url in ("urn:x:1", "javascript:alert(1)", "no scheme at all"):
        status, error = statuses[url]
        assert status == "rejected" and error, (url, statuses[url])


def test_private_addresses_are_refused_unless_the_project_allows_them(tmp_path):
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "images": ["http://192.168.1.20/a.jpg"]}])
    from monalia.plugins.sources.jsonl import JsonLinesSource

    configured = configure(JsonLinesSource, {"path": "r.jsonl"}, tmp_path, "local")
    run = harvest(catalog, configured)
    assert run.warnings == 1
    with catalog.session() as session:
        assert session.scalar(select(RecordRow)).images == []
    configured.context.url_policy = UrlPolicy(allow_private=True)
    harvest(catalog, configured)
    with catalog.session() as session:
        assert [i.url for i in session.scalar(select(RecordRow)).images] == [
            "http://192.168.1.20/a.jpg"
        ]


def test_a_name_that_resolves_to_a_private_address_is_refused_when_fetched():
    """A crawl resolves each host once: a public-looking name pointing at this machine (or at
    a metadata service) is refused like the address."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        pytest.skip(f"this machine's name {name} does not resolve")
    import ipaddress

    if not ipaddress.ip_address(address).is_private:
        pytest.skip(f"{name} resolves to a public address here")
    with pytest.raises(UrlRefused, match="private"):
        UrlPolicy().check(f"http://{name}/a.jpg", resolve=True)
    assert UrlPolicy().check(f"http://{name}/a.jpg")  # unresolved, the name alone says nothing


def test_http_sources_check_every_redirect_and_bound_every_answer():
    from support.servers import ApiServer

    from monalia.net.http import HttpClient, HttpError, HttpSettings

    endless = endless_server()

    def answer(path: str, params: dict) -> Reply:
        hops = {
            "/moved": f"{api.url}/page",
            "/to-file": "file:///etc/passwd",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-private": "http://10.0.0.5/page",
            "/loop": f"{api.url}/loop",
            "/endless": f"http://127.0.0.1:{endless.server_address[1]}/endless",
        }
        if path in hops:
            return Reply(status=302, headers={"Location": hops[path]})
        return Reply(body={"ok": True})

    settings = HttpSettings(retries=0, timeout=5, max_bytes=1_000_000, max_redirects=3)
    with ApiServer(answer) as api, HttpClient(settings) as client:
        assert client.get_json(f"{api.url}/moved") == {"ok": True}
        for path, words in [
            ("/to-file", "file: URL"),
            ("/to-metadata", "metadata"),
            ("/to-private", "private"),
            ("/loop", "more than 3 redirects"),
        ]:
            with pytest.raises(HttpError, match=words):
                client.get(f"{api.url}{path}")
        with pytest.raises(HttpError, match="larger than max_bytes"):
            client.get(f"http://127.0.0.1:{endless.server_address[1]}/endless")
        with pytest.raises(HttpError, match="file: URL"):
            client.get("file:///etc/passwd")
    endless.shutdown()


def test_the_html_report_links_only_to_web_pages():
    from monalia.curation.html_report import report_environment

    card = {
        "record": "javascript:alert(document.cookie)",
        "page": "javascript:alert(1)",
        "title": '<script>alert("x")</script>',
        "identifier": "X1",
        "class_uri": "urn:c",
        "class_label": "cheval",
        "score": 0.5,
        "annotated": True,
        "subjects": [],
        "thumbnail": None,
        "remote": "javascript:alert(2)",
        "heatmap": None,
    }
    safe = dict(card, page="https://museum.example.org/X2", remote="https://img.example.org/2.jpg")
    html = (
        report_environment()
        .get_template("findings.html")
        .render(
            findings=[card, safe],
            kind="noise",
            explanation="",
            title="Noise",
            counts={"noise": 2, "silence": 0},
            class_pages=[],
            model=None,
            store="",
            written="",
        )
    )
    assert "javascript:" not in html.replace('data-record="javascript:alert(document.cookie)"', "")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://museum.example.org/X2">' in html
    assert '<img src="https://img.example.org/2.jpg"' in html


@pytest.mark.parametrize(
    ("table", "line"),
    [
        (
            '[sinks.db]\nplugin = "sql"',
            'url = "postgresql+psycopg://monalia:s3cret@db.example.org/m"',
        ),
        (
            '[sources.s]\nplugin = "smithsonian"',
            'endpoint = "http://admin:s3cret@example.org/sparql"',
        ),
        (
            '[sources.s]\nplugin = "oai-pmh"',
            'url = "https://harvester:s3cret@museum.example.org/oai"',
        ),
    ],
)
def test_a_password_in_a_url_setting_is_refused_by_every_command(tmp_path, table, line):
    import subprocess
    import sys

    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path / "c.sqlite"}"\n{table}\n{line}\n',
        encoding="utf-8",
    )
    for command in (["check"], ["runs"], ["harvest"], ["publish"]):
        result = subprocess.run(
            [sys.executable, "-m", "monalia", "--project", str(tmp_path), *command],
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0, command
        assert "s3cret" not in result.stdout + result.stderr
        assert "holds a password" in result.stderr and "password_env" in result.stderr


def test_recorded_settings_and_messages_never_show_user_info(tmp_path):
    from monalia.catalog.run_tracking import RunTracker, load_run

    catalog = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    tracker = RunTracker(
        catalog, "publish", "sql", "db", {"url": "postgresql://monalia:hunter2@db/m"}
    ).start()
    tracker.fail_item("http://u:hunter2@example.org/x", "cannot reach http://u:hunter2@example.org")
    run = tracker.finish("failed", "postgresql://monalia:hunter2@db/m refused the connection")
    with catalog.session() as session:
        stored = [
            str(value)
            for value in (
                *session.execute(select(RunRow.settings, RunRow.message)).one(),
                *session.execute(select(RunEventRow.item, RunEventRow.message)).one(),
            )
        ]
    assert not any("hunter2" in text for text in stored), stored
    assert "postgresql://***@db/m" in load_run(catalog, run.id).message


def test_max_pixels_above_pillows_own_limit_is_the_projects_to_set():
    import io as stdio

    from PIL import Image

    from monalia.learning.image_check import ImageLimits, ImageRejected, prepare

    out = stdio.BytesIO()
    Image.new("1", (10_000, 9_500)).save(out, "PNG")  # 95 million pixels, over Pillow's 89.5M
    body = out.getvalue()
    image = prepare(body, "image/png", (64, 64), ImageLimits(max_pixels=100_000_000))
    assert max(image.width, image.height) == 64
    with pytest.raises(ImageRejected, match="decompression bomb"):
        prepare(body, "image/png", (64, 64), ImageLimits(max_pixels=50_000_000))


def test_a_refused_request_no_errback_reports_is_kept_for_the_pipeline():
    from scrapy.exceptions import IgnoreRequest
    from scrapy.http import Request
    from scrapy.settings import Settings

    from monalia.harvesters.middlewares import UrlPolicyMiddleware

    class Crawler:
        pass

    crawler = Crawler()
    middleware = UrlPolicyMiddleware(
        Settings({"MONALIA_URL_POLICY": {}, "MONALIA_START_URL": "file:///data/objects.json"}),
        crawler,
    )
    assert middleware.process_request(Request("file:///data/objects.json")) is None
    with pytest.raises(IgnoreRequest, match="metadata"):
        middleware.process_request(Request("http://169.254.169.254/latest/"))
    with pytest.raises(IgnoreRequest):
        middleware.process_request(Request("http://10.0.0.1/a", errback=lambda failure: None))
    # the first had no errback: the item pipeline turns it into a failed item; the second's
    # errback reports it itself
    assert [url for url, _ in crawler.monalia_refused] == ["http://169.254.169.254/latest/"]
