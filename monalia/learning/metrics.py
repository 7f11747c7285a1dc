"""Multi-label evaluation: per-class AP, mAP, ROC-AUC, precision/recall/F-beta, thresholds.

Scores are probabilities (after the sigmoid), one column per class. A class with no positive
example in the evaluated split has no AP or ROC-AUC (NaN), and mAP is the mean over the classes
that have one, as in MonaLIA and the usual multi-label benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

DEFAULT_THRESHOLD = 0.5


@dataclass
class ClassMetrics:
    """How one class did at its threshold."""

    ap: float
    roc_auc: float
    precision: float
    recall: float
    f1: float
    f2: float
    threshold: float
    positives: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in self.__dict__.items()
        }


def f_beta(precision: float, recall: float, beta: float) -> float:
    if precision <= 0 and recall <= 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def pick_thresholds(targets: np.ndarray, scores: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """Per class, the score threshold that maximises F-beta on these (validation) scores.

    A class with no positive example keeps the default 0.5.
    """
    thresholds = np.full(targets.shape[1], DEFAULT_THRESHOLD)
    for column in range(targets.shape[1]):
        truth = targets[:, column]
        if truth.sum() == 0:
            continue
        precision, recall, cuts = precision_recall_curve(truth, scores[:, column])
        # the last point (recall 0, precision 1) has no threshold
        precision, recall = precision[:-1], recall[:-1]
        b2 = beta * beta
        with np.errstate(divide="ignore", invalid="ignore"):
            scores_f = np.where(
                precision + recall > 0,
                (1 + b2) * precision * recall / (b2 * precision + recall),
                0.0,
            )
        thresholds[column] = float(cuts[int(np.nanargmax(scores_f))])
    return thresholds


# A class needs this many positives on validation for its own noise and silence thresholds;
# with fewer, the quantiles collapse onto the decision threshold and the pooled rule applies.
MIN_CURATION_POSITIVES = 5
# logit distances of the defaults (0.1 and 0.9) from 0.5: the pooled rule's margins when no
# class has enough validation positives to measure them
DEFAULT_MARGIN = math.log(0.9 / 0.1)


def _logit(value: float) -> float:
    value = min(max(value, 1e-6), 1 - 1e-6)
    return math.log(value / (1 - value))


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def pick_curation_thresholds(
    targets: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray,
    keep_recall: float = 0.95,
    min_precision: float = 0.95,
    min_positives: int = MIN_CURATION_POSITIVES,
) -> list[dict[str, Any]]:
    """Per class, where noise and silence start, from these (validation) scores.

    ``noise_below``: the score under which only ``1 - keep_recall`` of the true annotations
    fall, so an annotation scored lower is suspect. ``silence_above``: the lowest score from
    which the model is right at least ``min_precision`` of the time, and above the same share
    of the images without the class, so an unannotated record scored higher probably lacks
    the annotation. They bracket the F-beta threshold.

    ``rule`` says where each pair comes from: ``validation`` (the class's own scores), or
    ``pooled`` for a class with fewer than `min_positives` validation positives (its quantiles
    would sit on its decision threshold): the class's threshold moved down and up by the
    median logit distance that the measured classes keep between their threshold and their
    noise and silence thresholds (the defaults' distance, 0.5 to 0.1 and 0.9, when no class
    was measured). ``positives`` is the count of validation positives.
    """
    found: list[dict[str, Any]] = []
    noise_margins: list[float] = []
    silence_margins: list[float] = []
    for column in range(targets.shape[1]):
        truth = targets[:, column].astype(bool)
        positives = int(truth.sum())
        threshold = float(thresholds[column])
        if positives < min_positives:
            found.append({"positives": positives, "rule": "pooled"})
            continue
        column_scores = scores[:, column]
        noise = min(float(np.quantile(column_scores[truth], 1.0 - keep_recall)), threshold)
        precision, _, cuts = precision_recall_curve(truth, column_scores)
        precise = cuts[precision[:-1] >= min_precision]
        silence = float(precise.min()) if precise.size else None
        if silence is not None and (~truth).any():
            # a small validation split reaches that precision early: also stay above nearly
            # every image without the class
            silence = max(silence, float(np.quantile(column_scores[~truth], min_precision)))
        silence = None if silence is None else max(silence, threshold)
        noise_margins.append(_logit(threshold) - _logit(noise))
        if silence is not None:
            silence_margins.append(_logit(silence) - _logit(threshold))
        found.append(
            {
                "noise_below": noise,
                "silence_above": silence,
                "positives": positives,
                "rule": "validation",
            }
        )
    # a measured margin of zero is a collapse too: it does not speak for the other classes
    noise_margin = float(np.median([m for m in noise_margins if m > 0] or [DEFAULT_MARGIN]))
    silence_margin = float(np.median([m for m in silence_margins if m > 0] or [DEFAULT_MARGIN]))
    for column, entry in enumerate(found):
        if entry["rule"] == "pooled":
            center = _logit(float(thresholds[column]))
            entry["noise_below"] = _sigmoid(center - noise_margin)
            entry["silence_above"] = _sigmoid(center + silence_margin)
    return found


def evaluate_scores(
    targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray | None = None
) -> tuple[list[ClassMetrics], dict[str, float]]:
    """Per-class metrics and their summary (mAP, macro ROC-AUC, macro and micro F1/F2)."""
    targets = np.asarray(targets).astype(int)
    scores = np.asarray(scores, dtype=float)
    if thresholds is None:
        thresholds = np.full(targets.shape[1], DEFAULT_THRESHOLD)
    predicted = scores >= thresholds[None, :]
    per_class = []
    for column in range(targets.shape[1]):
        truth = targets[:, column]
        guess = predicted[:, column]
        positives = int(truth.sum())
        has_both = 0 < positives < len(truth)
        ap = float(average_precision_score(truth, scores[:, column])) if positives else math.nan
        auc = float(roc_auc_score(truth, scores[:, column])) if has_both else math.nan
        hits = int((truth & guess).sum())
        precision = hits / int(guess.sum()) if guess.sum() else 0.0
        recall = hits / positives if positives else 0.0
        per_class.append(
            ClassMetrics(
                ap=ap,
                roc_auc=auc,
                precision=precision,
                recall=recall,
                f1=f_beta(precision, recall, 1.0),
                f2=f_beta(precision, recall, 2.0),
                threshold=float(thresholds[column]),
                positives=positives,
            )
        )
    hits = int((targets.astype(bool) & predicted).sum())
    micro_precision = hits / int(predicted.sum()) if predicted.sum() else 0.0
    micro_recall = hits / int(targets.sum()) if targets.sum() else 0.0
    scored = [m for m in per_class if m.positives]
    summary = {
        "map": _mean([m.ap for m in scored]),
        "roc_auc": _mean([m.roc_auc for m in scored]),
        "macro_f1": _mean([m.f1 for m in scored]),
        "macro_f2": _mean([m.f2 for m in scored]),
        "micro_f1": f_beta(micro_precision, micro_recall, 1.0),
        "micro_f2": f_beta(micro_precision, micro_recall, 2.0),
        "samples": int(targets.shape[0]),
    }
    return per_class, summary


def _mean(values: list[float]) -> float:
    kept = [value for value in values if not math.isnan(value)]
    return float(np.mean(kept)) if kept else math.nan


def json_safe(value: Any) -> Any:
    """NaN (a class without positives) becomes null: the card is strict JSON."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value
