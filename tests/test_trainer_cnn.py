"""The CNN trainer on drawn pictures: it learns, resumes exactly, stops early, survives bad files.

Tiny pictures (64 px) and few epochs keep this fast on a CPU; the backbone is the offline
EfficientNet-Lite0 with its ImageNet weights, as in a real project.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from support.drawn_images import SHAPES, draw_set

from monalia.api.trainer import DatasetSpec, Sample, TrainOptions
from monalia.errors import MonaliaError
from monalia.plugins.trainers.cnn.checkpoint import load_checkpoint
from monalia.plugins.trainers.cnn.data import cache_side
from monalia.plugins.trainers.cnn.fit import LAST, Training, _pos_weight
from monalia.plugins.trainers.cnn.settings import CnnSettings
from monalia.plugins.trainers.cnn.trained_model import load_trained_model

CLASSES = [{"uri": f"urn:test:{shape}", "label": shape} for shape in SHAPES]


def spec_from(drawn, splits=(0.6, 0.2, 0.2)) -> DatasetSpec:
    cut_train = int(len(drawn) * splits[0])
    cut_val = cut_train + int(len(drawn) * splits[1])
    parts = {"train": drawn[:cut_train], "val": drawn[cut_train:cut_val], "test": drawn[cut_val:]}
    return DatasetSpec(
        name="drawn",
        hash="d" * 64,
        classes=CLASSES,
        splits={
            split: [
                Sample(path, tuple(f"urn:test:{shape}" for shape in sorted(shapes)), path.stem)
                for path, shapes in items
            ]
            for split, items in parts.items()
        },
    )


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    return draw_set(tmp_path_factory.mktemp("drawn"), 150, seed=3)


def settings(**overrides) -> CnnSettings:
    values = {"input_size": 64, "epochs": 3, "batch_size": 16, "workers": 0, "patience": 0}
    return CnnSettings(**{**values, **overrides})


# MONALIA_TEST_DEVICE=cuda runs these tests on a GPU machine.
DEVICE = os.environ.get("MONALIA_TEST_DEVICE", "cpu")


def options(tmp_path, **overrides) -> TrainOptions:
    return TrainOptions(**{"cache_dir": tmp_path / "cache", "device": DEVICE, **overrides})


def settled(result, spec):
    """The thresholds and metrics the framework derives from a training's raw scores."""
    from monalia.learning.evaluation import settle_model

    return settle_model(spec.classes, result.split_scores)


@pytest.mark.slow
def test_fine_tuning_the_offline_backbone_beats_chance_by_far(drawn, tmp_path):
    spec = spec_from(drawn)
    result = Training(spec, tmp_path / "model", settings(), options(tmp_path)).run()
    made = settled(result, spec)

    test = made.metrics["test"]
    positives = np.mean(
        [[f"urn:test:{s}" in sample.labels for s in SHAPES] for sample in spec.splits["test"]]
    )
    assert test["map"] > 0.85, f"test mAP {test['map']:.3f}; chance is about {positives:.2f}"
    assert test["roc_auc"] > 0.9
    assert made.metrics["evaluated_on"] == "test"
    assert set(made.thresholds) == {c["uri"] for c in CLASSES}
    assert all(0 < value < 1 for value in made.thresholds.values())
    history = result.metrics["history"]
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # the lr decays ×0.1 every lr_step epochs (MonaLIA's schedule)
    decayed = Training(
        spec_from(drawn[:40]), tmp_path / "m2", settings(epochs=2, lr_step=1), options(tmp_path)
    )
    lrs = [entry["lr"] for entry in decayed.run().metrics["history"]]
    assert lrs == pytest.approx([0.001, 0.0001])

    # the cache holds one small copy per image, named by its key
    cached = list((tmp_path / "cache").rglob("*.jpg"))
    assert len(cached) == len(drawn)
    assert {path.stem for path in cached} == {path.stem for path, _ in drawn}
    with Image.open(cached[0]) as small:
        assert min(small.size) == cache_side(64) < 96


def test_the_plugin_writes_a_card_that_rebuilds_the_model(drawn, tmp_path):
    from monalia.api.trainer import LoadOptions
    from monalia.learning.evaluation import evaluate_model, score_samples
    from monalia.plugins.trainers.cnn import CnnTrainer

    spec = spec_from(drawn[:60])
    trainer = CnnTrainer(settings=settings(epochs=1))
    card = trainer.train(spec, tmp_path / "model", options(tmp_path))
    assert [(c["uri"], c["label"]) for c in card["classes"]] == [
        (c["uri"], c["label"]) for c in CLASSES
    ]
    assert all(c["threshold"] == card["thresholds"][c["uri"]] for c in card["classes"])

    model, loaded = load_trained_model(tmp_path / "model", DEVICE)
    assert loaded == card
    assert not any(m.training for m in model.modules()), "a loaded model is in eval mode"
    # in float32 on the CPU the batch size changes nothing; under autocast on a GPU, kernels
    # differ by batch size, so the GPU run uses the training's own
    batch = 7 if DEVICE == "cpu" else card["settings"]["batch_size"]
    # scored again the way enrich and evaluate score: through the trainer's predictor
    predictor = trainer.load(tmp_path / "model", LoadOptions(DEVICE, batch, 0))
    scores = score_samples(predictor, spec.splits["test"])
    again = evaluate_model(card, scores, "test")
    assert again.summary["map"] == pytest.approx(card["metrics"]["test"]["map"], abs=1e-6)

    weights = tmp_path / "model" / card["weights"]
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")
    with pytest.raises(MonaliaError, match="not the file its model card describes"):
        load_trained_model(tmp_path / "model")


