"""The training library: backbones by name, offline weights, checkpoints, multi-label metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra is not installed")

from monalia.errors import MonaliaError  # noqa: E402
from monalia.learning.backbones import (  # noqa: E402
    WeightsMissing,
    backbone_spec,
    build_model,
    offline_weights_path,
)
from monalia.learning.metrics import evaluate_scores, pick_thresholds  # noqa: E402
from monalia.plugins.trainers.cnn.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

MILITARY_UNIFORM = 652  # ImageNet class of the portrait of Grace Hopper


def sample_photo() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def test_the_offline_backbone_loads_imagenet_weights_and_recognises_a_photo():
    from PIL import Image

    model = build_model("efficientnet_lite0", num_classes=3)
    assert model.classifier[-1].out_features == 3
    # the body is ImageNet-trained: put back a 1000-class head with the shipped weights
    full = build_model("efficientnet_lite0", num_classes=1000)
    packaged = torch.load(offline_weights_path(), map_location="cpu", weights_only=True)
    full.classifier[-1].weight.data = packaged["_fc.weight"]
    full.classifier[-1].bias.data = packaged["_fc.bias"]
    full.eval()
    spec = backbone_spec("efficientnet_lite0")
    image = Image.open(sample_photo()).convert("RGB").resize((spec.input_size, spec.input_size))
    pixels = torch.tensor(np.asarray(image) / 255.0, dtype=torch.float32).permute(2, 0, 1)
    pixels = (pixels - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[
        :, None, None
    ]
    with torch.no_grad():
        top = full(pixels[None]).softmax(-1)[0].argmax().item()
    assert top == MILITARY_UNIFORM, "the packaged weights must load in the right places"
    # the 3-class network shares that body exactly
    assert torch.equal(model.conv_stem.weight, full.conv_stem.weight)


@pytest.mark.parametrize(
    "backbone", ["resnet50", "efficientnet_b0", "vgg16_bn", "convnext_tiny", "inception_v3"]
)
def test_torchvision_backbones_say_where_their_weights_were_looked_for(
    backbone, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(WeightsMissing) as error:
        build_model(backbone, num_classes=4)
    message = error.value.message
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in message
    assert "download.pytorch.org" in message and "weights = PATH" in message
    with pytest.raises(WeightsMissing, match=r"nowhere\.pth"):
        build_model(backbone, num_classes=4, weights=tmp_path / "nowhere.pth")


def test_torchvision_backbones_get_a_multilabel_head_and_load_a_weights_file(tmp_path):
    import torchvision

    reference = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet50", num_classes=5, dropout=0.3, weights=path)
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert model.fc[0].p == 0.3 and model.fc[1].out_features == 5
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 5)
    with pytest.raises(MonaliaError, match="unknown backbone 'alexnet'"):
        build_model("alexnet", num_classes=2)


def test_a_checkpoint_round_trips_and_refuses_pickled_objects(tmp_path):
    model = build_model("efficientnet_lite0", num_classes=2, weights=None)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.1)
    path = tmp_path / "last.pt"
    classes = [{"uri": "urn:a", "label": "a"}, {"uri": "urn:b", "label": "b"}]
    save_checkpoint(path, model, optimizer, scheduler, 3, {"lr": 0.001}, classes)
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["classes"] == classes
    assert "torch" in state["versions"]
    again = build_model("efficientnet_lite0", num_classes=2, weights=None)
    again.load_state_dict(state["model"])
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True)
    )
    assert not list(tmp_path.glob("*.partial"))

    evil = tmp_path / "evil.pt"
    # any object that is not plain data would run code on load if unpickled freely
    torch.save({"model": Path("/etc/passwd")}, evil)
    with pytest.raises(MonaliaError, match="cannot be read"):
        load_checkpoint(evil)
    with pytest.raises(MonaliaError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_metrics_per_class_and_thresholds_maximise_f_beta():
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]])
    scores = np.array(
        [
            [0.9, 0.2, 0.1],
            [0.8, 0.7, 0.3],
            [0.3, 0.6, 0.2],
            [0.1, 0.4, 0.4],
            [0.35, 0.1, 0.1],
            [0.2, 0.3, 0.2],
        ]
    )
    per_class, summary = evaluate_scores(targets, scores)
    assert per_class[0].ap == pytest.approx(1.0), "class 0 positives all score above negatives"
    assert per_class[0].roc_auc == pytest.approx(1.0)
    assert per_class[0].recall == pytest.approx(2 / 3) and per_class[0].precision == 1.0
    assert math.isnan(per_class[2].ap), "no positive: no AP"
    assert summary["map"] == pytest.approx((per_class[0].ap + per_class[1].ap) / 2)

    thresholds = pick_thresholds(targets, scores, beta=1.0)
    assert thresholds[0] == pytest.approx(0.35), "the lowest positive score keeps precision 1"
    assert thresholds[2] == 0.5, "a class without positives keeps the default"
    tuned, _ = evaluate_scores(targets, scores, thresholds)
    assert tuned[0].f1 == pytest.approx(1.0) and tuned[0].f1 > per_class[0].f1
    recall_first = pick_thresholds(targets, scores, beta=4.0)
    assert recall_first[1] <= thresholds[1], "a larger beta never raises the threshold"


def test_resized_images_are_the_same_pixels_with_or_without_the_cache(tmp_path):
    from PIL import Image

    from monalia.plugins.trainers.cnn.data import load_resized

    photo = sample_photo()
    plain = np.asarray(load_resized(photo, "k1", 80, None))
    cold = np.asarray(load_resized(photo, "k1", 80, tmp_path))
    warm = np.asarray(load_resized(photo, "k1", 80, tmp_path))
    assert min(plain.shape[:2]) == 80
    assert np.array_equal(plain, cold) and np.array_equal(cold, warm)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["k1.jpg"]

    # a decompression bomb is refused before it is decoded
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 10_000)).save(bomb)
    with pytest.raises(Image.DecompressionBombError):
        load_resized(bomb, "k2", 80, tmp_path)
    assert not list(tmp_path.rglob("k2*"))
