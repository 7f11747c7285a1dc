"""Base class of trainer plugins: from a dataset to a model with its card.

A trainer fits a model and evaluates it; the framework prepares the output folder, writes the
model card (classes, thresholds, metrics, settings, library versions) next to the weights and
registers the model in the catalog.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from monalia.plugin import Plugin


@dataclass
class DatasetSpec:
    """The dataset a trainer receives: classes and, per split, (image path, class URIs) pairs."""

    hash: str
    classes: list[dict[str, str]]  # {"uri": ..., "label": ...}
    splits: dict[str, list[tuple[str, list[str]]]]


@dataclass
class TrainedModel:
    """What a trainer produced: where the weights are, thresholds per class, metrics."""

    weights: Path
    thresholds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    backbone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer(Plugin):
    """Base of every trainer plugin. Subclasses implement `fit`."""

    kind: ClassVar[str] = "trainer"

    def fit(self, dataset: DatasetSpec, output_dir: Path, progress=None) -> TrainedModel:
        """Train on `dataset`, write the weights under `output_dir`, return what was made."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit()")

    def library_versions(self) -> dict[str, str]:
        """Versions of the libraries the model depends on, for the model card."""
        return {"python": platform.python_version()}

    def train(self, dataset: DatasetSpec, output_dir: Path, progress=None) -> dict[str, Any]:
        """Fit, then write the model card beside the weights; return the card."""
        from monalia import __version__

        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.json").write_text(
            json.dumps(self.describe_settings(), indent=2, sort_keys=True), encoding="utf-8"
        )
        model = self.fit(dataset, output_dir, progress)
        card = {
            "trainer": self.name,
            "backbone": model.backbone,
            "dataset_hash": dataset.hash,
            "classes": dataset.classes,
            "thresholds": model.thresholds,
            "metrics": model.metrics,
            "settings": self.describe_settings(),
            "weights": model.weights.name,
            "versions": {"monalia": __version__, **self.library_versions()},
            **model.extra,
        }
        (output_dir / "model_card.json").write_text(
            json.dumps(card, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8"
        )
        return card
