"""The train stage end to end: catalog dataset -> `monalia train` (killed, resumed) -> registered
model with its card -> `monalia evaluate` tables and plots -> `monalia models`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image
from sqlalchemy import select
from support.drawn_catalog import SHAPE_OF, build_project
from support.skos_data import DOG, HORSE, TREE

from monalia.catalog.database import Catalog
from monalia.catalog.models import DatasetMemberRow, ImageRow, ModelRow, RunEventRow, RunRow


def start_training(folder) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONALIA_")}
    return subprocess.Popen(
        [sys.executable, "-m", "monalia", "--project", str(folder), "-q", "train"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(folder, process, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((folder / ".monalia" / "models").glob("*/last.pt"))
        if found:
            return found[0]
        if process.poll() is not None:
            pytest.fail(f"training ended before its first checkpoint: {process.stderr.read()}")
        time.sleep(0.2)
    pytest.fail("no checkpoint within the time limit")


@pytest.mark.slow
def test_train_killed_resumes_registers_the_model_and_evaluates(tmp_path, catalog_url, cli):
    folder = tmp_path
    catalog = build_project(folder, catalog_url, cli)
    with catalog.session() as session:
        gone = session.scalars(
            select(ImageRow.path)
            .join(DatasetMemberRow, DatasetMemberRow.image_id == ImageRow.id)
            .where(DatasetMemberRow.split == "train")
            .order_by(ImageRow.id)
            .limit(1)
        ).one()
    (folder / ".monalia" / gone).unlink()  # a file deleted since the image stage

    process = start_training(folder)
    wait_for_checkpoint(folder, process)
    process.send_signal(signal.SIGKILL)
    process.wait()

    result = cli("train", project=folder)
    assert result.exit_code == 0, result.output
    for label in ("cheval", "arbre", "chien"):
        assert label in result.output
    assert "test: mAP" in result.output

    with catalog.session() as session:
        runs = session.scalars(
            select(RunRow).where(RunRow.stage == "train").order_by(RunRow.id)
        ).all()
        assert [run.status for run in runs] == ["interrupted", "done"]
        done = runs[1]
        assert done.failed == 1 and done.new == done.seen - 1  # each image learnt from is new
        assert done.seen == done.new + done.changed + done.unchanged + done.failed
        events = session.scalars(
            select(RunEventRow).where(RunEventRow.run_id == runs[1].id).order_by(RunEventRow.id)
        ).all()
        failures = [event for event in events if event.level == "error"]
        assert [event.item for event in failures] == [str(folder / ".monalia" / gone)]
        assert "missing" in failures[0].message
        resumed = [event.message for event in events if event.level == "info"]
        assert resumed == ["resumed from the checkpoint after epoch 1"], resumed
        model = session.scalars(select(ModelRow)).one()
        session.expunge(model)
    card_path = folder / ".monalia" / model.path / "model_card.json"
    card = json.loads(card_path.read_text())
    assert card == model.card
    assert model.name.startswith("drawn-efficientnet_lite0-") and card["name"] == model.name
    assert [(c["uri"], c["label"]) for c in card["classes"]] == [
        (HORSE, "cheval"),
        (TREE, "arbre"),
        (DOG, "chien"),
    ]
    assert set(card["thresholds"]) == set(SHAPE_OF)
    assert all(c["threshold"] == card["thresholds"][c["uri"]] for c in card["classes"])
    assert card["metrics"]["test"]["map"] > 0.7, card["metrics"]["test"]
    assert card["backbone"] == "efficientnet_lite0" and card["settings"]["epochs"] == 3
    assert {"torch", "torchvision", "timm", "monalia"} <= set(card["versions"])
    assert card["input"] == {"size": 64, "mean": [0.5] * 3, "std": [0.5] * 3}
    weights = folder / ".monalia" / model.path / card["weights"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card["weights_sha256"]
    assert model.dataset_id is not None and card["dataset_hash"] == card["dataset"]["hash"]

    again = cli("train", project=folder)
    assert again.exit_code == 0 and "unchanged" in again.output

    evaluated = cli("evaluate", "--out", str(tmp_path / "eval"), project=folder)
    assert evaluated.exit_code == 0, evaluated.output
    assert "cheval" in evaluated.output and "test: mAP" in evaluated.output
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["summary"]["map"] == pytest.approx(card["metrics"]["test"]["map"], abs=1e-6)
    for name in ("training_curves.png", "per_class_ap.png", "precision_recall.png"):
        with Image.open(tmp_path / "eval" / name) as plot:
            assert plot.format == "PNG" and plot.width > 300, name
    listed = cli("models", project=folder)
    assert model.name in listed.output

    pipeline = cli("run", project=folder)
    assert pipeline.exit_code == 0, pipeline.output
    with catalog.session() as session:
        last = session.scalars(
            select(RunRow).where(RunRow.stage == "train").order_by(RunRow.id.desc())
        ).first()
        # the model was not trained again: each of the dataset's images seen and unchanged
        assert last.status == "done" and last.new == 0 and last.unchanged == last.seen > 1


def test_asking_for_a_gpu_that_is_not_there_is_one_clear_error(tmp_path, cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    build_project(tmp_path, catalog_url, cli, count=40)
    result = cli("train", "--device", "cuda", project=tmp_path)
    assert result.exit_code == 2
    assert "no CUDA GPU" in result.output
    with Catalog.open(catalog_url).session() as session:
        assert session.scalars(select(RunRow).where(RunRow.stage == "train")).all() == []


def test_a_wrong_trainer_setting_names_the_line(tmp_path, cli):
    (tmp_path / "monalia.toml").write_text(
        '[trainer]\nplugin = "cnn"\nbackbone = "alexnet"\n', encoding="utf-8"
    )
    result = cli("check", project=tmp_path)
    assert result.exit_code == 2
    assert "line 3" in result.output and "unknown backbone 'alexnet'" in result.output
