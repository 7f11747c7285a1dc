"""Metrics of a model's scores on a labelled split, and the files `monalia evaluate` writes."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monalia.learning.metrics import (
    ClassMetrics,
    evaluate_scores,
    json_safe,
    pick_curation_thresholds,
    pick_thresholds,
)
from monalia.rdf.scores import as_written


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


@dataclass
class Settled:
    """What the framework decides from a trainer's raw scores on validation and test."""

    thresholds: dict[str, float]
    metrics: dict[str, Any]
    calibration: dict[str, Any]
    evaluation: Evaluation | None


def settle_model(
    classes: list[dict[str, str]],
    split_scores: dict[str, tuple[Any, Any]],
    beta: float = 1.0,
    calibration: str = "auto",
) -> Settled:
    """Calibrate on validation, pick the thresholds on the calibrated validation scores, and
    measure the model on test (else validation) at those thresholds.

    Thresholds are stored as scores are written in RDF (`as_written`), so that the reports
    compare like with like. The card gets the expected calibration error before and after on
    the evaluated split (test, which the calibration never saw, when there is one).
    """
    from monalia.learning.calibration import (
        Calibration,
        ClassMap,
        choose_calibration,
        expected_calibration_error,
    )

    uris = [entry["uri"] for entry in classes]
    metrics: dict[str, Any] = {}
    if split_scores.get("val") is not None and len(split_scores["val"][0]):
        val_targets, val_scores = (np.asarray(part) for part in split_scores["val"])
        fitted = choose_calibration(val_targets, val_scores, calibration)
        calibrated = fitted.apply(val_scores)
        cuts = np.array(
            [as_written(float(t)) for t in pick_thresholds(val_targets, calibrated, beta)]
        )
        _, metrics["val"] = evaluate_scores(val_targets, calibrated, cuts)
        metrics["curation"] = {
            uri: {
                key: as_written(value)
                if key in ("noise_below", "silence_above") and value is not None
                else value
                for key, value in entry.items()
            }
            for uri, entry in zip(
                uris, pick_curation_thresholds(val_targets, calibrated, cuts), strict=True
            )
        }
    else:  # nothing to calibrate or pick thresholds on
        fitted = Calibration("none", [ClassMap() for _ in uris])
        cuts = np.full(len(uris), 0.5)
    evaluated = next(
        (split for split in ("test", "val") if split_scores.get(split) is not None), None
    )
    targets, raw = (
        (np.asarray(part) for part in split_scores[evaluated])
        if evaluated
        else (np.zeros((0, len(uris))), np.zeros((0, len(uris))))
    )
    evaluation = None
    card = fitted.as_card(uris)
    if len(targets):
        scores = fitted.apply(raw)
        per_class, metrics[evaluated] = evaluate_scores(targets, scores, cuts)
        metrics["evaluated_on"] = evaluated
        metrics["per_class"] = {
            uri: entry.as_dict() for uri, entry in zip(uris, per_class, strict=True)
        }
        card["ece"] = {
            "split": evaluated,
            "before": round(expected_calibration_error(targets, raw), 5),
            "after": round(expected_calibration_error(targets, scores), 5),
        }
        order = np.arange(len(targets))
        evaluation = Evaluation(
            evaluated,
            [
                {"uri": entry["uri"], "label": entry.get("label") or entry["uri"]}
                for entry in classes
            ],
            per_class,
            metrics[evaluated],
            Scores(targets, scores, order, []),
        )
    thresholds = {uri: float(value) for uri, value in zip(uris, cuts, strict=True)}
    return Settled(thresholds, json_safe(metrics), card, evaluation)


def write_report(evaluation: Evaluation, card: dict[str, Any], folder: Path) -> list[Path]:
    """metrics.json, per_class.csv and the PNG plots into `folder`."""
    from monalia.learning import plots

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
