"""The enrich stage: every fetched image scored once per model, predictions in the catalog,
the model's named graph in the sinks in MonaLIA's shape, valid against ontology/shapes.ttl."""

from __future__ import annotations

import gzip
from importlib.resources import files
from pathlib import Path

import pytest
import rdflib
from sqlalchemy import func, select
from support.drawn_catalog import SHAPE_OF, build_project

from monalia.catalog.models import ImageRow, ModelRow, PredictionRow, RecordRow, RunRow
from monalia.rdf.scores import classifier_class_iri, model_graph_iri

pytest.importorskip("torch", reason="the train extra is not installed")

ML = rdflib.Namespace("http://ns.inria.fr/monalia/")

SINKS = """
[sinks.file]
plugin = "turtle"
path = "out/{graph}.ttl.gz"

[enrich]
chunk_size = 16
batch_size = 8
workers = 0
"""


@pytest.fixture
def enriched(tmp_path, catalog_url, cli):
    """A project with a trained model (one short epoch), its images not yet scored."""
    catalog = build_project(tmp_path, catalog_url, cli, count=60, extra=SINKS, epochs=1)
    result = cli("train", project=tmp_path)
    assert result.exit_code == 0, result.output
    return tmp_path, catalog


def predictions(catalog) -> list[tuple]:
    with catalog.session() as session:
        return session.execute(
            select(
                RecordRow.iri,
                ImageRow.url,
                PredictionRow.class_uri,
                PredictionRow.score,
                PredictionRow.run_id,
                PredictionRow.image_sha256,
            )
            .select_from(PredictionRow)
            .join(RecordRow, RecordRow.id == PredictionRow.record_id)
            .join(ImageRow, ImageRow.id == PredictionRow.image_id)
            .order_by(PredictionRow.image_id, PredictionRow.class_uri)
        ).all()


def model_graph(folder: Path, catalog) -> tuple[str, rdflib.Graph]:
    with catalog.session() as session:
        name = session.scalars(select(ModelRow.name)).one()
    files_written = list((folder / "out").glob("*.ttl.gz"))
    assert len(files_written) == 1, files_written
    graph = rdflib.Graph()
    with gzip.open(files_written[0], "rt", encoding="utf-8") as handle:
        graph.parse(data=handle.read(), format="turtle")
    return name, graph


def scores_in(graph: rdflib.Graph) -> dict[tuple[str, str], list[float]]:
    found: dict[tuple[str, str], list[float]] = {}
    rows = graph.query(
        """
        PREFIX ml: <http://ns.inria.fr/monalia/>
        SELECT ?record ?concept ?score WHERE {
            ?record ml:imageClassifier [ ml:detected [ a ?concept ; ml:score ?score ] ] .
        }"""
    )
    for record, concept, score in rows:
        found.setdefault((str(record), str(concept)), []).append(float(score))
    return found


