"""Trainer: a linear probe, one logistic regression per class on a frozen ImageNet backbone.

Every image goes through the backbone once; its pooled features train one regularised logistic
regression per class (scikit-learn). Thresholds are chosen on validation to maximise F-beta and
the metrics are measured on test, as the CNN trainer does. Seconds on a CPU for a few thousand
images: a quick baseline, and a model that scores like any other through `Trainer.load`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.trainer import (
    DatasetSpec,
    LoadOptions,
    Predictor,
    Sample,
    TrainedModel,
    Trainer,
    TrainOptions,
    model_weights,
    read_model_card,
)
from monalia.errors import MonaliaError

WEIGHTS = "probe.npz"
# A class with only positives (or only negatives) among the training images gets a constant
# score: its share of positives, kept away from 0 and 1.
CONSTANT_SCORE_LIMITS = (0.01, 0.99)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class LinearProbeSettings(PluginSettings):
    backbone: str = "efficientnet_lite0"  # see `monalia.learning.backbones.BACKBONES`
    weights: str = "imagenet"  # the backbone's ImageNet weights, or a path to a state dict
    regularization: float = Field(1.0, gt=0)  # inverse strength (scikit-learn's C)
    max_iterations: int = Field(1000, ge=10)  # scikit-learn's max_iter, per class
    beta: float = Field(1.0, gt=0)  # thresholds maximise F-beta on validation
    # how scores are calibrated on validation: "auto" measures and picks (monalia.learning.calibration)
    calibration: Literal["auto", "none", "temperature", "platt"] = "auto"
    batch_size: int = Field(32, ge=1)  # images per forward pass
    device: str = "auto"  # auto (CUDA when there is one), cpu, cuda, cuda:N


def fit_probes(features, targets, classes: int, settings: LinearProbeSettings):
    """One logistic regression per class on standardised features, the standardisation then
    folded into the weights: (weights, intercepts) that score raw features. A class that is
    always or never present gets a constant score."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    # features on one scale: the regularisation then means the same for every backbone
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    standardized = (features - mean) / scale
    coefficients = np.zeros((classes, features.shape[1]), dtype=np.float32)
    intercepts = np.zeros(classes, dtype=np.float32)
    for column in range(classes):
        truth = targets[:, column]
        if 0 < truth.sum() < len(truth):
            model = LogisticRegression(C=settings.regularization, max_iter=settings.max_iterations)
            model.fit(standardized, truth)
            coefficients[column] = model.coef_[0]
            intercepts[column] = model.intercept_[0]
        else:
            share = float(np.clip(truth.mean(), *CONSTANT_SCORE_LIMITS))
            intercepts[column] = math.log(share / (1 - share))
    # fold the standardisation into the weights: scores need only the raw features
    folded = (coefficients / scale).astype(np.float32)
    folded_intercepts = (intercepts - folded @ mean).astype(np.float32)
    return folded, folded_intercepts


class FeatureReader:
    """A frozen backbone turning decoded images into pooled feature vectors."""

    def __init__(self, backbone: str, weights: str | Path | None, device: str):
        import torch

        from monalia.learning.backbones import backbone_spec, feature_extractor
        from monalia.learning.devices import resolve_device

        self.spec = backbone_spec(backbone)
        self.device = resolve_device(device)
        self.model, self.dimensions = feature_extractor(backbone, weights)
        self.model.to(self.device).eval()
        self.mean = torch.tensor(self.spec.mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(self.spec.std, device=self.device).view(1, 3, 1, 1) * 255

    def features(self, pixels: np.ndarray) -> np.ndarray:
        """Features of decoded images: uint8 (N, 3, S, S) in, float32 (N, dimensions) out."""
        import numpy as np
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device).float()
            output = self.model((batch - self.mean) / self.std)
            if isinstance(output, tuple):  # inception_v3 in training mode; not in eval
                output = output[0]
        return output.float().cpu().numpy()

    def read(
        self, samples: Sequence[Sample], batch_size: int, cache_dir: Path | None, progress=None
    ) -> tuple[np.ndarray, list[int], list[int]]:
        """Features of the readable samples, their positions, and the positions not readable."""
        import numpy as np

        from monalia.learning.image_decode import decode_batches

        rows, kept, unreadable = [], [], []
        batches = decode_batches(
            [s.path for s in samples],
            [s.key for s in samples],
            self.spec.input_size,
            batch_size,
            cache_dir,
        )
        for pixels, decoded, bad in batches:
            if pixels is not None:
                rows.append(self.features(pixels))
            kept.extend(decoded)
            unreadable.extend(bad)  # reported on the model card, left out of training
            if progress is not None:
                progress.advance(len(decoded) + len(bad))
        features = np.concatenate(rows) if rows else np.zeros((0, self.dimensions), np.float32)
        return features, kept, unreadable


def _targets(samples: Sequence[Sample], kept: list[int], uris: list[str]) -> np.ndarray:
    import numpy as np

    column = {uri: k for k, uri in enumerate(uris)}
    targets = np.zeros((len(kept), len(uris)), dtype=np.float32)
    for row, index in enumerate(kept):
        for uri in samples[index].labels:
            if uri in column:
                targets[row, column[uri]] = 1
    return targets


def _sigmoid(values: np.ndarray) -> np.ndarray:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))


