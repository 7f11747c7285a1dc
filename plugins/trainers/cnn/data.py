"""Datasets and loaders: images decoded, resized and augmented in worker processes.

Workers hand the model uint8 tensors (a quarter of the bytes of floats, in pinned memory on
CUDA); scaling and normalisation happen on the device (`Normalizer`). The first read of an image
decodes the original (JPEG draft mode makes a large scan cheap to shrink) and keeps a resized
copy, named by the image's content hash, in a cache folder; later epochs and later trainings
read the small copy. The cold path uses the same re-encoded bytes as the cache, so an epoch sees
the same pixels whether the cache was warm or not, which keeps resumed trainings exact.

An image that cannot be read does not stop training: its sample comes back marked invalid, the
engine leaves it out of the loss and the metrics, and the trainer reports it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from monalia.learning.image_decode import (  # noqa: F401  (cache_side is part of this module's use)
    CACHE_QUALITY,
    MAX_PIXELS,
    cache_side,
    load_resized,
)


@dataclass(frozen=True)
class Augmentation:
    """Augmentations for artworks: mild, composition-preserving ones.

    Crops keep at least half of the picture (what a painting shows is often spread over it),
    horizontal flips are fine for almost every subject, colour changes stay small (colour is
    part of what is depicted), and a share of images goes grey because so many collection
    photographs are black and white. No vertical flips or large rotations: scenes have an up.
    """

    enabled: bool = True
    crop_scale: tuple[float, float] = (0.5, 1.0)
    flip: bool = True
    rotation: float = 5.0
    color_jitter: float = 0.2
    grayscale: float = 0.1


def train_transform(input_size: int, augmentation: Augmentation):
    from torchvision.transforms import v2

    if not augmentation.enabled:
        return eval_transform(input_size)
    steps: list[Any] = [
        v2.RandomResizedCrop(input_size, scale=augmentation.crop_scale, antialias=True)
    ]
    if augmentation.flip:
        steps.append(v2.RandomHorizontalFlip())
    if augmentation.rotation:
        steps.append(v2.RandomRotation(augmentation.rotation))
    if augmentation.color_jitter:
        jitter = augmentation.color_jitter
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter / 2))
    if augmentation.grayscale:
        steps.append(v2.RandomGrayscale(augmentation.grayscale))
    steps.append(v2.PILToTensor())
    return v2.Compose(steps)


def eval_transform(input_size: int):
    from torchvision.transforms import v2

    return v2.Compose(
        [v2.Resize(input_size, antialias=True), v2.CenterCrop(input_size), v2.PILToTensor()]
    )


class ImageListDataset(Dataset):
    """(image path, content hash, target vector) items; yields (uint8 image, target, index, ok)."""

    def __init__(
        self,
        paths: Sequence[Path],
        keys: Sequence[str | None],
        targets: np.ndarray,
        input_size: int,
        transform,
        cache_dir: Path | None,
    ):
        self.paths = list(paths)
        self.keys = list(keys)
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        self.input_size = input_size
        self.transform = transform
        self.cache_dir = cache_dir
        self.side = cache_side(input_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            image = load_resized(self.paths[index], self.keys[index], self.side, self.cache_dir)
            pixels = self.transform(image)
            ok = True
        except Exception:
            # reported by the trainer through the index; the sample is masked out of the loss
            pixels = torch.zeros((3, self.input_size, self.input_size), dtype=torch.uint8)
            ok = False
        return pixels, self.targets[index], index, ok


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random follow it
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: ImageListDataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    pin_memory: bool,
    seed: int,
) -> DataLoader:
    """A loader whose order and augmentations depend only on `seed` (reseed it per epoch).

    Workers are not persistent: each epoch's workers are seeded from that epoch's generator, so
    a training resumed at epoch k sees exactly what an uninterrupted one saw.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=pin_memory,
        worker_init_fn=_seed_worker if workers else None,
        generator=generator,
        prefetch_factor=4 if workers else None,
        drop_last=False,
    )


class Normalizer:
    """uint8 NCHW batches to the float input the backbone expects, on the device."""

    def __init__(self, mean, std, device, channels_last: bool, dtype=torch.float32):
        self.mean = torch.tensor(mean, device=device, dtype=dtype).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device, dtype=dtype).view(1, 3, 1, 1) * 255
        self.device = device
        self.channels_last = channels_last
        self.dtype = dtype

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        batch = pixels.to(self.device, non_blocking=True).to(self.dtype)
        batch = (batch - self.mean) / self.std
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch


def default_workers(device: torch.device) -> int:
    """Loader processes: enough to feed a GPU; on a CPU they compete with the model for cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if device.type == "cuda":
        return max(2, min(12, cores - 2))
    return 0 if cores <= 2 else min(4, cores // 4)
