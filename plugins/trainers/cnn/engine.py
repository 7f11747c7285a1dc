"""One epoch of training and one pass of evaluation, as plain functions.

Samples the loader marks unreadable are left out of the loss and of the returned scores, and
their indices are returned so the caller can name the files.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

# Inception v3's auxiliary classifier counts this much in the loss while training.
AUX_LOSS_WEIGHT = 0.4


@dataclass
class Precision:
    """How the forward pass runs: autocast dtype (None for float32) and loss scaling."""

    dtype: torch.dtype | None = None
    scaler: Any = None

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def choose_precision(device: torch.device, amp: str) -> Precision:
    """Mixed precision on CUDA: bfloat16 where supported, else float16 with a grad scaler."""
    if amp == "off" or device.type != "cuda":
        return Precision()
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return Precision(torch.bfloat16)
    return Precision(torch.float16, torch.amp.GradScaler("cuda"))


class MultiLabelLoss(nn.Module):
    """BCE-with-logits (optionally with per-class positive weights) or sigmoid focal loss."""

    def __init__(
        self,
        kind: str = "bce",
        pos_weight: torch.Tensor | None = None,
        focal_gamma: float = 2.0,
        focal_alpha: float = -1.0,
    ):
        super().__init__()
        self.kind = kind
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "focal":
            from torchvision.ops import sigmoid_focal_loss

            return sigmoid_focal_loss(
                logits, targets, alpha=self.focal_alpha, gamma=self.focal_gamma, reduction="mean"
            )
        return nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=self.pos_weight
        )


@dataclass
class EpochResult:
    loss: float
    images: int
    seconds: float
    unreadable: list[int] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


def _logits(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    # Inception v3 returns (logits, aux_logits) while training
    if isinstance(output, tuple):
        return output[0], output[1]
    return output, None


def train_one_epoch(
    model: nn.Module,
    loader,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    normalize,
    device: torch.device,
    precision: Precision,
    progress=None,
    frozen: list[nn.Module] | None = None,
) -> EpochResult:
    """Train over `loader` once; `frozen` modules stay in eval mode (their batch norms fixed)."""
    model.train()
    for module in frozen or []:
        module.eval()
    started = time.perf_counter()
    total_loss = 0.0
    seen = 0
    unreadable: list[int] = []
    for pixels, targets, indices, ok in loader:
        if not bool(ok.all()):
            unreadable.extend(int(i) for i in indices[~ok])
            pixels, targets = pixels[ok], targets[ok]
        if len(pixels) == 0:
            continue
        inputs = normalize(pixels)
        targets = targets.to(device, non_blocking=True)
        with precision.autocast(device):
            logits, aux = _logits(model(inputs))
            loss = criterion(logits, targets)
            if aux is not None:
                loss = loss + AUX_LOSS_WEIGHT * criterion(aux, targets)
        optimizer.zero_grad(set_to_none=True)
        if precision.scaler is not None:
            precision.scaler.scale(loss).backward()
            precision.scaler.step(optimizer)
            precision.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        # summed on the device: reading the loss each batch would stall the GPU's queue
        total_loss = total_loss + loss.detach().float() * len(targets)
        seen += len(targets)
        if progress is not None:
            progress.advance(len(indices))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    mean_loss = float(total_loss) / seen if seen else float("nan")
    return EpochResult(mean_loss, seen, seconds, unreadable)


@dataclass
class Scores:
    """What a pass over a split gives: targets and sigmoid scores of the readable images."""

    targets: np.ndarray
    scores: np.ndarray
    indices: np.ndarray
    unreadable: list[int]
    loss: float


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader,
    criterion: nn.Module | None,
    normalize,
    device: torch.device,
    precision: Precision,
    progress=None,
) -> Scores:
    """Score every readable image of `loader` (model in eval mode)."""
    model.eval()
    all_targets, all_scores, all_indices = [], [], []
    unreadable: list[int] = []
    total_loss, seen = 0.0, 0
    for pixels, targets, indices, ok in loader:
        if not bool(ok.all()):
            unreadable.extend(int(i) for i in indices[~ok])
            pixels, targets, indices = pixels[ok], targets[ok], indices[ok]
        if len(pixels) == 0:
            continue
        with precision.autocast(device):
            logits, _ = _logits(model(normalize(pixels)))
        logits = logits.float()
        if criterion is not None:
            total_loss += float(criterion(logits, targets.to(device))) * len(targets)
        seen += len(targets)
        all_scores.append(torch.sigmoid(logits).cpu().numpy())
        all_targets.append(targets.numpy())
        all_indices.append(indices.numpy())
        if progress is not None:
            progress.advance(len(indices))
    columns = len(loader.dataset.targets[0]) if len(loader.dataset) else 0
    return Scores(
        np.concatenate(all_targets) if all_targets else np.zeros((0, columns)),
        np.concatenate(all_scores) if all_scores else np.zeros((0, columns)),
        np.concatenate(all_indices) if all_indices else np.zeros(0, dtype=int),
        unreadable,
        total_loss / seen if seen else float("nan"),
    )
