"""Publishing records as RDF through the Turtle sink; lifecycle hooks seen by a plugin."""

from __future__ import annotations

import gzip

import pytest
import rdflib
from sqlalchemy import select

from monalia import hookimpl
from monalia.api.registry import get_plugin_manager
from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow
from monalia.project import load_project
from monalia.rdf.terms import DCTERMS, IRI, ML, Literal, TurtleWriter
from monalia.stages.harvest import harvest
from monalia.stages.publish import publish_records

GRAPH_FILE = "out/records-local.ttl"


def test_published_turtle_holds_every_record(project, cli):
    assert cli("harvest", project=project).exit_code == 0
    result = cli("publish", project=project)
    assert result.exit_code == 0, result.output
    graph = rdflib.Graph().parse(project / GRAPH_FILE, format="turtle")
    records = set(graph.subjects(rdflib.RDF.type, rdflib.URIRef(ML + "Record")))
    assert len(records) == 20
    notice = rdflib.URIRef("https://data.example.org/t/record/local/obj-000001")
    assert str(graph.value(notice, rdflib.URIRef(DCTERMS + "title"))) == "Objet 1"
    subjects = set(graph.objects(notice, rdflib.URIRef(DCTERMS + "subject")))
    assert subjects == {
        rdflib.URIRef("http://data.culture.fr/thesaurus/resource/ark:/67717/T523-2037")
    }
    labels = {str(o) for o in graph.objects(notice, rdflib.URIRef(ML + "subjectText"))}
    assert labels == {"cheval"}


def test_republishing_replaces_the_file(project, cli):
    assert cli("harvest", project=project).exit_code == 0
    assert cli("publish", project=project).exit_code == 0
    first = (project / GRAPH_FILE).read_text()
    assert cli("publish", project=project).exit_code == 0
    assert (project / GRAPH_FILE).read_text() == first


def test_failed_publish_leaves_the_previous_output(project, cli, monkeypatch):
    assert cli("harvest", project=project).exit_code == 0
    assert cli("publish", project=project).exit_code == 0
    before = (project / GRAPH_FILE).read_text()

    def explode(row):
        raise RuntimeError("disk full")
        yield

    monkeypatch.setattr("monalia.stages.publish.record_triples", explode)
    result = cli("publish", project=project)
    assert result.exit_code != 0
    assert (project / GRAPH_FILE).read_text() == before
    assert not list((project / "out").glob(".*partial"))
    project_config = load_project(project / "monalia.toml")
    runs = cli("runs", "--stage", "publish", project=project)
    assert "failed" in runs.output
    assert project_config.sinks["files"].info.name == "turtle"


def test_gzip_ntriples_output(project, cli):
    toml = (
        (project / "monalia.toml")
        .read_text()
        .replace('path = "out/{graph}.ttl"', 'path = "out/all.nt.gz"')
    )
    (project / "monalia.toml").write_text(toml)
    assert cli("harvest", project=project).exit_code == 0
    assert cli("publish", project=project).exit_code == 0
    with gzip.open(project / "out/all.nt.gz", "rt", encoding="utf-8") as handle:
        graph = rdflib.Graph().parse(data=handle.read(), format="nt")
    assert len(set(graph.subjects(rdflib.RDF.type, rdflib.URIRef(ML + "Record")))) == 20


@pytest.mark.parametrize(
    "value",
    ['quote " and backslash \\', "line\nbreak\ttab", "accents àéî — “curly”", "emoji 🖼"],
)
def test_turtle_writer_escapes_literals_so_they_read_back(tmp_path, value):
    path = tmp_path / "x.ttl"
    with path.open("w", encoding="utf-8") as out:
        writer = TurtleWriter(out)
        writer.write([(IRI("https://e.org/a b"), DCTERMS + "title", Literal(value, lang="fr"))])
        writer.close()
    graph = rdflib.Graph().parse(path, format="turtle")
    ((_, _, obj),) = list(graph)
    assert str(obj) == value and obj.language == "fr"


def test_lifecycle_hooks_see_each_stage(project):
    seen: list[tuple] = []

    class Observer:
        @hookimpl
        def stage_started(self, run):
            seen.append(("stage_started", run.stage, run.target))

        @hookimpl
        def stage_finished(self, run):
            seen.append(("stage_finished", run.stage, run.status, run.counts["new"]))

        @hookimpl
        def record_harvested(self, record, change, run):
            seen.append(("record_harvested", record.source_id, change))

        @hookimpl
        def item_failed(self, item, message, run):
            seen.append(("item_failed", item))

        @hookimpl
        def graph_published(self, sink, graph, triples, run):
            seen.append(("graph_published", graph, triples > 0))

    with (project / "records.jsonl").open("a") as out:
        out.write("{broken\n")
    pm = get_plugin_manager()
    pm.register(Observer())
    project_config = load_project(project / "monalia.toml")
    catalog = Catalog.open(project_config.catalog_url)
    harvest(catalog, project_config.sources["local"], hooks=pm.hook)
    publish_records(catalog, project_config.sinks["files"], hooks=pm.hook)
    assert seen[0] == ("stage_started", "harvest", "local")
    assert ("record_harvested", "obj-000000", "new") in seen
    assert ("item_failed", "line 21") in seen
    assert ("stage_finished", "harvest", "done", 20) in seen
    assert ("graph_published", "https://data.example.org/t/graph/records/local", True) in seen
    # publish: each record written is new (seen = new + changed + unchanged + failed)
    assert seen[-1] == ("stage_finished", "publish", "done", 20)
    with catalog.session() as session:
        assert len(session.scalars(select(RecordRow)).all()) == 20