def test_enrich_scores_each_image_once_and_publishes_valid_monalia_rdf(enriched, cli):
    folder, catalog = enriched
    result = cli("enrich", project=folder)
    assert result.exit_code == 0, result.output

    rows = predictions(catalog)
    with catalog.session() as session:
        images = session.scalar(select(func.count()).select_from(ImageRow))
    assert len(rows) == images * len(SHAPE_OF)
    assert all(0.0 <= row.score <= 1.0 for row in rows)
    assert all(row.image_sha256 for row in rows)

    name, graph = model_graph(folder, catalog)
    in_rdf = scores_in(graph)
    assert len(in_rdf) == len(rows)
    for row in rows:
        assert in_rdf[(row.iri, row.class_uri)] == [pytest.approx(row.score, abs=5e-5)]
    # MonaLIA's classifier class, subclass of ml:classifierRepresentedSubject, labelled by model
    classifier = rdflib.URIRef(classifier_class_iri(name))
    assert (classifier, rdflib.RDFS.subClassOf, ML.classifierRepresentedSubject) in graph
    assert (classifier, rdflib.RDFS.label, rdflib.Literal(name)) in graph
    assert (ML.classifierRepresentedSubject, ML.vocabID, rdflib.Literal("REPR")) in graph
    assert not any(isinstance(term, rdflib.BNode) for triple in graph for term in triple)

    from pyshacl import validate

    shapes = rdflib.Graph().parse(
        data=(files("monalia.ontology") / "shapes.ttl").read_text(encoding="utf-8"),
        format="turtle",
    )
    conforms, _, report = validate(graph, shacl_graph=shapes)
    assert conforms, report

    # a second run scores nothing again and publishes the same scores, once each
    again = cli("enrich", project=folder)
    assert again.exit_code == 0, again.output
    assert predictions(catalog) == rows
    with catalog.session() as session:
        last = session.scalars(
            select(RunRow).where(RunRow.stage == "enrich").order_by(RunRow.id.desc())
        ).first()
    assert (last.new, last.unchanged) == (0, images)
    _, republished = model_graph(folder, catalog)
    assert scores_in(republished) == in_rdf


