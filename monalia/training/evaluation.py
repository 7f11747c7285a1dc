"""Scoring a trained model on samples, and the report `monalia evaluate` prints and draws."""

from __future__ import annotations

import csv
import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monalia.trainer import Sample
from monalia.training import data as data_module
from monalia.training.engine import Scores, choose_precision, evaluate
from monalia.training.metrics import ClassMetrics, evaluate_scores, json_safe


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


@dataclass
class Evaluation:
    split: str
    classes: list[dict[str, Any]]
    per_class: list[ClassMetrics]
    summary: dict[str, float]
    scores: Scores


def evaluate_model(card: dict[str, Any], scores: Scores, split: str) -> Evaluation:
    """Metrics at the thresholds stored with the model."""
    thresholds = np.array(
        [card["thresholds"].get(entry["uri"], 0.5) for entry in card["classes"]], dtype=float
    )
    per_class, summary = evaluate_scores(scores.targets, scores.scores, thresholds)
    return Evaluation(split, card["classes"], per_class, summary, scores)


def write_report(evaluation: Evaluation, card: dict[str, Any], folder: Path) -> list[Path]:
    """metrics.json, per_class.csv and the PNG plots into `folder`."""
    from monalia.training import plots

    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"uri": entry["uri"], "label": entry["label"], **metrics.as_dict()}
        for entry, metrics in zip(evaluation.classes, evaluation.per_class, strict=True)
    ]
    with (folder / "per_class.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["uri"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "metrics.json").write_text(
        json.dumps(
            json_safe({"split": evaluation.split, "summary": evaluation.summary, "classes": rows}),
            indent=2,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    written = [folder / "per_class.csv", folder / "metrics.json"]
    history = card.get("metrics", {}).get("history") or []
    if history:
        written.append(plots.training_curves(history, folder / "training_curves.png"))
    labels = [entry["label"] for entry in evaluation.classes]
    written.append(
        plots.per_class_ap(
            labels, evaluation.per_class, evaluation.split, folder / "per_class_ap.png"
        )
    )
    written.append(
        plots.precision_recall(
            labels,
            evaluation.scores.targets,
            evaluation.scores.scores,
            evaluation.per_class,
            folder / "precision_recall.png",
        )
    )
    return written


def progress_or_nothing(factory, label: str, total: int):
    return factory(label, total, "images") if factory else nullcontext(None)
