"""Metrics of a model's scores on a labelled split, and the files `monalia evaluate` writes."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monalia.lib.metrics import ClassMetrics, evaluate_scores, json_safe


@dataclass
class Scores:
    """Targets and scores of the readable images of a split (one row each, classes in columns);
    `indices` are the rows' positions among the samples, `unreadable` those left out."""

    targets: np.ndarray
    scores: np.ndarray
    indices: np.ndarray
    unreadable: list[int]


def score_samples(predictor: Any, samples: list[Any], progress=None) -> Scores:
    """A predictor's scores on labelled samples (`monalia.api.trainer.Sample`), with targets."""
    index = {uri: column for column, uri in enumerate(predictor.classes)}
    targets = np.zeros((len(samples), len(index)), dtype=np.float32)
    for row, sample in enumerate(samples):
        for uri in sample.labels:
            if uri in index:
                targets[row, index[uri]] = 1
    chunk = next(
        iter(
            predictor.score_chunks(
                [(samples, [s.path for s in samples], [s.key for s in samples])], progress
            )
        )
    )
    order = np.asarray(chunk.indices, dtype=int)
    return Scores(targets[order], np.asarray(chunk.scores), order, list(chunk.unreadable))


@dataclass
class Evaluation:
    split: str
    classes: list[dict[str, Any]]
    per_class: list[ClassMetrics]
    summary: dict[str, float]
    scores: Any


def evaluate_model(card: dict[str, Any], scores: Any, split: str) -> Evaluation:
    """Metrics at the thresholds stored with the model."""
    thresholds = np.array(
        [card["thresholds"].get(entry["uri"], 0.5) for entry in card["classes"]], dtype=float
    )
    per_class, summary = evaluate_scores(scores.targets, scores.scores, thresholds)
    return Evaluation(split, card["classes"], per_class, summary, scores)


def write_report(evaluation: Evaluation, card: dict[str, Any], folder: Path) -> list[Path]:
    """metrics.json, per_class.csv and the PNG plots into `folder`."""
    from monalia.lib import plots

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
