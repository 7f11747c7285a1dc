"""Several learning tasks in one project, scores rolled up the thesaurus, labels in every
language, and the subjects matched from text published as their own graph.

The project is the demo's (`monalia.demo`): a "subjects" task over REPR (cheval, arbre, bateau)
and a "technique" task over TECH (contour, aplat); its thesaurus has French and English labels
and an "animal" concept above "cheval"."""

from __future__ import annotations

import json
import re

import pyoxigraph as ox
import pytest
import rdflib

from monalia.demo.collection import ANIMAL, HORSE, build_sample

pytestmark = pytest.mark.slow  # two models trained, every stage run

ML = "http://ns.inria.fr/monalia/"
DCTERMS_SUBJECT = rdflib.URIRef("http://purl.org/dc/terms/subject")


def two_task_project(folder, catalog_url: str):
    build_sample(folder, notices=120, epochs=2)
    path = folder / "monalia.toml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'catalog = "[^"]*"', f'catalog = "{catalog_url}"', text, count=1)
    text = text.replace(
        'stages = ["harvest", "images", "label", "train", "enrich"]',
        'stages = ["harvest", "images", "label", "train", "enrich", "publish"]',
    )
    path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The two-task demo project run once on SQLite, for the tests that read it."""
    from click.testing import CliRunner

    from monalia.cli import cli as command

    folder = tmp_path_factory.mktemp("tasks") / "demo"
    two_task_project(folder, f"sqlite:///{folder / 'catalog.sqlite'}")
    result = CliRunner().invoke(command, ["--project", str(folder), "-q", "run"])
    assert result.exit_code == 0, result.output
    return folder


def models_by_dataset(folder) -> dict[str, str]:
    from sqlalchemy import select

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import DatasetRow, ModelRow
    from monalia.project import load_project

    catalog = Catalog.open(load_project(folder / "monalia.toml").catalog_url)
    with catalog.session() as session:
        rows = session.execute(
            select(DatasetRow.name, ModelRow.name).join(
                ModelRow, ModelRow.dataset_id == DatasetRow.id
            )
        ).all()
    catalog.close()
    return dict(rows)


def test_two_tasks_go_the_whole_way_each_with_its_own_dataset_model_and_graphs(
    tmp_path, catalog_url, cli
):
    folder = two_task_project(tmp_path / "demo", catalog_url)
    result = cli("run", project=folder)
    assert result.exit_code == 0, result.output

    models = models_by_dataset(folder)
    assert set(models) == {"demo", "technique"}
    assert models["technique"].startswith("technique-")

    out = folder / "out"
    technique = rdflib.Graph().parse(out / f"model-{models['technique']}.ttl")
    subjects = rdflib.Graph().parse(out / f"model-{models['demo']}.ttl")
    vocab = rdflib.URIRef(ML + "vocabID")
    assert {str(o) for o in technique.objects(None, vocab)} == {"TECH"}
    assert {str(o) for o in subjects.objects(None, vocab)} == {"REPR"}
    technique_classes = {
        str(o) for o in technique.objects(None, rdflib.URIRef(ML + "containsClass"))
    }
    assert technique_classes == {
        "urn:monalia:demo:concept/contour",
        "urn:monalia:demo:concept/aplat",
    }

    # each task's commands find its own model; the first task is the default
    noise = cli("--task", "technique", "report", "noise", "--format", "json", project=folder)
    assert noise.exit_code == 0, noise.output
    assert {f["class_label"] for f in json.loads(noise.stdout)} <= {"contour", "aplat"}
    found = cli("search", "contour", "--task", "technique", "--format", "json", project=folder)
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout), "outlined pictures are found by the technique model"
    assert all(f["scores"] == models["technique"] for f in json.loads(found.stdout))
    default = cli("search", "cheval", "--format", "json", project=folder)
    assert {f["scores"] for f in json.loads(default.stdout)} == {models["demo"]}
    wrong = cli("search", "contour", project=folder)
    assert wrong.exit_code != 0 and "no class 'contour'" in wrong.output
    evaluated = cli("--task", "technique", "evaluate", project=folder)
    assert evaluated.exit_code == 0, evaluated.output
    assert "contour" in evaluated.output
    unknown = cli("--task", "material", "label", project=folder)
    assert unknown.exit_code != 0
    assert "no task 'material'" in unknown.output and "subjects, technique" in unknown.output

    # the subjects matched from text: one graph per task, valid against its shape
    import pyshacl

    shapes = rdflib.Graph().parse("ontology/shapes.ttl")
    for dataset, concepts in (
        ("demo", {HORSE}),
        ("technique", {"urn:monalia:demo:concept/contour"}),
    ):
        graph = rdflib.Graph().parse(out / f"matched-subjects-{dataset}.ttl")
        conforms, _, text = pyshacl.validate(graph, shacl_graph=shapes)
        assert conforms, text
        linked = {str(o) for o in graph.objects(None, DCTERMS_SUBJECT)}
        assert concepts <= linked
        how = {str(o) for o in graph.objects(None, rdflib.URIRef(ML + "matchedBy"))}
        assert how == {"prefLabel"}
    records = rdflib.Graph().parse(out / "records-jocondelab.ttl")
    assert not set(records.objects(None, DCTERMS_SUBJECT)) & {
        rdflib.URIRef("urn:monalia:demo:concept/contour")
    }, "the matched links stay out of the institution's records graph"


def test_a_broader_concept_ranks_by_the_rolled_up_score_as_sparql_does(demo_run, cli):
    folder = demo_run
    found = cli("search", "animal", "--limit", "500", "--format", "json", project=folder)
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)
    assert results and {f["class"] for f in results} == {ANIMAL}
    assert all(f["via"] == ["cheval"] for f in results)
    scores = [f["score"] for f in results]
    assert scores == sorted(scores, reverse=True)
    horses = cli("search", "cheval", "--limit", "500", "--format", "json", project=folder)
    assert [f["record"] for f in json.loads(horses.stdout)] == [f["record"] for f in results]

    # the same ranking from the embedded store with plain SPARQL over skos:broader
    model = models_by_dataset(folder)["demo"]
    from importlib.resources import files

    text = (files("monalia.ontology") / "queries" / "rollup-search.rq").read_text("utf-8")
    store = ox.Store.read_only(str(folder / "store"))
    graph = f"urn:monalia:demo:graph/model/{model}"
    bound = text.replace("?scores", f"<{graph}>").replace("?concept", f"<{ANIMAL}>")
    rows = list(store.query(bound))
    assert [row["record"].value for row in rows] == [f["record"] for f in results]
    assert [round(float(row["rolledUp"].value), 4) for row in rows] == scores

    # a name the model has no class for, nor any concept above one, is refused in one line
    wrong = cli("search", "licorne", project=folder)
    assert wrong.exit_code != 0 and "broader concepts: animal" in wrong.output

    silence = cli("report", "silence", "--level", "animal", "--format", "json", project=folder)
    assert silence.exit_code == 0, silence.output
    for finding in json.loads(silence.stdout):
        assert finding["class"] == ANIMAL and finding["annotated"] is False
    noise = cli("report", "noise", "--level", "animal", "--format", "json", project=folder)
    assert noise.exit_code == 0, noise.output
    for finding in json.loads(noise.stdout):
        assert finding["annotated"] is True and finding["via"] == ["cheval"]


def test_labels_in_every_language_the_thesaurus_has(demo_run, cli):
    folder = demo_run
    english = cli("search", "horse", "--lang", "en", "--format", "json", project=folder)
    assert english.exit_code == 0, english.output
    assert {f["class_label"] for f in json.loads(english.stdout)} == {"horse"}
    french = cli("search", "horse", "--format", "json", project=folder)
    assert {f["class_label"] for f in json.loads(french.stdout)} == {"cheval"}
    noise = cli("report", "noise", "--lang", "en", "--format", "json", project=folder)
    assert {f["class_label"] for f in json.loads(noise.stdout)} <= {"horse", "tree", "boat"}

    model = models_by_dataset(folder)["demo"]
    graph = rdflib.Graph().parse(folder / "out" / f"model-{model}.ttl")
    pref = rdflib.URIRef("http://www.w3.org/2004/02/skos/core#prefLabel")
    labels = {(str(o), o.language) for o in graph.objects(rdflib.URIRef(HORSE), pref)}
    assert labels == {("cheval", "fr"), ("horse", "en")}
    assert (
        rdflib.URIRef(HORSE),
        rdflib.URIRef("http://www.w3.org/2004/02/skos/core#broader"),
        rdflib.URIRef(ANIMAL),
    ) in graph

    # the rolled-up threshold is published with the model
    rolled = list(graph.subjects(rdflib.URIRef(ML + "concept"), rdflib.URIRef(ANIMAL)))
    assert len(rolled) == 1
    narrower = set(graph.objects(rolled[0], rdflib.URIRef(ML + "narrowerClass")))
    assert narrower == {rdflib.URIRef(HORSE)}
    horse_setting = next(
        s
        for s in graph.subjects(rdflib.URIRef(ML + "concept"), rdflib.URIRef(HORSE))
        if (None, rdflib.URIRef(ML + "classSetting"), s) in graph
    )
    threshold = rdflib.URIRef(ML + "threshold")
    assert graph.value(rolled[0], threshold) == graph.value(horse_setting, threshold)

    # the annotation bodies carry both languages
    pages = sorted((folder / "out" / "annotations" / "models" / model).glob("page-*.json"))
    bodies = [
        body
        for annotation in json.loads(pages[0].read_text("utf-8"))["items"]
        for body in annotation["body"]
        if isinstance(body, dict) and body.get("type") == "TextualBody"
    ]
    assert {"fr", "en"} <= {body.get("language") for body in bodies}


def test_labels_come_through_exact_matches_when_the_matched_scheme_is_loaded(tmp_path):
    from monalia.rdf.class_context import class_context
    from monalia.rdf.thesaurus import Thesaurus

    source = tmp_path / "two-schemes.ttl"
    source.write_text(
        """@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
<urn:a:cheval> a skos:Concept ; skos:prefLabel "cheval"@fr ; skos:broader <urn:a:animal> ;
    skos:exactMatch <urn:b:horse> .
<urn:a:animal> a skos:Concept ; skos:prefLabel "animal"@fr .
<urn:b:horse> a skos:Concept ; skos:prefLabel "horse"@en, "Pferd"@de ; skos:altLabel "steed"@en .
""",
        encoding="utf-8",
    )
    with Thesaurus() as thesaurus:
        thesaurus.load(source)
        context = class_context(thesaurus, ["urn:a:cheval"])
    assert context.broader == [("urn:a:cheval", "urn:a:animal")]
    assert set(context.preferred("urn:a:cheval")) == {
        ("cheval", "fr"),
        ("horse", "en"),
        ("Pferd", "de"),
    }
    assert ("steed", "en", "alt") in context.labels["urn:a:cheval"]
    assert context.preferred("urn:a:animal") == [("animal", "fr")]


def test_the_workbench_labels_classes_in_the_language_a_curator_chooses(demo_run):
    from starlette.testclient import TestClient

    from monalia.catalog.database import Catalog
    from monalia.project import load_project
    from monalia.web.app import Settings, create_app
    from monalia.web.workbench import Workbench

    project = load_project(demo_run / "monalia.toml")
    catalog = Catalog.open(project.catalog_url)
    workbench = Workbench(catalog, project)
    settings = Settings(
        reviewer="marie",
        login_required=False,
        read_only=False,
        users_file=demo_run / "workbench-users.txt",
        allowed_hosts=("testserver",),
    )
    client = TestClient(create_app(workbench, settings))
    home = client.get("/")
    assert home.status_code == 200
    assert workbench.languages == ["fr", "en"]
    assert '<option value="en">' in home.text
    classes = lambda page: re.findall(r"<tr>\s*<td>([^<]+)</td>", page)  # noqa: E731
    assert classes(home.text) == ["cheval", "arbre", "bateau"]
    english = client.get("/", params={"lang": "en"})
    assert classes(english.text) == ["horse", "tree", "boat"]
    # the choice is kept for the next pages, and a term in either language finds the class
    assert classes(client.get("/").text) == ["horse", "tree", "boat"]
    found = client.get("/search", params={"q": "horse"})
    assert found.status_code == 200 and "horse —" in found.text
    suggested = client.get("/suggest", params={"q": "hor"})
    assert any(entry["term"] == "horse" for entry in suggested.json())
    catalog.close()


def test_the_hybrid_ranking_fuses_the_image_score_with_the_metadatas_evidence(demo_run, cli):
    from monalia.curation.hybrid import DEFAULT_WEIGHTS, fuse

    folder = demo_run
    found = cli(
        "search",
        "cheval",
        "--rank",
        "hybrid",
        "--min-score",
        "0",
        "--limit",
        "1000",
        "--format",
        "json",
        project=folder,
    )
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)
    assert len(results) == 120, "every record the model scored is ranked"
    for finding in results:
        expected = fuse(finding["image_score"], finding["evidence"], DEFAULT_WEIGHTS)
        assert finding["score"] == pytest.approx(expected, abs=1e-4)
        assert (finding["evidence"] in ("class", "narrower")) == finding["annotated"]
    scores = [f["score"] for f in results]
    assert scores == sorted(scores, reverse=True)
    # a mention lifts a record above an unmentioned one with the same image score
    for finding in results:
        if finding["annotated"] and 0.01 < finding["image_score"] < 0.99:
            assert finding["score"] > finding["image_score"]
    plain = cli("search", "cheval", "--limit", "5", "--format", "json", project=folder)
    assert all(f["evidence"] is None and f["image_score"] is None for f in json.loads(plain.stdout))
    silence = cli("report", "silence", "--rank", "hybrid", "--format", "json", project=folder)
    assert silence.exit_code == 0, silence.output
    for finding in json.loads(silence.stdout):  # silence is what the metadata does not say
        assert finding["evidence"] in (None, "text")


def test_evidence_from_subjects_narrower_terms_and_prose():
    from monalia.curation.findings import (
        DC_DESCRIPTION,
        DC_SUBJECT,
        DC_TITLE,
        SUBJECT_TEXT,
        CurationClass,
    )
    from monalia.curation.hybrid import evidence_of, fuse

    horse = CurationClass(
        HORSE,
        "cheval",
        frozenset({HORSE, "urn:foal"}),
        frozenset({"cheval", "poulain"}),
        0.5,
        0.1,
        0.9,
    )

    class Records:  # the store's answer for each record's details
        def _record_details(self, records):
            return {
                "r1": {DC_SUBJECT: [("uri", HORSE)]},
                "r2": {SUBJECT_TEXT: [("literal", "Poulain")]},
                "r3": {DC_TITLE: [("literal", "Étude de chevaux ; un Cheval blanc")]},
                "r4": {DC_DESCRIPTION: [("literal", "chevalet et palette")]},
                "r5": {},
            }

    found = evidence_of(Records(), horse, ["r1", "r2", "r3", "r4", "r5"])
    assert found == {"r1": "class", "r2": "narrower", "r3": "text", "r4": None, "r5": None}
    weights = {"class": 0.9, "narrower": 0.8, "text": 0.5}
    assert fuse(0.3, None, weights) == 0.3
    assert fuse(0.5, "class", weights) == pytest.approx(0.9)  # even odds times 9
    assert fuse(0.5, "text", weights) == pytest.approx(0.5)  # a coin's worth of evidence
    assert fuse(0.2, "narrower", weights) == pytest.approx(0.5)  # 1:4 times 4:1
    assert fuse(0.001, "class", weights) < 0.01  # sure it is not there: still low
