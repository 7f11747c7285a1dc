"""The holes an attack on the entry points found, each closed and kept closed: SPARQL traffic
under the URL policy, credentials kept to their origin, addresses hidden in IPv6, parsers that
would fetch the network, secrets that do not look like secrets, IRIs a strict parser refuses,
and the policy doing what the manual says.

Every test here runs with only loopback reachable (`loopback_only`): a regression that reaches
out fails the test instead of reaching a real host.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyoxigraph as ox
import pytest

from monalia.net.http import HttpClient, HttpError, HttpSettings, SparqlClient, origin
from monalia.net.url_policy import UrlPolicy, UrlRefused
from monalia.rdf.terms import nt_iri

pytestmark = pytest.mark.usefixtures("loopback_only")

FAST = HttpSettings(timeout=2.0, retries=0, backoff=0.01)
EMPTY_RESULTS = json.dumps({"head": {"vars": ["item"]}, "results": {"bindings": []}}).encode()


class Recorder:
    """A local HTTP server that answers GET and POST with `answer(method, path)` -> (status,
    headers, body) and keeps each request's method, path and headers."""

    def __init__(self, answer):
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recorder.seen.append((self.command, self.path, dict(self.headers)))
                status, headers, body = answer(self.command, self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = handle_any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Listener:
    """A bare TCP port that notes whether anything connected (an FTP server would)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]

    def connected(self) -> bool:
        try:
            connection, _ = self.sock.accept()
        except TimeoutError:
            return False
        connection.close()
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def servers():
    made: list = []

    def make(answer):
        server = Recorder(answer)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def sparql_answer(method, path):
    return 200, {"Content-Type": "application/sparql-results+json"}, EMPTY_RESULTS


def redirect_to(location):
    return lambda method, path: (302, {"Location": location}, b"")


# -- 1. SPARQL traffic under the URL policy ---------------------------------------------------


def test_sparql_credentials_never_follow_a_redirect_to_another_port(servers):
    other = servers(sparql_answer)
    first = servers(redirect_to(f"http://127.0.0.1:{other.port}/sparql2"))
    client = SparqlClient(first.url + "/sparql", FAST, user="alice", password="pw-of-alice")
    assert client.select("SELECT ?item WHERE { ?item ?p ?o }") == []
    method, _, headers = first.seen[0]
    assert method == "POST" and headers["Authorization"].startswith("Basic ")
    assert [m for m, _, _ in other.seen] == ["POST"]
    assert "Authorization" not in other.seen[0][2]  # the other origin got no password


def test_sparql_redirects_to_another_host_or_scheme_are_refused(servers):
    ftp = Listener()
    try:
        to_ftp = servers(redirect_to(f"ftp://127.0.0.1:{ftp.port}/x"))
        with pytest.raises(HttpError, match="scheme 'ftp' is not fetched"):
            SparqlClient(to_ftp.url + "/sparql", FAST, "alice", "pw-of-alice").select("ASK {}")
        assert not ftp.connected()
    finally:
        ftp.close()
    other = servers(sparql_answer)
    # another host name for a private address: not the host the user configured
    to_localhost = servers(redirect_to(f"http://localhost:{other.port}/sparql2"))
    with pytest.raises(HttpError, match="private or loopback"):
        SparqlClient(to_localhost.url + "/sparql", FAST, "alice", "pw").select("ASK {}")
    metadata = servers(redirect_to("http://[::ffff:169.254.169.254]/latest/meta-data/"))
    with pytest.raises(HttpError, match="link-local or cloud metadata"):
        SparqlClient(metadata.url + "/sparql", FAST).select("ASK {}")
    assert other.seen == []


def test_sparql_answers_are_bounded(servers):
    big = servers(lambda m, p: (200, {"Content-Type": "application/json"}, b"[" * 5000))
    settings = FAST.model_copy(update={"max_bytes": 1000})
    with pytest.raises(HttpError, match="max_bytes"):
        SparqlClient(big.url + "/sparql", settings).select("ASK {}")


def test_a_harvest_over_a_redirecting_endpoint_fails_without_leaking(
    servers, tmp_path, cli, monkeypatch
):
    other = servers(sparql_answer)
    first = servers(redirect_to(f"http://localhost:{other.port}/sparql2"))
    monkeypatch.setenv("JOCONDE_PASSWORD", "pw-of-alice-123")
    (tmp_path / "monalia.toml").write_text(
        "[sources.lab]\n"
        'plugin = "joconde-sparql"\n'
        f'endpoint = "{first.url}/sparql"\nuser = "alice"\n'
        'password_env = "JOCONDE_PASSWORD"\nhttp = { retries = 0 }\n',
        encoding="utf-8",
    )
    result = cli("harvest", project=tmp_path)
    assert result.exit_code != 0
    assert "private or loopback" in result.output and "pw-of-alice-123" not in result.output
    assert other.seen == []  # the redirect's target never heard from monalia
    shown = cli("runs", "show", "1", project=tmp_path)
    assert "failed" in shown.output and "pw-of-alice-123" not in shown.output


def test_the_sparql_store_sink_keeps_its_password_to_its_origin(servers, tmp_path):
    from monalia.api.plugin import PluginContext
    from monalia.plugins.sinks.sparql_store import SparqlStoreSink

    other = servers(lambda m, p: (204, {}, b""))
    store = servers(redirect_to(f"http://127.0.0.1:{other.port}/update"))
    settings = SparqlStoreSink.Settings(
        update_endpoint=store.url + "/update",
        graph_store_endpoint=store.url + "/store",
        username="admin",
        password_env="STORE_PASSWORD",
        http=FAST,
    )
    import os

    os.environ["STORE_PASSWORD"] = "pw-of-admin-456"
    try:
        sink = SparqlStoreSink(settings, PluginContext(instance="store", project_dir=tmp_path))
        sink.open()
        sink.update("DROP SILENT GRAPH <urn:g>")
        sink.close(True)
    finally:
        del os.environ["STORE_PASSWORD"]
    assert "Authorization" in store.seen[0][2]
    assert other.seen and "Authorization" not in other.seen[0][2]


def test_credentials_are_dropped_on_a_change_of_scheme_host_or_port():
    assert origin("https://a.example/x") == ("https", "a.example", 443)
    assert origin("https://a.example:443/y") == origin("https://A.example/z")
    assert origin("http://a.example/x") != origin("https://a.example/x")  # a downgrade
    assert origin("http://a.example:8080/") != origin("http://a.example/")


def test_the_sink_obeys_the_project_policy(servers, tmp_path):
    from monalia.api.plugin import PluginContext
    from monalia.plugins.sinks.sparql_store import SparqlStoreSink

    store = servers(redirect_to("http://10.0.0.7/update"))
    settings = SparqlStoreSink.Settings(
        update_endpoint=store.url + "/update", graph_store_endpoint=store.url + "/s", http=FAST
    )
    sink = SparqlStoreSink(settings, PluginContext(instance="store", project_dir=tmp_path))
    sink.open()
    with pytest.raises(HttpError, match="allow_private_addresses"):
        sink.update("DROP SILENT GRAPH <urn:g>")
    sink.close(False)


# -- 2. IPv4 hidden in IPv6 -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:0:169.254.169.254]/",
        "http://[::a9fe:a9fe]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[::ffff:100.100.100.200]/",
    ],
)
def test_metadata_addresses_inside_ipv6_are_always_refused(url):
    for policy in (UrlPolicy(), UrlPolicy(allow_private=True)):
        with pytest.raises(UrlRefused) as refused:
            policy.check(url)
        assert "link-local or cloud metadata" in str(refused.value)
        assert "allow_private_addresses" not in str(refused.value)  # no setting lets it in


def test_private_addresses_inside_ipv6_are_private():
    with pytest.raises(UrlRefused, match="private"):
        UrlPolicy().check("http://[::ffff:10.0.0.1]/")
    with pytest.raises(UrlRefused, match="private"):
        UrlPolicy().check("http://[64:ff9b::7f00:1]/")  # NAT64 of 127.0.0.1
    UrlPolicy().check("http://[2606:4700::1111]/")  # a public IPv6 address stays allowed


def test_the_quick_reading_of_a_plain_url_names_the_host_urlsplit_names():
    """The policy reads the host of a plain http(s) URL without urlsplit (it checks every
    image of every record); wherever it does, urlsplit reads the same host, so no URL is judged
    by another host than the one fetched. Hostile spellings fall to urlsplit."""
    import random
    from urllib.parse import urlsplit

    from monalia.net.url_policy import _PLAIN_WEB_URL

    for url in (
        "https://a@127.0.0.1/",
        "https://example.org\\@127.0.0.1/",
        "https://example.org%2F@10.0.0.1/",
        "https://[::1]/",
        "https://127.0.0.1\t.example.org/",
        "https://example.org\n",
    ):
        assert _PLAIN_WEB_URL.match(url) is None, url
    with pytest.raises(UrlRefused, match="private"):
        UrlPolicy().check("HTTPS://LOCALHOST:8080/x.jpg")
    with pytest.raises(UrlRefused, match="link-local"):
        UrlPolicy(allow_private=True).check("http://169.254.169.254/latest")
    rng = random.Random(7)
    alphabet = "aZ09.-:/?#@[]%\\ \t\n"
    matched = 0
    for _ in range(50_000):
        url = rng.choice(("http://", "https://", "HtTpS://")) + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 14))
        )
        plain = _PLAIN_WEB_URL.match(url)
        if plain is None:
            continue
        matched += 1
        assert plain.group(2).lower() == (urlsplit(url.strip()).hostname or "").lower(), url
    assert matched > 1000


# -- 4. parsers that would fetch the network ------------------------------------------------


def jsonld_project(tmp_path, context_url, **project):
    document = {
        "@context": context_url,
        "@id": "https://museum.example/item/1",
        "@type": "VisualArtwork",
        "name": "A horse",
        "identifier": "1",
    }
    (tmp_path / "items.jsonld").write_text(json.dumps(document), encoding="utf-8")
    remote = project.pop("remote_contexts", None)
    lines = ["[project]"] + [f"{key} = {str(value).lower()}" for key, value in project.items()]
    lines += [
        "[sources.file]",
        'plugin = "rdf-file"',
        'path = "items.jsonld"',
        *(["remote_contexts = true"] if remote else []),
    ]
    (tmp_path / "monalia.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


CONTEXT = json.dumps({"@context": {"@vocab": "http://schema.org/"}}).encode()


def test_a_remote_jsonld_context_is_not_fetched_unless_allowed(servers, tmp_path, cli):
    host = servers(lambda m, p: (200, {"Content-Type": "application/ld+json"}, CONTEXT))
    jsonld_project(tmp_path, host.url + "/context.jsonld")
    refused = cli("harvest", project=tmp_path)
    assert refused.exit_code != 0 and "remote_contexts = true" in refused.output
    assert host.seen == []
    # allowed, through the policy: a private address is still refused ...
    jsonld_project(tmp_path, host.url + "/context.jsonld", remote_contexts=True)
    refused = cli("harvest", project=tmp_path)
    assert refused.exit_code != 0 and "allow_private_addresses" in refused.output
    assert host.seen == []
    # ... until the project allows it; then it is fetched once and the records come in
    jsonld_project(
        tmp_path,
        host.url + "/context.jsonld",
        remote_contexts=True,
        allow_private_addresses=True,
    )
    done = cli("harvest", project=tmp_path)
    assert done.exit_code == 0, done.output
    assert [(m, p) for m, p, _ in host.seen] == [("GET", "/context.jsonld")]
    summary = cli("runs", project=tmp_path).output
    assert "file" in summary


def test_rdfxml_external_entities_are_not_fetched(servers, tmp_path, cli):
    host = servers(lambda m, p: (200, {}, b"secret"))
    (tmp_path / "items.rdf").write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [<!ENTITY x SYSTEM "{host.url}/x">]>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:s="http://schema.org/"><s:VisualArtwork rdf:about="https://m.example/1">'
        "<s:name>&x;</s:name><s:identifier>1</s:identifier></s:VisualArtwork></rdf:RDF>\n",
        encoding="utf-8",
    )
    (tmp_path / "monalia.toml").write_text(
        '[sources.file]\nplugin = "rdf-file"\npath = "items.rdf"\n',
        encoding="utf-8",
    )
    cli("harvest", project=tmp_path)
    assert host.seen == []


# -- 7. IRIs every strict parser accepts ----------------------------------------------------


def test_written_iris_parse_in_a_strict_parser():
    line = f"{nt_iri('urn:a b')} <http://ex.org/p> {nt_iri('http://ex.org/x{y}|z')} .\n"
    parsed = list(ox.parse(line.encode(), ox.RdfFormat.N_TRIPLES))
    assert str(parsed[0].subject.value) == "urn:a%20b"
    assert str(parsed[0].object.value) == "http://ex.org/x%7By%7D%7Cz"


# -- 9. secrets that do not look like secrets -------------------------------------------------


def test_an_api_key_is_masked_whatever_it_looks_like(servers, tmp_path, cli, monkeypatch):
    from monalia import masking

    key = "KEY/abc123xyz"
    monkeypatch.setenv("EUROPEANA_API_KEY", key)
    escaped = key.replace("/", "\\/")
    body = (
        '{"success": false, "error": "Invalid API key ' + escaped + '", "apikey": "' + key + '"}'
    ).encode()
    api = servers(lambda m, p: (400, {"Content-Type": "application/json"}, body))
    (tmp_path / "monalia.toml").write_text(
        "[sources.eu]\n"
        'plugin = "europeana"\n'
        f'endpoint = "{api.url}/search.json"\nhttp = {{ retries = 0 }}\n',
        encoding="utf-8",
    )
    try:
        result = cli("harvest", project=tmp_path)
        shown = cli("runs", "show", "1", project=tmp_path)
    finally:
        masking.forget_all()
    assert result.exit_code != 0
    for text in (result.output, shown.output):
        assert "abc123xyz" not in text
    assert api.seen  # it was asked, with the key in the query; nothing printed or kept it


def test_secrets_inside_a_payload_are_masked_at_any_depth():
    from monalia import masking
    from monalia.api.records import Record

    masking.remember("KEY/abc123xyz")
    try:
        record = Record(
            source_id="1",
            iri="https://m.example/1",
            raw={"a": [{"b": {"link": "https://api/x?wskey=KEY/abc123xyz"}}]},
        )
        assert b"abc123xyz" not in record.raw_json()
        assert "abc123xyz" not in json.dumps(masking.mask_value(record.raw))
        assert masking.mask("a KEY%2Fabc123xyz b") == "a *** b"  # its URL spelling too
    finally:
        masking.forget_all()


def test_a_raw_at_sign_in_the_catalog_password_is_refused_without_a_lookup(
    tmp_path, cli, monkeypatch, loopback_only
):
    (tmp_path / "monalia.toml").write_text("[project]\n", encoding="utf-8")
    monkeypatch.setenv("MONALIA_CATALOG", "postgresql://alice:pa@ss-rest@db.example/monalia")
    result = cli("runs", project=tmp_path)
    assert result.exit_code != 0
    assert "%40" in result.output and "ss-rest" not in result.output
    assert not [name for name in loopback_only if "ss-rest" in name]


# -- 10. fail closed ----------------------------------------------------------------------------


def test_an_image_whose_url_cannot_be_checked_is_dropped(tmp_path, monkeypatch):
    from monalia.api.records import ImageRef, Record
    from monalia.api.source import Source

    class Broken(UrlPolicy):
        def check(self, *args, **kwargs):
            raise RuntimeError("the check broke")

    warnings: list[str] = []
    source = Source()
    source.context.url_policy = Broken()
    source.warn = warnings.append
    record = Record(
        source_id="1",
        iri="https://m.example/1",
        images=[ImageRef(url="https://img.example/1.jpg")],
    )
    source._drop_refused_images(record)
    assert record.images == [] and "could not be checked" in warnings[0]


# -- 11. the policy does what the manual says -------------------------------------------------


def test_edm_keeps_file_images_when_the_project_allows_them(tmp_path, cli):
    image = tmp_path / "picture.jpg"
    image.write_bytes(b"not read here")
    edm = f"""<?xml version="1.0" encoding="UTF-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:edm="http://www.europeana.eu/schemas/edm/" xmlns:ore="http://www.openarchives.org/ore/terms/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
 <edm:ProvidedCHO rdf:about="https://m.example/cho/1"><dc:title>One</dc:title>
  <dc:identifier>1</dc:identifier></edm:ProvidedCHO>
 <ore:Aggregation rdf:about="https://m.example/agg/1">
  <edm:aggregatedCHO rdf:resource="https://m.example/cho/1"/>
  <edm:isShownBy rdf:resource="{image.as_uri()}"/>
 </ore:Aggregation>
</rdf:RDF>
"""
    (tmp_path / "items.xml").write_text(edm, encoding="utf-8")
    source = '[sources.edm]\nplugin = "edm"\npath = "items.xml"\n'
    for allowed in (False, True):
        (tmp_path / "monalia.toml").write_text(
            f"[project]\nallow_file_urls = {str(allowed).lower()}\n" + source, encoding="utf-8"
        )
        assert cli("harvest", "--restart", project=tmp_path).exit_code == 0
        from monalia.catalog.database import Catalog

        catalog = Catalog.open(f"sqlite:///{tmp_path / '.monalia' / 'catalog.sqlite'}")
        from conftest import records_of

        images = [i.url for i in records_of(catalog)["https://m.example/cho/1"].images]
        catalog.engine.dispose()
        assert images == ([image.as_uri()] if allowed else [])


def test_images_on_the_configured_host_of_a_source_are_fetched(tmp_path):
    from monalia.api.registry import default_registry
    from monalia.project import load_project
    from monalia.stages.images import configured_hosts

    (tmp_path / "monalia.toml").write_text(
        '[sources.iiif]\nplugin = "iiif"\nurl = "http://127.0.0.1:9/collection.json"\n',
        encoding="utf-8",
    )
    project = load_project(tmp_path / "monalia.toml", default_registry())
    assert configured_hosts(project) == ["127.0.0.1"]


def test_a_context_named_in_a_list_is_caught_too(servers, tmp_path, cli):
    host = servers(lambda m, p: (200, {"Content-Type": "application/ld+json"}, CONTEXT))
    document = {"@context": [host.url + "/c.jsonld"], "@id": "https://m.example/1"}
    (tmp_path / "items.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "monalia.toml").write_text(
        '[sources.file]\nplugin = "rdf-file"\npath = "items.json"\n',
        encoding="utf-8",
    )
    assert cli("harvest", project=tmp_path).exit_code != 0
    assert host.seen == []


def test_the_client_checks_its_first_url_too():
    with HttpClient(FAST) as client, pytest.raises(HttpError, match="link-local"):
        client.get("http://169.254.169.254/latest/meta-data/")


def test_rdf_files_read_in_process_never_fetch_a_context(servers, tmp_path):
    """Thesaurus files, `--store FILE` and local stores are read by pyoxigraph, which loads no
    remote document: a JSON-LD file naming one is refused, and nothing is asked for."""
    from monalia.errors import MonaliaError
    from monalia.rdf.local_store import LocalSparqlClient

    host = servers(lambda m, p: (200, {"Content-Type": "application/ld+json"}, CONTEXT))
    document = {"@context": host.url + "/c.jsonld", "@id": "https://m.example/1", "name": "a"}
    (tmp_path / "store.jsonld").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(MonaliaError, match="cannot read"):
        LocalSparqlClient(tmp_path / "store.jsonld")
    assert host.seen == []
