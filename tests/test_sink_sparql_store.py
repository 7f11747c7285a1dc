"""The SPARQL store sink against a real Oxigraph server: one set of scores per (record, model,
class) however often it is published, valid against the shapes, MonaLIA's query answered, and a
load cut by the server's death repaired by publishing again."""

from __future__ import annotations

import gzip
from importlib.resources import files

import pytest
import rdflib
import requests
from sqlalchemy import select
from support.scored_catalog import (
    MODEL,
    build_scored_catalog,
    jocondelab_notices,
    monalia_query_expected,
    planted_scores,
)
from support.servers import OxigraphServer, oxigraph_binary

from monalia.catalog.models import RunRow
from monalia.rdf.scores import model_graph_iri
from monalia.rdf.sparql import bind

GRAPH = model_graph_iri("urn:monalia:", MODEL)

STORE = """
[sinks.store]
plugin = "sparql-store"
preset = "oxigraph"
url = "{url}"
chunk_triples = {chunk}

[sinks.store.http]
retries = 1
backoff = 0.05
timeout = 5

[sinks.file]
plugin = "turtle"
path = "out/{{graph}}.ttl.gz"
"""


@pytest.fixture(scope="module")
def union_store():
    """Oxigraph answering queries over the union of its graphs, as a Joconde KB would be served."""
    binary = oxigraph_binary()
    if binary is None:
        pytest.skip("the oxigraph server is not installed (pip install oxigraph)")
    server = OxigraphServer(binary, union_default_graph=True)
    yield server
    server.stop()


def scores_in_store(server) -> dict[tuple[str, str], list[float]]:
    found: dict[tuple[str, str], list[float]] = {}
    for row in server.select(
        f"""PREFIX ml: <http://ns.inria.fr/monalia/>
        SELECT ?record ?concept ?score WHERE {{ GRAPH <{GRAPH}> {{
            ?record ml:imageClassifier ?c . ?c ml:detected ?d . ?d a ?concept ; ml:score ?score .
        }} }}"""
    ):
        found.setdefault((row["record"], row["concept"]), []).append(float(row["score"]))
    return found


def graph_of(server) -> rdflib.Graph:
    """The store's copy of the model graph."""
    answer = requests.post(
        server.query_url,
        data={"query": f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }}"},
        headers={"Accept": "application/n-triples"},
        timeout=60,
    )
    answer.raise_for_status()
    return rdflib.Graph().parse(data=answer.text, format="nt")


def monalia_query(label: str) -> str:
    text = (files("monalia.ontology") / "queries" / "monalia-search-by-score.rq").read_text()
    return bind(text, searchCategory_label=(label, "fr"), classifierName=MODEL)


def test_publishing_twice_leaves_one_valid_set_that_monalias_query_reads(
    tmp_path, catalog_url, cli, union_store
):
    union_store.clear()
    catalog = build_scored_catalog(
        tmp_path, catalog_url, cli, extra=STORE.format(url=union_store.url, chunk=500)
    )
    planted = planted_scores(catalog)
    for _ in range(2):
        result = cli("enrich", "--publish-only", project=tmp_path)
        assert result.exit_code == 0, result.output
        stored = scores_in_store(union_store)
        assert set(stored) == set(planted)
        for key, score in planted.items():
            assert stored[key] == [pytest.approx(score, abs=5e-5)]

    from pyshacl import validate

    shapes = rdflib.Graph().parse(
        data=(files("monalia.ontology") / "shapes.ttl").read_text(encoding="utf-8"),
        format="turtle",
    )
    conforms, _, report = validate(graph_of(union_store), shacl_graph=shapes)
    assert conforms, report

    # MonaLIA's query, unchanged but for its bound values, over the Joconde KB + the scores
    union_store.load(jocondelab_notices(catalog), "text/turtle")
    expected = monalia_query_expected(catalog, "cheval")
    assert expected, "the planted scores give the query rows to find"
    rows = union_store.select(monalia_query("cheval"))
    assert [(row["ref"], round(float(row["score"]), 4)) for row in rows] == expected
    assert all(row["title"].startswith("Œuvre") for row in rows)

    # ... and over the Turtle file loaded elsewhere (rdflib), with the same answer
    elsewhere = rdflib.Graph()
    (written,) = (tmp_path / "out").glob("*.ttl.gz")
    with gzip.open(written, "rt", encoding="utf-8") as handle:
        elsewhere.parse(data=handle.read(), format="turtle")
    elsewhere.parse(data=jocondelab_notices(catalog), format="turtle")
    answer = elsewhere.query(monalia_query("cheval"))
    assert [(str(row.ref), round(float(row.score), 4)) for row in answer] == expected


def test_a_store_killed_mid_load_is_repaired_by_publishing_again(
    tmp_path, catalog_url, cli, monkeypatch
):
    binary = oxigraph_binary()
    if binary is None:
        pytest.skip("the oxigraph server is not installed (pip install oxigraph)")
    server = OxigraphServer(binary, location=tmp_path / "store")
    try:
        catalog = build_scored_catalog(
            tmp_path, catalog_url, cli, extra=STORE.format(url=server.url, chunk=100)
        )
        planted = planted_scores(catalog)
        from monalia.net.http import HttpClient

        posts = []
        original = HttpClient.request

        def dies_on_third_chunk(self, method, url, **kwargs):
            if url == server.store_url:
                posts.append(url)
                if len(posts) == 3:
                    server.kill()
            return original(self, method, url, **kwargs)

        monkeypatch.setattr(HttpClient, "request", dies_on_third_chunk)
        result = cli("enrich", "--publish-only", "--sink", "store", project=tmp_path)
        assert result.exit_code != 0
        assert server.store_url in result.output and "failed after 2 tries" in result.output
        with catalog.session() as session:
            run = session.scalars(select(RunRow).where(RunRow.stage == "publish")).one()
        assert run.status == "failed" and "failed after 2 tries" in run.message

        monkeypatch.setattr(HttpClient, "request", original)
        server.start()  # the same store folder: what was loaded before the crash is there
        cut = scores_in_store(server)
        assert 0 < len(cut) < len(planted)

        again = cli("enrich", "--publish-only", "--sink", "store", project=tmp_path)
        assert again.exit_code == 0, again.output
        repaired = scores_in_store(server)
        assert set(repaired) == set(planted)
        assert all(len(scores) == 1 for scores in repaired.values())
    finally:
        server.stop()


def test_a_password_variable_that_is_not_set_is_one_clear_line(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("MONALIA_TEST_STORE_PASSWORD", raising=False)
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    store = STORE.format(url="http://127.0.0.1:9", chunk=10).replace(
        'preset = "oxigraph"',
        'preset = "oxigraph"\nusername = "curator"\npassword_env = "MONALIA_TEST_STORE_PASSWORD"',
    )
    build_scored_catalog(tmp_path, catalog_url, cli, count=3, extra=store)
    result = cli("enrich", "--publish-only", "--sink", "store", project=tmp_path)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: store: the store's password is read from $MONALIA_TEST_STORE_PASSWORD, "
        "which is not set"
    )
