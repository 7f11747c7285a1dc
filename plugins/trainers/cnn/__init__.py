"""Trainer: a multi-label CNN fine-tuned from an ImageNet backbone, as MonaLIA trained its models.

Sigmoid outputs and binary cross-entropy (or focal loss), Adam with a step decay, early stopping
on validation mAP, per-class thresholds chosen on validation to maximise F-beta, and test
metrics at those thresholds. Runs on CUDA when there is one (mixed precision, channels-last),
on the CPU otherwise; EfficientNet-Lite0's weights ship in a package, so it needs no network.

The training library lives beside it: `data` (datasets and loaders), `engine` (one epoch, one
evaluation pass), `fit` (a whole training, resumable), `checkpoint`, `trained_model` (loading a
trained network back) and `scoring` (its `Predictor`). Backbones, metrics and image decoding are
in the toolkit (`monalia.learning`) because other trainers use them too.
"""

from __future__ import annotations

from pathlib import Path

from monalia import hookimpl
from monalia.api.trainer import (
    DatasetSpec,
    LoadOptions,
    Predictor,
    TrainedModel,
    Trainer,
    TrainOptions,
)
from monalia.plugins.trainers.cnn.settings import RUNTIME_SETTINGS, CnnSettings


class CnnTrainer(Trainer):
    """Multi-label CNN fine-tuning (torchvision backbones, offline EfficientNet-Lite0)."""

    name = "cnn"
    Settings = CnnSettings
    runtime_settings = RUNTIME_SETTINGS

    def fit(self, dataset: DatasetSpec, output_dir: Path, options: TrainOptions) -> TrainedModel:
        from monalia.plugins.trainers.cnn.fit import Training  # torch is imported only to train

        settings: CnnSettings = self.settings  # type: ignore[assignment]
        weights_path = None
        if settings.weights not in ("imagenet", "none"):
            weights_path = self.context.path(settings.weights)
        return Training(dataset, output_dir, settings, options, weights_path).run()

    def load(self, folder: Path, options: LoadOptions) -> Predictor:
        from monalia.learning.devices import resolve_device
        from monalia.plugins.trainers.cnn.scoring import CnnPredictor
        from monalia.plugins.trainers.cnn.trained_model import load_trained_model

        device = resolve_device(options.device)
        model, card = load_trained_model(folder, device)
        return CnnPredictor(model, card, device, options)

    def library_versions(self) -> dict[str, str]:
        from monalia.plugins.trainers.cnn.checkpoint import library_versions

        return library_versions()


@hookimpl
def register_trainers():
    return [CnnTrainer]
