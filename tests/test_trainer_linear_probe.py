"""The linear-probe trainer: a second trainer through the same door as the CNN. It trains,
evaluates, enriches (locally and on Ray) and serves search with no core module naming it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from support.drawn_catalog import SHAPE_OF, build_project

from monalia.api.trainer import LoadOptions, Predictor
from monalia.catalog.models import ImageRow, ModelRow, PredictionRow, RunRow, SubjectRow

pytest.importorskip("torch", reason="the train extra is not installed")

REPO = Path(__file__).resolve().parent.parent
PROBE = """[trainer]
plugin = "linear-probe"
batch_size = 16
"""
SINKS = """
[sinks.store]
plugin = "embedded-store"
path = "store"

[enrich]
chunk_size = 16
batch_size = 8
workers = 0

[executor]
cpus = 2
"""


def use_the_probe(folder: Path) -> None:
    """Swap the project's [trainer] table for the linear probe's."""
    path = folder / "monalia.toml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\[trainer\]\n(?:[^\[]*\n)", PROBE + "\n", text, count=1)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A drawn collection labelled, trained with the linear probe and enriched (once for the
    module: the ImageNet backbone reads every picture)."""
    from click.testing import CliRunner

    from monalia.cli import cli as monalia_cli

    folder = tmp_path_factory.mktemp("probe")

    def run(*args, project=folder):
        return CliRunner().invoke(monalia_cli, ["--project", str(project), "-q", *args])

    catalog_url = f"sqlite:///{folder / 'catalog.sqlite'}"
    catalog = build_project(folder, catalog_url, run, count=60, extra=SINKS, epochs=1)
    use_the_probe(folder)
    trained = run("train")
    assert trained.exit_code == 0, trained.output
    enriched = run("enrich")
    assert enriched.exit_code == 0, enriched.output
    published = run("publish")  # the records' subjects, which search reports as annotated
    assert published.exit_code == 0, published.output
    return folder, catalog, run, trained.output


@pytest.mark.slow
def test_it_trains_and_registers_a_model_with_its_card(probed):
    folder, catalog, _, output = probed
    assert "test: mAP" in output, output
    with catalog.session() as session:
        model = session.scalars(select(ModelRow)).one()
    assert model.trainer == "linear-probe"
    card = model.card
    assert card["trainer"] == "linear-probe" and card["input"]["size"] == 224
    assert {entry["uri"] for entry in card["classes"]} == set(SHAPE_OF)
    assert set(card["thresholds"]) == set(SHAPE_OF)
    evaluated = card["metrics"]["evaluated_on"]
    # a handful of test images: well above chance (about 0.45) is what can be asked of them
    assert card["metrics"][evaluated]["map"] > 0.6, card["metrics"]
    assert (folder / ".monalia" / model.path / "probe.npz").is_file()


@pytest.mark.slow
def test_its_scores_rank_the_pictures_of_a_class_first(probed):
    """Drawn discs, triangles and bars are easy for ImageNet features: over the whole collection
    the enriched scores put the records annotated with a class above the others."""
    from sklearn.metrics import average_precision_score

    _, catalog, _, _ = probed
    with catalog.session() as session:
        rows = session.execute(
            select(PredictionRow.record_id, PredictionRow.class_uri, PredictionRow.score)
        ).all()
        annotated = {
            (record, uri)
            for record, uri in session.execute(select(SubjectRow.record_id, SubjectRow.uri))
        }
    for uri in SHAPE_OF:
        truth = [(record, uri) in annotated for record, class_uri, _ in rows if class_uri == uri]
        scores = [score for _, class_uri, score in rows if class_uri == uri]
        assert average_precision_score(truth, scores) > 0.75, uri  # chance: about 0.45


@pytest.mark.slow
def test_evaluate_scores_through_the_trainer(probed):
    folder, _, run, _ = probed
    result = run("evaluate", "--split", "test")
    assert result.exit_code == 0, result.output
    assert "mAP" in result.output
    written = list((folder / ".monalia" / "models").glob("*/evaluation-test/per_class.csv"))
    assert written, "evaluate wrote no per-class table"


@pytest.mark.slow
def test_enrich_scores_every_image_and_search_finds_them(probed):
    _, catalog, run, _ = probed
    with catalog.session() as session:
        images = session.scalar(select(ImageRow.id).order_by(ImageRow.id.desc()).limit(1))
        scored = session.execute(
            select(PredictionRow.image_id, PredictionRow.class_uri, PredictionRow.score)
        ).all()
        enrich = session.scalars(select(RunRow).where(RunRow.stage == "enrich")).one()
    assert enrich.status == "done" and enrich.plugin == "linear-probe"
    assert len({image for image, _, _ in scored}) == images
    assert all(0.0 <= score <= 1.0 for _, _, score in scored)
    found = run("search", "cheval", "--format", "csv")
    assert found.exit_code == 0, found.output
    lines = list(csv.DictReader(io.StringIO(found.stdout)))
    assert len(lines) >= 5, found.output
    assert all(line["class_label"] == "cheval" for line in lines)
    best = lines[:5]
    assert sum(line["annotated"] == "true" for line in best) >= 4, found.output


@pytest.mark.slow
def test_the_predictor_reports_an_unreadable_image_and_scores_the_rest(probed, tmp_path):
    from monalia.api.registry import default_registry

    folder, catalog, _, _ = probed
    with catalog.session() as session:
        model = session.scalars(select(ModelRow)).one()
        path = session.scalar(select(ImageRow.path).limit(1))
    trainer = default_registry().get("trainer", "linear-probe").cls()
    predictor = trainer.load(folder / ".monalia" / model.path, LoadOptions("cpu", 4, 0))
    assert isinstance(predictor, Predictor) and predictor.input_size == 224
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a picture")
    good = folder / ".monalia" / path
    (chunk,) = predictor.score_chunks([(["a", "b", "c"], [good, broken, good], [None] * 3)])
    assert chunk.unreadable == [1]
    assert list(chunk.indices) == [0, 2] and chunk.scores.shape == (2, len(SHAPE_OF))
    assert np.allclose(chunk.scores[0], chunk.scores[1])
    decoded = np.asarray(Image.open(good).convert("RGB").resize((224, 224)))
    assert predictor.score_batch(decoded.transpose(2, 0, 1)[None]).shape == (1, 3)


def test_no_core_module_names_the_probe():
    named = [
        str(path.relative_to(REPO))
        for folder in ("monalia", "harvesters")
        for path in (REPO / folder).rglob("*.py")
        if "linear-probe" in path.read_text(encoding="utf-8")
        or "linear_probe" in path.read_text(encoding="utf-8")
    ]
    assert not named, f"core modules name the linear probe: {named}"


@pytest.mark.slow
def test_ray_enrich_gives_the_local_scores(probed):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    _, catalog, run, _ = probed

    def scores():
        with catalog.session() as session:
            return {
                (image, uri): score
                for image, uri, score in session.execute(
                    select(PredictionRow.image_id, PredictionRow.class_uri, PredictionRow.score)
                )
            }

    local = scores()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        result = run("enrich", "--executor", "ray", "--rescore")
    finally:
        ray.shutdown()
    assert result.exit_code == 0, result.output
    on_ray = scores()
    assert on_ray.keys() == local.keys() and local
    assert max(abs(on_ray[key] - local[key]) for key in local) < 1e-4
