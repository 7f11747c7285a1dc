"""Calibrated scores: per class, a map from a model's raw score to a probability that means it.

A curator who reads 0.9 should be right about nine times in ten. Maps are fitted per class on
the validation split, and the one kept is chosen by measurement: the expected calibration error
of each, cross-validated on validation (the map is fitted on some images and measured on the
others), against the raw scores.

- ``temperature``: one temperature per class on the logit, ``sigmoid(logit(p) / T)``, fitted by
  log loss. It keeps the ranking exactly.
- ``platt``: a scale and a shift on the logit, ``sigmoid(a logit(p) + b)`` (Platt scaling): it
  also corrects a model that is too sure or too shy of a class overall.
- ``isotonic``: a monotone step function (scikit-learn's isotonic regression). It is measured
  and its error is on the card, but it is not applied: its flat steps tie many images at one
  score (and scores are written with four decimals), so search and the reports could no longer
  rank them; on small validation splits it also puts a class's thresholds on one step.

A class without both positives and negatives on validation is left as it is. The map is stored
on the model card and applied where the model scores (``monalia.api.trainer.Trainer.scorer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METHODS = ("none", "temperature", "platt", "isotonic")
APPLIED = ("none", "temperature", "platt")  # those that keep the ranking (see above)
ECE_BINS = 10
TIE_BREAK = 1e-3  # share of the raw score kept by the isotonic map, to keep the ranking
CV_FOLDS = 3
# How far a map may sharpen the logit: further, a small validation split that the model
# separates perfectly would push scores to exactly 0 or 1, and images the model ranks apart
# would tie there (search and the reports rank by these scores).
MAX_SCALE = 2.0
MAX_SHIFT = 5.0
EPSILON = 1e-6


def expected_calibration_error(targets: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS):
    """ECE over every (image, class) pair: the mean gap between the score and the share of true
    labels in each tenth of [0, 1], weighted by the pairs in it."""
    truth = np.asarray(targets, dtype=float).ravel()
    probability = np.asarray(scores, dtype=float).ravel()
    if truth.size == 0:
        return math.nan
    edges = np.minimum((probability * bins).astype(int), bins - 1)
    total = 0.0
    for index in range(bins):
        inside = edges == index
        if inside.any():
            total += inside.sum() * abs(probability[inside].mean() - truth[inside].mean())
    return float(total / truth.size)


def _logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(scores, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(clipped / (1 - clipped))


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def _fit_temperature(truth: np.ndarray, scores: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    logits = _logit(scores)

    def loss(log_temperature: float) -> float:
        p = np.clip(_sigmoid(logits / math.exp(log_temperature)), EPSILON, 1 - EPSILON)
        return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))

    # a temperature from 1 / MAX_SCALE (sharper) up to 20 (softer)
    found = minimize_scalar(loss, bounds=(-math.log(MAX_SCALE), 3.0), method="bounded")
    return float(math.exp(found.x))


def _fit_platt(truth: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(_logit(scores).reshape(-1, 1), truth.astype(int))
    scale = float(model.coef_[0][0])
    if scale <= 0:  # it would reverse the ranking: keep the scores' order
        return 1.0, 0.0
    shift = float(np.clip(model.intercept_[0], -MAX_SHIFT, MAX_SHIFT))
    return min(scale, MAX_SCALE), shift


def _fit_isotonic(truth: np.ndarray, scores: np.ndarray) -> tuple[list[float], list[float]]:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(np.asarray(scores, dtype=float), truth)
    return [float(x) for x in model.X_thresholds_], [float(y) for y in model.y_thresholds_]


@dataclass
class ClassMap:
    """One class's map: identity, a temperature, or isotonic steps (x, y)."""

    method: str = "none"
    temperature: float = 1.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    scale: float = 1.0
    shift: float = 0.0

    def apply(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=float)
        if self.method == "temperature":
            return _sigmoid(_logit(scores) / self.temperature)
        if self.method == "platt":
            return _sigmoid(self.scale * _logit(scores) + self.shift)
        if self.method == "isotonic" and self.x:
            stepped = np.interp(scores, self.x, self.y)
            return (1 - TIE_BREAK) * stepped + TIE_BREAK * scores
        return scores

    def as_card(self) -> dict[str, Any]:
        if self.method == "temperature":
            return {"method": "temperature", "temperature": round(self.temperature, 6)}
        if self.method == "platt":
            return {"method": "platt", "scale": round(self.scale, 6), "shift": round(self.shift, 6)}
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x, "y": self.y}
        return {"method": "none"}


