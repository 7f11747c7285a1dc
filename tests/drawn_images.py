"""Pictures the tests draw so that classes are learnable: one kind of shape per class.

A class's shape appears somewhere in the picture, at a random size and place, over a random
background with noise, so a network has to find it rather than read a fixed pixel.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("disc", "triangle", "bars")
COLOURS = {"disc": (200, 30, 30), "triangle": (20, 150, 40), "bars": (30, 60, 200)}


def draw(shapes: set[str], rng: random.Random, size: int = 96) -> Image.Image:
    """A picture holding `shapes` (names from SHAPES) over a noisy background."""
    background = tuple(rng.randint(150, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    for _ in range(12):  # clutter that belongs to no class
        x, y = rng.randint(0, size), rng.randint(0, size)
        grey = rng.randint(90, 200)
        pen.line((x, y, x + rng.randint(-20, 20), y + rng.randint(-20, 20)), fill=(grey,) * 3)
    for shape in sorted(shapes):
        side = rng.randint(size // 4, size // 2)
        x, y = rng.randint(0, size - side), rng.randint(0, size - side)
        colour = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in COLOURS[shape])
        if shape == "disc":
            pen.ellipse((x, y, x + side, y + side), fill=colour)
        elif shape == "triangle":
            pen.polygon([(x, y + side), (x + side, y + side), (x + side // 2, y)], fill=colour)
        else:
            for offset in range(0, side, max(4, side // 4)):
                pen.rectangle((x, y + offset, x + side, y + offset + side // 10), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))


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
