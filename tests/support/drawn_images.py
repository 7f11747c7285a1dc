"""Pictures the tests draw so that classes are learnable: one kind of shape per class.

A class's shape appears somewhere in the picture, at a random size and place, over a random
background with noise, so a network has to find it rather than read a fixed pixel.
"""

from __future__ import annotations

import random
from pathlib import Path

from monalia.demo.collection import SHAPES, draw


def draw_set(
    folder: Path, count: int, seed: int = 0, size: int = 96
) -> list[tuple[Path, set[str]]]:
    """`count` JPEG files in `folder`, each with one to three shapes (some with none)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for number in range(count):
        shapes = {shape for shape in SHAPES if rng.random() < 0.4}
        path = folder / f"{number:05d}.jpg"
        draw(shapes, rng, size).save(path, "JPEG", quality=90)
        drawn.append((path, shapes))
    return drawn
