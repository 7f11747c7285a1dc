#!/usr/bin/env python3
"""bench/train.py: one training epoch of the CNN trainer against a bare torch loop.

monalia: one epoch of the trainer's own path over 2,000 JPEG files (decode, resize, augment in
the loader, uint8 batches normalised on the device, BCE-with-logits, Adam), with an empty
resized-image cache (a first epoch) and with it filled (every later epoch).
Reference: the same network (channels-last, as monalia runs it), loss and optimizer over the same
images already decoded, resized, normalised and on the device: the loop with nothing to load.
The three run --repeat times (default 3), interleaved (bare, empty, filled; empty, filled, bare;
...), each from a fresh model after one warm-up of each kind, so no kind is always first or
always warm. Medians are compared; the spread is printed.
Targets: monalia >= 0.85x the bare loop's images/s, with an empty cache and with a filled one;
the last line's ratio is the worse of the two.

Usage: .venv/bin/python bench/train.py [--images N] [--device cpu|cuda] [--batch-size B]
       [--workers W] [--size S] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchlib import Criterion, alternate, verdict  # noqa: E402
from support.drawn_images import SHAPES, draw  # noqa: E402

from monalia.learning.backbones import build_model  # noqa: E402
from monalia.plugins.trainers.cnn import data  # noqa: E402
from monalia.plugins.trainers.cnn.engine import MultiLabelLoss, choose_precision, train_one_epoch  # noqa: E402
from monalia.plugins.trainers.cnn.fit import SeededImages, augmentation_of, resolve_device  # noqa: E402
from monalia.plugins.trainers.cnn.settings import CnnSettings  # noqa: E402

TARGET = 0.85


def draw_one(job: tuple[Path, int]) -> np.ndarray:
    """One JPEG the size the image stage fetches for training (about 400 px); its target row."""
    path, number = job
    rng = random.Random(number)
    shapes = {shape for shape in SHAPES if rng.random() < 0.4}
    width, height = rng.choice([(400, 300), (300, 400), (400, 400), (400, 260)])
    draw(shapes, rng, size=max(width, height)).resize((width, height)).save(path, quality=90)
    return np.array([shape in shapes for shape in SHAPES], dtype=np.float32)


def make_images(folder: Path, count: int) -> tuple[list[Path], np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{number:05d}.jpg" for number in range(count)]
    with ProcessPoolExecutor() as pool:
        rows = list(pool.map(draw_one, zip(paths, range(count), strict=True), chunksize=64))
    return paths, np.stack(rows)


def fresh_model(device, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("efficientnet_lite0", len(SHAPES)).to(device)
    model.to(memory_format=torch.channels_last)
    return model


def monalia_epoch(paths, targets, device, settings: CnnSettings, cache: Path, workers: int):
    model = fresh_model(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    size = settings.input_size
    dataset = SeededImages(
        paths,
        [p.stem for p in paths],
        targets,
        size,
        data.train_transform(size, augmentation_of(settings)),
        cache,
    )
    loader = data.make_loader(
        dataset, settings.batch_size, True, workers, device.type == "cuda", seed=1
    )
    normalize = data.Normalizer((0.5,) * 3, (0.5,) * 3, device, True)
    result = train_one_epoch(
        model,
        loader,
        MultiLabelLoss(),
        optimizer,
        normalize,
        device,
        choose_precision(device, settings.amp),
        None,
    )
    return result.images_per_second, result.loss


def bare_epoch(pixels: torch.Tensor, targets: torch.Tensor, device, batch_size: int, amp: str):
    """The reference: every batch is already decoded, normalised and on the device."""
    model = fresh_model(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    criterion = torch.nn.BCEWithLogitsLoss()
    precision = choose_precision(device, amp)
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(1))
    started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        inputs = pixels[index.to(pixels.device)].contiguous(memory_format=torch.channels_last)
        with precision.autocast(device):
            loss = criterion(model(inputs).float(), targets[index.to(targets.device)])
        optimizer.zero_grad(set_to_none=True)
        if precision.scaler is not None:
            precision.scaler.scale(loss).backward()
            precision.scaler.step(optimizer)
            precision.scaler.update()
        else:
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(order) / (time.perf_counter() - started)


def decoded(paths, size: int) -> torch.Tensor:
    """The reference's input: every image resized, cropped and normalised ahead of time."""
    with ProcessPoolExecutor() as pool:
        rows = pool.map(decode_one, paths, [size] * len(paths), chunksize=64)
        return torch.stack([(row.float() / 255 - 0.5) / 0.5 for row in rows])


def decode_one(path: Path, size: int) -> torch.Tensor:
    image = data.load_resized(path, None, data.cache_side(size), None)
    return data.eval_transform(size)(image)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    settings = CnnSettings(input_size=args.size, batch_size=args.batch_size)
    workers = args.workers if args.workers is not None else data.default_workers(device)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print(f"drawing {args.images} images ...", file=sys.stderr)
        paths, targets = make_images(root / "images", args.images)
        pixels = decoded(paths, args.size).to(device)
        labels = torch.tensor(targets, device=device)
        filled = root / "filled-cache"
        empties = iter(range(10**6))

        def bare() -> float:
            return bare_epoch(pixels, labels, device, args.batch_size, settings.amp)

        def empty_cache() -> float:  # a cache folder no epoch has written to
            cache = root / f"empty-cache-{next(empties)}"
            return monalia_epoch(paths, targets, device, settings, cache, workers)[0]

        def filled_cache() -> float:
            return monalia_epoch(paths, targets, device, settings, filled, workers)[0]

        # warm-up of each kind (kernels picked, loader workers' imports cached, the filled
        # cache written), not counted
        print("warm-up ...", file=sys.stderr)
        warm_up = args.batch_size * 4 + args.images % args.batch_size  # the last batch's shape too
        bare_epoch(pixels[:warm_up], labels[:warm_up], device, args.batch_size, settings.amp)
        monalia_epoch(paths, targets, device, settings, filled, workers)
        samples = alternate(
            {
                "bare loop": bare,
                "monalia, empty cache": empty_cache,
                "monalia, filled cache": filled_cache,
            },
            args.repeat,
            "images/s",
        )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    threads = torch.get_num_threads()
    print(
        f"device {name}, {threads} torch threads, {workers} loader workers, "
        f"{args.images} images at {args.size} px, batch {args.batch_size}"
    )
    reference = samples["bare loop"].median
    for label, sample in samples.items():
        print(f"{label + ':':24} {sample.spread(1)} ({sample.median / reference:.2f}x)")
    cold, warm = samples["monalia, empty cache"].median, samples["monalia, filled cache"].median
    criteria = [
        Criterion("monalia epoch, empty cache / bare loop", cold / reference, TARGET),
        Criterion("monalia epoch, filled cache / bare loop", warm / reference, TARGET),
    ]
    print(
        verdict(
            "train",
            criteria,
            f"monalia {cold:.1f} images/s (cached {warm:.1f}) vs bare loop {reference:.1f} "
            f"images/s on {name}, medians of {args.repeat}",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
