"""Base class of trainer plugins: from a dataset to a model with its card.

A trainer fits a model and evaluates it; the framework prepares the output folder, writes the
model card (classes, thresholds, metrics, settings, library versions) next to the weights and
registers the model in the catalog.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from monalia.hashing import file_sha256
from monalia.plugin import Plugin


@dataclass(frozen=True)
class Sample:
    """One image of a dataset: its file, its class URIs, its content hash (a cache key)."""

    path: Path
    labels: tuple[str, ...]
    key: str | None = None


@dataclass
class DatasetSpec:
    """The dataset a trainer receives: classes and, per split (train, val, test), its samples."""

    name: str
    hash: str
    classes: list[dict[str, str]]  # {"uri": ..., "label": ...}
    splits: dict[str, list[Sample]]


@dataclass
class TrainOptions:
    """How this training runs, apart from the model's settings: none of it changes the result."""

    device: str | None = None  # overrides the trainer's setting ("cpu", "cuda", "cuda:1")
    resume: bool = True  # continue from the last checkpoint in the output folder, if any
    say: Callable[[str], None] = field(default=lambda message: None)
    # progress(label, total, unit) -> a context manager with .advance(n)
    progress: Callable[[str, int, str], Any] | None = None
    cache_dir: Path | None = None  # resized copies of the images, shared between trainings


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

    def fit(self, dataset: DatasetSpec, output_dir: Path, options: TrainOptions) -> TrainedModel:
        """Train on `dataset`, write the weights under `output_dir`, return what was made."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit()")

    def library_versions(self) -> dict[str, str]:
        """Versions of the libraries the model depends on, for the model card."""
        return {"python": platform.python_version()}

    def train(
        self, dataset: DatasetSpec, output_dir: Path, options: TrainOptions | None = None
    ) -> dict[str, Any]:
        """Fit, then write the model card beside the weights; return the card."""
        from monalia import __version__

        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.json").write_text(
            json.dumps(self.describe_settings(), indent=2, sort_keys=True), encoding="utf-8"
        )
        model = self.fit(dataset, output_dir, options or TrainOptions())
        card = {
            "name": output_dir.name,
            "trainer": self.name,
            "backbone": model.backbone,
            "dataset": {"name": dataset.name, "hash": dataset.hash},
            "dataset_hash": dataset.hash,
            "classes": [
                {**entry, "threshold": model.thresholds.get(entry["uri"])}
                for entry in dataset.classes
            ],
            "thresholds": model.thresholds,
            "metrics": model.metrics,
            "settings": self.describe_settings(),
            "weights": model.weights.name,
            "weights_sha256": file_sha256(model.weights),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"monalia": __version__, **self.library_versions()},
            **model.extra,
        }
        (output_dir / "model_card.json").write_text(
            json.dumps(card, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8"
        )
        return card
