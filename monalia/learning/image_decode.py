"""Reading an image file the way a model sees it: RGB, shrunk, cropped square, uint8.

Every trainer's predictor receives images decoded here (or decoded identically), so scores do
not depend on which process or machine read the file. The first read decodes the original
(JPEG draft mode makes a large scan cheap to shrink) and can keep a resized copy, named by the
image's content hash, in a cache folder. The cold path uses the same re-encoded bytes as the
cache, so a model sees the same pixels whether a cache was warm or not.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

# Images reach a model after the image stage has checked them; a pixel limit still guards a
# model run on files from elsewhere.
MAX_PIXELS = 180_000_000
CACHE_QUALITY = 95


def cache_side(input_size: int) -> int:
    """The shorter side of cached copies: the margin a crop of `input_size` needs."""
    return round(input_size * 1.15)


def _shrink(image: Image.Image, side: int) -> Image.Image:
    width, height = image.size
    scale = side / min(width, height)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def load_resized(path: Path, key: str | None, side: int, cache_dir: Path | None) -> Image.Image:
    """The image at `path` as RGB with its shorter side at most `side`, through the cache."""
    cached = None
    if cache_dir is not None:
        name = key or hashlib.sha256(str(path.resolve()).encode()).hexdigest()
        cached = cache_dir / name[:2] / f"{name}.jpg"
        if cached.is_file():
            with Image.open(cached) as image:
                return image.convert("RGB")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with Image.open(path) as image:
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse before decoding.
        if image.width * image.height > MAX_PIXELS:
            raise Image.DecompressionBombError(
                f"{path}: {image.width}x{image.height} pixels is over the limit of {MAX_PIXELS}"
            )
        if image.format == "JPEG":
            image.draft("RGB", (side, side))
        resized = _shrink(image.convert("RGB"), side)
    # The small copy is always JPEG-encoded, cache or not, so that a model sees the same pixels
    # whether or not a run keeps a cache (scores then do not depend on it).
    buffer = io.BytesIO()
    resized.save(buffer, "JPEG", quality=CACHE_QUALITY)
    data = buffer.getvalue()
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, cached)
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def resize_and_crop(image: Image.Image, size: int) -> np.ndarray:
    """The centre square of `image` at `size` pixels as uint8 (3, size, size).

    The same pixels as torchvision's ``Resize(size)``, ``CenterCrop(size)`` and
    ``PILToTensor()`` on a PIL image (bilinear with antialiasing, the crop offset rounded).
    """
    width, height = image.size
    if width <= height:
        new_width, new_height = size, int(size * height / width)
    else:
        new_width, new_height = int(size * width / height), size
    if (new_width, new_height) != (width, height):
        image = image.resize((new_width, new_height), Image.Resampling.BILINEAR)
    top = round((new_height - size) / 2.0)
    left = round((new_width - size) / 2.0)
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def decode_batches(
    paths: Sequence[Path],
    keys: Sequence[str | None],
    input_size: int,
    batch_size: int,
    cache_dir: Path | None = None,
) -> Iterator[tuple[np.ndarray | None, list[int], list[int]]]:
    """Batches of decoded images: (uint8 pixels N×3×S×S or None, the positions decoded, the
    positions that could not be), `batch_size` positions at a time, in order."""
    for start in range(0, len(paths), batch_size):
        pixels, kept, unreadable = [], [], []
        for index in range(start, min(start + batch_size, len(paths))):
            try:
                pixels.append(decode_for_model(paths[index], input_size, keys[index], cache_dir))
                kept.append(index)
            except Exception:  # the caller reports it; the others go on
                unreadable.append(index)
        yield (np.stack(pixels) if pixels else None), kept, unreadable


def decode_for_model(
    path: Path, input_size: int, key: str | None = None, cache_dir: Path | None = None
) -> np.ndarray:
    """The image at `path` as a model of `input_size` sees it: uint8 (3, size, size)."""
    side = cache_side(input_size)
    folder = cache_dir / f"side-{side}" if cache_dir is not None else None
    return resize_and_crop(load_resized(Path(path), key, side, folder), input_size)


def picture_jpeg(path: Path, side: int, max_pixels: int = MAX_PIXELS) -> bytes | None:
    """A JPEG of the image file at `path`, its longer side at most `side` (thumbnails, pages);
    None when it cannot be read or has more than `max_pixels` pixels (checked before decoding)."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                return None
            image.draft("RGB", (side, side))
            small = image.convert("RGB")
            small.thumbnail((side, side))
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=85)
            return buffer.getvalue()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
