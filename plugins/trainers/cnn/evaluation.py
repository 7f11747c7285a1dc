"""Scoring a trained CNN on a dataset's samples (training's own validation and test passes)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monalia.api.trainer import Sample
from monalia.builtins.trainers.cnn import data as data_module
from monalia.builtins.trainers.cnn.engine import Scores, choose_precision, evaluate


def score_samples(
    model,
    card: dict[str, Any],
    samples: list[Sample],
    device: torch.device,
    batch_size: int = 64,
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress=None,
) -> Scores:
    """Sigmoid scores of `model` on `samples`, read the way the model was trained to see them."""
    size = card["input"]["size"]
    index = {entry["uri"]: i for i, entry in enumerate(card["classes"])}
    targets = np.zeros((len(samples), len(index)), dtype=np.float32)
    for row, sample in enumerate(samples):
        for uri in sample.labels:
            if uri in index:
                targets[row, index[uri]] = 1
    if cache_dir is not None:
        cache_dir = cache_dir / f"side-{data_module.cache_side(size)}"
    dataset = data_module.ImageListDataset(
        [s.path for s in samples],
        [s.key for s in samples],
        targets,
        size,
        data_module.eval_transform(size),
        cache_dir,
    )
    if workers is None:
        workers = data_module.default_workers(device)
    loader = data_module.make_loader(
        dataset, batch_size, False, workers, pin_memory=device.type == "cuda", seed=0
    )
    channels_last = card.get("settings", {}).get("channels_last", True)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    normalize = data_module.Normalizer(
        card["input"]["mean"], card["input"]["std"], device, channels_last
    )
    return evaluate(
        model, loader, None, normalize, device, choose_precision(device, "auto"), progress
    )


def progress_or_nothing(factory, label: str, total: int):
    return factory(label, total, "images") if factory else nullcontext(None)