def test_a_killed_enrich_resumes_without_gaps_or_duplicates(enriched, cli, monkeypatch):
    from monalia.stages.enrich import scoring as stage

    folder, catalog = enriched
    written = []
    original = stage.write_predictions

    def killed_after_two_chunks(*args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(original(*args, **kwargs))
        return written[-1]

    monkeypatch.setattr(stage, "write_predictions", killed_after_two_chunks)
    first = cli("enrich", project=folder)
    assert first.exit_code != 0
    partial = predictions(catalog)
    assert len(partial) == sum(written) * len(SHAPE_OF) == 32 * len(SHAPE_OF)
    monkeypatch.setattr(stage, "write_predictions", original)

    second = cli("enrich", project=folder)
    assert second.exit_code == 0, second.output
    rows = predictions(catalog)
    with catalog.session() as session:
        images = session.scalar(select(func.count()).select_from(ImageRow))
        statuses = session.scalars(
            select(RunRow.status).where(RunRow.stage == "enrich").order_by(RunRow.id)
        ).all()
    assert statuses == ["interrupted", "done"]
    keys = [(row.iri, row.url, row.class_uri) for row in rows]
    assert len(keys) == len(set(keys)) == images * len(SHAPE_OF)
    # the chunks written before the kill were not scored again
    first_run = {row.run_id for row in partial}
    assert [row for row in rows if row.run_id in first_run] == partial


def test_unreadable_and_missing_images_are_counted_and_the_rest_scored(enriched, cli):
    folder, catalog = enriched
    with catalog.session() as session:
        broken, gone = session.execute(select(ImageRow.path).order_by(ImageRow.id).limit(2)).all()
    (folder / ".monalia" / broken.path).write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (folder / ".monalia" / gone.path).unlink()
    result = cli("enrich", "--limit", "30", project=folder)
    assert result.exit_code == 0, result.output
    with catalog.session() as session:
        run = session.scalars(select(RunRow).where(RunRow.stage == "enrich")).one()
        scored = session.scalar(select(func.count(func.distinct(PredictionRow.image_id))))
    assert (run.seen, run.new, run.failed) == (30, 28, 2)
    assert scored == 28
    assert "could not be decoded" in result.output or run.message


def test_publish_only_needs_a_model_graph_in_the_catalog(enriched, cli):
    folder, catalog = enriched
    result = cli("enrich", "--publish-only", project=folder)
    assert result.exit_code == 0, result.output
    name, graph = model_graph(folder, catalog)
    assert not scores_in(graph)
    graph_iri = model_graph_iri("urn:monalia:", name)
    assert (rdflib.URIRef(graph_iri), rdflib.RDF.type, rdflib.PROV.Entity) in graph


def regions_rows(catalog) -> list[tuple]:
    from monalia.catalog.models import RegionRow

    with catalog.session() as session:
        return session.execute(
            select(
                RegionRow.image_id,
                RegionRow.class_index,
                RegionRow.boxes,
                RegionRow.image_width,
                RegionRow.image_height,
                RegionRow.run_id,
            ).order_by(RegionRow.image_id, RegionRow.class_index)
        ).all()


def detections(catalog) -> set[tuple[int, int]]:
    """(image, class index) of every score at or above its class's threshold."""
    with catalog.session() as session:
        model = session.scalars(select(ModelRow)).one()
        thresholds = [model.thresholds.get(entry["uri"]) or 0.5 for entry in model.classes]
        rows = session.execute(
            select(PredictionRow.image_id, PredictionRow.class_index, PredictionRow.score)
        ).all()
    return {(i, k) for i, k, score in rows if score >= thresholds[k]}


def test_regions_are_found_once_per_detection_published_and_resumed_after_a_kill(
    enriched, cli, monkeypatch
):
    from monalia.stages.enrich import regions as stage

    folder, catalog = enriched
    # scores first, without regions: a later `--regions` run catches every detection up
    assert cli("enrich", project=folder).exit_code == 0
    assert regions_rows(catalog) == []
    wanted = detections(catalog)
    assert wanted, "the tiny model detects nothing: nothing to locate"

    written = []
    original = stage.write_regions

    def killed_after_one_chunk(*args, **kwargs):
        if written:
            raise KeyboardInterrupt
        written.append(original(*args, **kwargs))
        return written[-1]

    monkeypatch.setattr(stage, "REGION_CHUNK", 4)
    monkeypatch.setattr(stage, "write_regions", killed_after_one_chunk)
    assert cli("enrich", "--regions", project=folder).exit_code != 0
    partial = regions_rows(catalog)
    assert len(partial) == written[0] > 0
    monkeypatch.setattr(stage, "write_regions", original)

    result = cli("enrich", "--regions", project=folder)
    assert result.exit_code == 0, result.output
    rows = regions_rows(catalog)
    assert {(row.image_id, row.class_index) for row in rows} == wanted  # each once, none lost
    assert len(rows) == len(wanted)
    assert rows[: len(partial)] == partial or set(partial) <= set(rows)  # kept, not redone
    for row in rows:
        for x, y, w, h in row.boxes:
            assert x >= 0 and y >= 0 and w >= 1 and h >= 1
            assert x + w <= row.image_width and y + h <= row.image_height
    with catalog.session() as session:
        runs = session.scalars(
            select(RunRow).where(RunRow.stage == "regions").order_by(RunRow.id)
        ).all()
    assert [run.status for run in runs] == ["interrupted", "done"]
    last = runs[-1]
    assert last.seen == last.new + last.changed + last.unchanged + last.failed
    assert (last.unchanged, last.new) == (len(partial), len(wanted) - len(partial))

    # the regions are in the published RDF, valid against the shapes
    _, graph = model_graph(folder, catalog)
    selectors = list(
        graph.subjects(rdflib.RDF.type, rdflib.URIRef("http://www.w3.org/ns/oa#FragmentSelector"))
    )
    boxes = sum(len(row.boxes) for row in rows)
    assert len(selectors) == boxes > 0
    from pyshacl import validate

    shapes = rdflib.Graph().parse(
        data=(files("monalia.ontology") / "shapes.ttl").read_text(encoding="utf-8"),
        format="turtle",
    )
    conforms, _, report = validate(graph, shacl_graph=shapes)
    assert conforms, report

    # scoring again (rescore) replaces the regions with the new scores' in the same pass
    again = cli("enrich", "--regions", "--rescore", project=folder)
    assert again.exit_code == 0, again.output
    rescored = regions_rows(catalog)
    assert {(row.image_id, row.class_index) for row in rescored} == detections(catalog)
    assert {row.run_id for row in rescored} != {row.run_id for row in rows}