class LinearProbePredictor(Predictor):
    """Backbone features, then one logistic regression per class."""

    def __init__(self, card: dict[str, Any], reader: FeatureReader, weights: Any, options):
        import numpy as np

        super().__init__(
            [entry["uri"] for entry in card["classes"]],
            card["input"]["size"],
            card["input"]["mean"],
            card["input"]["std"],
            str(reader.device),
            options.batch_size,
            options.cache_dir,
        )
        self.reader = reader
        self.coefficients = np.asarray(weights["coefficients"], dtype=np.float32)
        self.intercepts = np.asarray(weights["intercepts"], dtype=np.float32)

    def score_batch(self, pixels: np.ndarray) -> np.ndarray:
        import numpy as np

        features = self.reader.features(pixels)
        return _sigmoid(features @ self.coefficients.T + self.intercepts).astype(np.float32)

    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        return self.reader.features(pixels)

    def score_and_embed_batch(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        features = self.reader.features(pixels)  # one backbone pass for both
        scores = _sigmoid(features @ self.coefficients.T + self.intercepts).astype(np.float32)
        return scores, features

    def explain(self, pixels: np.ndarray, class_index: int) -> np.ndarray:
        """Grad-CAM through the backbone and the class's regression, a linear layer."""
        import numpy as np
        import torch

        from monalia.learning.backbones import cam_layer
        from monalia.learning.explain import grad_cam

        reader = self.reader
        linear = torch.nn.Linear(self.coefficients.shape[1], self.coefficients.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(self.coefficients))
            linear.bias.copy_(torch.from_numpy(self.intercepts))
        network = torch.nn.Sequential(reader.model, linear.to(reader.device)).eval()
        batch = torch.from_numpy(np.ascontiguousarray(pixels[None])).to(reader.device).float()
        batch = (batch - reader.mean) / reader.std
        layer = cam_layer(reader.model, reader.spec.name)
        return grad_cam(network, layer, batch, class_index)


class LinearProbeTrainer(Trainer):
    """Logistic regression per class on frozen ImageNet features: seconds on a CPU."""

    name = "linear-probe"
    Settings = LinearProbeSettings
    runtime_settings = ("device", "batch_size")

    def _weights(self, weights: str | None = None) -> str | Path | None:
        """The backbone's weights: "imagenet", None for "none" (random, for tests), or a path."""
        weights = weights or self.settings.weights
        if weights == "none":
            return None
        return weights if weights == "imagenet" else self.context.path(weights)

    def fit(self, dataset: DatasetSpec, output_dir: Path, options: TrainOptions) -> TrainedModel:
        import numpy as np

        settings: LinearProbeSettings = self.settings  # type: ignore[assignment]
        reader = FeatureReader(
            settings.backbone, self._weights(), options.device or settings.device
        )
        uris = [entry["uri"] for entry in dataset.classes]
        cache_dir = options.cache_dir
        split_data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        unreadable: list[str] = []
        for split, samples in dataset.splits.items():
            if not samples:
                continue
            label = f"features {split}"
            if options.progress is not None:
                with options.progress(label, len(samples), "images") as progress:
                    features, kept, bad = reader.read(
                        samples, settings.batch_size, cache_dir, progress
                    )
            else:
                features, kept, bad = reader.read(samples, settings.batch_size, cache_dir)
            unreadable.extend(str(samples[index].path) for index in bad)
            split_data[split] = (features, _targets(samples, kept, uris))
            options.say(f"{split}: {len(kept)} images read, {reader.dimensions} features each")
        if "train" not in split_data or not len(split_data["train"][0]):
            raise MonaliaError(f"dataset {dataset.name} has no readable training image")
        folded, folded_intercepts = fit_probes(*split_data["train"], len(uris), settings)

        def scores_of(split: str) -> tuple[np.ndarray, np.ndarray]:
            split_features, split_targets = split_data[split]
            return split_targets, _sigmoid(split_features @ folded.T + folded_intercepts)

        # the raw scores of validation and test: the framework calibrates them, picks the
        # thresholds and computes the metrics (monalia.learning.evaluation.settle_model)
        split_scores = {
            split: scores_of(split)
            for split in ("val", "test")
            if split in split_data and len(split_data[split][0])
        }
        weights_path = output_dir / WEIGHTS
        np.savez(weights_path, coefficients=folded, intercepts=folded_intercepts)
        return TrainedModel(
            weights=weights_path,
            thresholds=dict.fromkeys(uris, 0.5),
            split_scores=split_scores,
            backbone=settings.backbone,
            extra={
                "input": {
                    "size": reader.spec.input_size,
                    "mean": list(reader.spec.mean),
                    "std": list(reader.spec.std),
                },
                "features": reader.dimensions,
                "images": {split: len(data[0]) for split, data in split_data.items()},
                "unreadable": sorted(unreadable),
                "beta": settings.beta,
            },
        )

    def load(self, folder: Path, options: LoadOptions) -> Predictor:
        import numpy as np

        card = read_model_card(folder)
        path = model_weights(folder, card)
        weights = self._weights(card.get("settings", {}).get("weights", "imagenet"))
        reader = FeatureReader(card["backbone"], weights, options.device)
        with np.load(path) as stored:
            return LinearProbePredictor(card, reader, dict(stored), options)

    def library_versions(self) -> dict[str, str]:
        import platform

        import numpy as np
        import sklearn
        import torch

        return {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        }


@hookimpl
def register_trainers():
    return [LinearProbeTrainer]
