"""Checkpoints: state dicts only (never a pickled module), read back with ``weights_only=True``.

A checkpoint carries the model, optimizer and scheduler state, the epoch, the resolved config,
the class list and library versions, so an interrupted training resumes where it stopped and a
model can be rebuilt from its file and card alone.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from monalia.errors import MonaliaError


def library_versions() -> dict[str, str]:
    """Versions that decide whether a model can be rebuilt and scores reproduced."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("monalia", "torch", "torchvision", "timm", "numpy", "scikit-learn"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def save_checkpoint(
    path: Path,
    model: Any,
    optimizer: Any | None,
    scheduler: Any | None,
    epoch: int,
    config: dict[str, Any],
    classes: list[dict[str, str]],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically: a kill mid-write leaves the previous one intact."""
    import torch

    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "config": config,
        "classes": classes,
        "versions": library_versions(),
        "extra": extra or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint; only tensors and plain data are accepted (``weights_only=True``)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MonaliaError(f"no checkpoint at {path}") from None
    except Exception as exc:  # a truncated or foreign file
        raise MonaliaError(f"checkpoint {path} cannot be read: {exc}") from None