def fit_map(method: str, truth: np.ndarray, scores: np.ndarray) -> ClassMap:
    """One class's map by `method`; identity where the class lacks positives or negatives."""
    truth = np.asarray(truth, dtype=float)
    if method == "none" or len(np.unique(truth)) < 2:
        return ClassMap()
    if method == "temperature":
        return ClassMap("temperature", temperature=_fit_temperature(truth, scores))
    if method == "platt":
        scale, shift = _fit_platt(truth, scores)
        return ClassMap("platt", scale=scale, shift=shift)
    x, y = _fit_isotonic(truth, scores)
    return ClassMap("isotonic", x=x, y=y)


@dataclass
class Calibration:
    """Per-class maps, in the order of the model's classes, and how the method was chosen."""

    method: str
    maps: list[ClassMap]
    measured: dict[str, Any] = field(default_factory=dict)

    def apply(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=float)
        if self.method == "none" or scores.size == 0:
            return scores.astype(np.float32)
        calibrated = np.empty_like(scores)
        for column, class_map in enumerate(self.maps):
            calibrated[:, column] = class_map.apply(scores[:, column])
        return calibrated.astype(np.float32)

    def as_card(self, uris: list[str]) -> dict[str, Any]:
        return {
            "method": self.method,
            "classes": {
                uri: class_map.as_card() for uri, class_map in zip(uris, self.maps, strict=True)
            },
            **self.measured,
        }

    @classmethod
    def from_card(cls, card: dict[str, Any] | None, uris: list[str]) -> Calibration | None:
        """The calibration a model card stores, or None when the model has none."""
        if not card or card.get("method", "none") == "none":
            return None
        maps = []
        for uri in uris:
            entry = (card.get("classes") or {}).get(uri) or {}
            maps.append(
                ClassMap(
                    entry.get("method", "none"),
                    float(entry.get("temperature", 1.0)),
                    list(entry.get("x", [])),
                    list(entry.get("y", [])),
                    float(entry.get("scale", 1.0)),
                    float(entry.get("shift", 0.0)),
                )
            )
        return cls(card["method"], maps)


def fit_all(method: str, targets: np.ndarray, scores: np.ndarray) -> Calibration:
    maps = [fit_map(method, targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    return Calibration(method, maps)


def _folds(count: int, folds: int, seed: int = 0) -> np.ndarray:
    order = np.random.RandomState(seed).permutation(count)
    assignment = np.empty(count, dtype=int)
    assignment[order] = np.arange(count) % folds
    return assignment


def cross_validated_ece(method: str, targets: np.ndarray, scores: np.ndarray) -> float:
    """ECE of `method`'s maps on validation images they were not fitted on."""
    if len(targets) < 2 * CV_FOLDS:
        return expected_calibration_error(targets, fit_all(method, targets, scores).apply(scores))
    assignment = _folds(len(targets), CV_FOLDS)
    calibrated = np.empty_like(np.asarray(scores, dtype=float))
    for fold in range(CV_FOLDS):
        held = assignment == fold
        fitted = fit_all(method, targets[~held], scores[~held])
        calibrated[held] = fitted.apply(scores[held])
    return expected_calibration_error(targets, calibrated)


def choose_calibration(
    targets: np.ndarray, scores: np.ndarray, method: str = "auto"
) -> Calibration:
    """The calibration fitted on these (validation) scores: `method`, or with "auto" the one of
    `APPLIED` whose cross-validated ECE is lowest (raw scores win ties); every method's ECE is
    kept, isotonic's included."""
    targets = np.asarray(targets, dtype=float)
    scores = np.asarray(scores, dtype=float)
    measured: dict[str, float] = {}
    if method == "auto":
        measured = {name: cross_validated_ece(name, targets, scores) for name in METHODS}
        method = min(APPLIED, key=lambda name: (measured[name], APPLIED.index(name)))
    chosen = fit_all(method, targets, scores)
    if measured:
        chosen.measured = {
            "chosen_by": f"ECE cross-validated on validation ({CV_FOLDS} folds)",
            "validation_ece": {name: round(value, 5) for name, value in measured.items()},
        }
    return chosen
