"""PNG plots of a model: training curves, per-class AP, precision-recall curves (matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve

from monalia.learning.metrics import ClassMetrics


def training_curves(history: list[dict], path: Path) -> Path:
    """Loss per epoch (train and validation) and validation mAP."""
    epochs = [entry["epoch"] for entry in history]
    figure, (losses, quality) = plt.subplots(1, 2, figsize=(11, 4))
    losses.plot(epochs, [entry["train_loss"] for entry in history], marker="o", label="train")
    if any("val_loss" in entry for entry in history):
        losses.plot(
            epochs, [entry.get("val_loss") for entry in history], marker="o", label="validation"
        )
    losses.set(xlabel="epoch", ylabel="loss", title="Loss")
    losses.legend()
    values = [entry.get("val_map") for entry in history]
    if any(value is not None for value in values):
        quality.plot(epochs, [np.nan if v is None else v for v in values], marker="o", color="C2")
    quality.set(xlabel="epoch", ylabel="mAP", title="Validation mAP", ylim=(0, 1))
    for axes in (losses, quality):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def per_class_ap(labels: list[str], metrics: list[ClassMetrics], split: str, path: Path) -> Path:
    """Horizontal bars of AP per class, best first, with the positives count."""
    order = sorted(
        range(len(labels)), key=lambda i: -1 if math.isnan(metrics[i].ap) else metrics[i].ap
    )
    height = max(3.0, 0.3 * len(labels) + 1)
    figure, axes = plt.subplots(figsize=(8, height))
    values = [0 if math.isnan(metrics[i].ap) else metrics[i].ap for i in order]
    axes.barh(range(len(order)), values, color="C0")
    axes.set_yticks(range(len(order)), [f"{labels[i]} ({metrics[i].positives})" for i in order])
    axes.set(xlim=(0, 1), xlabel="average precision", title=f"AP per class ({split})")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def precision_recall(
    labels: list[str],
    targets: np.ndarray,
    scores: np.ndarray,
    metrics: list[ClassMetrics],
    path: Path,
) -> Path:
    """One small precision-recall plot per class, with the point at the chosen threshold."""
    count = len(labels)
    columns = min(5, max(1, count))
    rows = math.ceil(count / columns) or 1
    figure, grid = plt.subplots(
        rows, columns, figsize=(3 * columns, 2.8 * rows), squeeze=False, sharex=True, sharey=True
    )
    for index in range(rows * columns):
        axes = grid[index // columns][index % columns]
        if index >= count:
            axes.axis("off")
            continue
        truth = targets[:, index] if len(targets) else np.zeros(0)
        axes.set_title(labels[index], fontsize=9)
        if truth.sum() > 0:
            precision, recall, _ = precision_recall_curve(truth, scores[:, index])
            axes.plot(recall, precision, color="C0")
            axes.plot(metrics[index].recall, metrics[index].precision, "o", color="C3")
        else:
            axes.text(0.5, 0.5, "no positives", ha="center", va="center", fontsize=8)
        axes.set(xlim=(0, 1), ylim=(0, 1.02))
        axes.grid(alpha=0.3)
    figure.supxlabel("recall")
    figure.supylabel("precision")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