@pytest.mark.slow
def test_a_resumed_training_ends_exactly_like_an_uninterrupted_one(drawn, tmp_path):
    spec = spec_from(drawn[:90])
    whole = Training(spec, tmp_path / "whole", settings(), options(tmp_path)).run()

    class Killed(Exception):
        pass

    def kill_after_first_epoch(message: str) -> None:
        if message.startswith("epoch 1/3"):
            raise Killed

    with pytest.raises(Killed):
        Training(
            spec, tmp_path / "cut", settings(), options(tmp_path, say=kill_after_first_epoch)
        ).run()
    assert load_checkpoint(tmp_path / "cut" / LAST)["epoch"] == 1
    said = []
    # resumed with loader worker processes: augmentations do not depend on who decodes
    resumed = Training(
        spec, tmp_path / "cut", settings(workers=2), options(tmp_path, say=said.append)
    ).run()

    assert any(line.startswith("resuming from") for line in said), said
    assert np.array_equal(resumed.split_scores["test"][1], whole.split_scores["test"][1])
    for (name, a), (_, b) in zip(
        torch.load(whole.weights, weights_only=True).items(),
        torch.load(resumed.weights, weights_only=True).items(),
        strict=True,
    ):
        assert torch.equal(a, b), f"{name} differs after resuming"
    other_seed = Training(spec, tmp_path / "seed1", settings(seed=1), options(tmp_path)).run()
    assert not np.array_equal(other_seed.split_scores["test"][1], whole.split_scores["test"][1])


def test_early_stopping_keeps_the_best_epoch(drawn, tmp_path):
    said = []
    # no epoch can beat the first by a whole unit of mAP: training stops after `patience`
    result = Training(
        spec_from(drawn[:60]),
        tmp_path / "model",
        settings(epochs=6, patience=2, min_delta=1.0),
        options(tmp_path, say=said.append),
    ).run()
    assert result.extra["epochs_run"] == 3
    assert result.metrics["best_epoch"] == 1
    assert any("early stop after epoch 3" in line for line in said), said


def test_frozen_backbone_trains_only_the_head(drawn, tmp_path):
    from monalia.learning.backbones import build_model

    result = Training(
        spec_from(drawn[:60]),
        tmp_path / "model",
        settings(epochs=1, freeze_backbone=True),
        options(tmp_path),
    ).run()
    trained = torch.load(result.weights, weights_only=True)
    torch.manual_seed(0)
    start = build_model("efficientnet_lite0", len(CLASSES)).state_dict()
    changed = {name for name, value in trained.items() if not torch.equal(value, start[name])}
    assert changed == {"classifier.1.weight", "classifier.1.bias"}, sorted(changed)[:5]


def test_focal_loss_and_positive_weights(drawn, tmp_path):
    result = Training(
        spec_from(drawn[:60]),
        tmp_path / "model",
        settings(epochs=1, loss="focal", focal_alpha=0.25),
        options(tmp_path),
    ).run()
    assert math.isfinite(result.metrics["history"][0]["train_loss"])
    targets = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=np.float32)
    uris = [c["uri"] for c in CLASSES]
    auto = _pos_weight(CnnSettings(pos_weight="auto", pos_weight_max=3), targets, uris)
    # 2 positives / 3 negatives; no positive at all -> 1; capped at pos_weight_max
    assert auto.tolist() == pytest.approx([1.5, 1.0, 1.0])
    given = _pos_weight(CnnSettings(pos_weight={uris[1]: 4.0}), targets, uris)
    assert given.tolist() == [1.0, 4.0, 1.0]


def test_an_unreadable_image_is_left_out_and_named(drawn, tmp_path):
    spec = spec_from(drawn[:60])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(drawn[0][0].read_bytes()[:300])  # a truncated JPEG
    html = tmp_path / "error.jpg"
    html.write_text("<html><body>Service unavailable</body></html>")
    spec.splits["train"].append(Sample(broken, ("urn:test:disc",), "broken"))
    spec.splits["val"].append(Sample(html, ("urn:test:bars",), "html"))
    result = Training(spec, tmp_path / "model", settings(epochs=1), options(tmp_path)).run()
    assert sorted(result.extra["unreadable"]) == sorted([str(broken), str(html)])
    assert result.extra["images"]["train"] == len(spec.splits["train"])
    val_targets, val_scores = result.split_scores["val"]
    assert len(val_targets) == len(val_scores) == len(spec.splits["val"]) - 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_on_cuda_training_uses_mixed_precision_and_its_model_scores_alike_on_the_cpu(
    drawn, tmp_path
):
    from monalia.api.trainer import LoadOptions
    from monalia.learning.evaluation import score_samples
    from monalia.plugins.trainers.cnn import CnnTrainer

    spec = spec_from(drawn)
    trainer = CnnTrainer(settings=settings(epochs=3, workers=2))
    card = trainer.train(spec, tmp_path / "model", options(tmp_path, device="cuda"))
    assert card["device"].startswith("cuda")
    assert card["precision"] in {"bfloat16", "float16"}
    assert card["metrics"]["test"]["map"] > 0.8

    test = spec.splits["test"]
    on_gpu = score_samples(trainer.load(tmp_path / "model", LoadOptions("cuda", 32, 2)), test)
    on_cpu = score_samples(trainer.load(tmp_path / "model", LoadOptions("cpu", 32, 0)), test)
    # autocast on the GPU, float32 on the CPU: the same model within half-precision rounding
    difference = np.abs(on_gpu.scores - on_cpu.scores)
    assert difference.mean() < 0.04 and difference.max() < 0.1
