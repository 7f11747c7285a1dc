"""Fetched images are untrusted: checked, scaled to the box training needs, stored by hash.

`prepare` turns the bytes a server sent into what is stored, or raises `ImageRejected` with the
reason recorded on the image. `ImageStore` writes files named by the SHA-256 of their content,
atomically, so a run killed mid-write leaves no partial file under a real name.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Formats kept as they came when they already fit the box; any other is re-encoded.
KEPT_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
DECODED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "JPEG2000"})
_TEXT_TYPES = ("text/", "application/json", "application/ld+json", "application/xml")


class ImageRejected(ValueError):
    """The content is not an image monalia accepts; the message says why, in one line."""


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be: bytes, pixels (the decompression-bomb guard), side and shape."""

    max_bytes: int = 50_000_000
    max_pixels: int = 100_000_000
    min_side: int = 16
    max_aspect: float = 50.0


@dataclass
class PreparedImage:
    data: bytes
    sha256: str
    width: int
    height: int
    extension: str
    received: int  # bytes as the server sent them
    scaled: bool  # scaled down locally (the server did not give the size asked for)


def _looks_like_markup(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"["))


def prepare(
    body: bytes,
    content_type: str | None,
    box: tuple[int, int],
    limits: ImageLimits = ImageLimits(),
    quality: int = 90,
) -> PreparedImage:
    """Check `body` and give the bytes to store: as received when it fits in `box`, else scaled
    down to fit (JPEG). Raise `ImageRejected` for anything else."""
    if not body:
        raise ImageRejected("empty body (0 bytes)")
    if len(body) > limits.max_bytes:
        raise ImageRejected(f"{len(body)} bytes is over the limit of {limits.max_bytes}")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind.startswith(_TEXT_TYPES) or _looks_like_markup(body):
        raise ImageRejected(
            f"not an image: the server sent {kind or 'a text page'} ({len(body)} bytes)"
        )
    # Pillow's own guard follows the project's limit: a `max_pixels` above Pillow's default is
    # the user's to set (one limit per process: every crawl of a run shares the project's)
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(body))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected(
            f"not a decodable image ({kind or 'no content type'}, {len(body)} bytes)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"not a decodable image: {exc}") from None
    with image:
        width, height = image.size
        if image.format not in DECODED_FORMATS:
            raise ImageRejected(f"image format {image.format} is not accepted")
        if width * height > limits.max_pixels:
            raise ImageRejected(
                f"decompression bomb refused: {width}x{height} pixels is over the limit of "
                f"{limits.max_pixels}"
            )
        if min(width, height) < limits.min_side:
            raise ImageRejected(f"absurd size {width}x{height}: a side under {limits.min_side}")
        if max(width, height) / min(width, height) > limits.max_aspect:
            raise ImageRejected(f"absurd size {width}x{height}: aspect over {limits.max_aspect}:1")
        kept = width <= box[0] and height <= box[1] and image.format in KEPT_FORMATS
        if kept:
            try:
                if image.format == "JPEG":
                    # every coefficient is still read (a truncated or corrupt file fails here),
                    # only at an eighth of the scale: the image is kept as received anyway
                    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()  # decodes the whole file: a truncated one fails here
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageRejected(f"truncated or corrupt image: {exc}") from None
            data, extension = body, KEPT_FORMATS[image.format]
        else:
            try:
                image.draft("RGB", box)  # JPEG decodes at a reduced scale directly
                picture = image.convert("RGB")
                picture.thumbnail(box, Image.Resampling.LANCZOS)
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageRejected(f"truncated or corrupt image: {exc}") from None
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=quality)
            data, extension = out.getvalue(), "jpg"
            width, height = picture.size
    return PreparedImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        extension=extension,
        received=len(body),
        scaled=not kept,
    )


class ImageStore:
    """Files named by content hash under `root` (``ab/abcdef....jpg``); paths kept relative to
    `base` (the project's data folder) in the catalog."""

    def __init__(self, root: Path, base: Path | None = None):
        self.root = root
        self.base = base or root

    def relative(self, sha256: str, extension: str) -> str:
        path = self.root / sha256[:2] / f"{sha256}.{extension}"
        return os.path.relpath(path, self.base)

    def put(self, image: PreparedImage) -> str:
        """Write the image unless a file with its hash is there; return its stored path."""
        relative = self.relative(image.sha256, image.extension)
        target = self.base / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(image.data)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return relative

    def remove_partial_files(self) -> int:
        """Delete what a killed run left half-written; return how many."""
        removed = 0
        if self.root.is_dir():
            for partial in self.root.glob("*/.part-*"):
                partial.unlink(missing_ok=True)
                removed += 1
        return removed
