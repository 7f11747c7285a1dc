"""A local IIIF server for the tests: Presentation documents, an Image API level 1 service that
renders real JPEGs at the size asked for, a level 0 service of static files, and failures."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from support.servers import ApiServer, Reply

SIZE = re.compile(r"^/image/(?P<name>[^/]+)/full/(?P<size>[^/]+)/0/default\.jpg$")
STATIC = re.compile(r"^/static/(?P<name>[^/]+)/full/(?P<w>\d+),(?P<h>\d*)/0/default\.jpg$")


def picture(name: str, width: int, height: int) -> Image.Image:
    """A picture that differs by name (so every image has its own hash)."""
    seed = sum(name.encode()) % 200
    image = Image.new("RGB", (width, height), (30 + seed, 90, 160))
    pen = ImageDraw.Draw(image)
    pen.ellipse((width // 5, height // 5, width * 3 // 4, height * 3 // 4), fill=(240, seed, 40))
    pen.text((4, 4), name, fill=(255, 255, 255))
    return image


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def fit(size: str, full: tuple[int, int]) -> tuple[int, int] | None:
    """The pixel size an Image API size parameter asks for (the forms level 1 supports)."""
    width, height = full
    if size in ("full", "max"):
        return full
    match = re.fullmatch(r"(!?)(\d*),(\d*)", size)
    if not match:
        return None
    bang, w, h = match.group(1), match.group(2), match.group(3)
    if bang and w and h:
        scale = min(int(w) / width, int(h) / height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    if w and h:
        return int(w), int(h)
    if w:
        return int(w), max(1, round(height * int(w) / width))
    if h:
        return max(1, round(width * int(h) / height)), int(h)
    return None


class IiifServer(ApiServer):
    """Serves `documents` (path -> JSON, ids already pointing here) and images named in
    `images` (name -> full width, height) as a level 1 service under /image/ and a level 0
    service under /static/; `extra(path)` may answer any other path."""

    def __init__(self, extra: Callable[[str], Reply | None] | None = None):
        self.documents: dict[str, Any] = {}
        self.images: dict[str, tuple[int, int]] = {}
        self.extra = extra
        super().__init__(self.answer)

    def answer(self, path: str, params: dict[str, str]) -> Reply:
        if path in self.documents:
            return Reply(body=self.documents[path], headers={"Content-Type": "application/ld+json"})
        if self.extra is not None and (reply := self.extra(path)) is not None:
            return reply
        if match := SIZE.match(path):
            full = self.images.get(match["name"])
            size = fit(match["size"], full) if full else None
            if size is None:
                return Reply(status=400 if full else 404, body="bad request")
            body = jpeg(picture(match["name"], *size))
            return Reply(body=body, headers={"Content-Type": "image/jpeg"})
        if path.startswith("/image/") and path.endswith("/info.json"):
            name = path.split("/")[2]
            if name not in self.images:
                return Reply(status=404, body="no such image")
            width, height = self.images[name]
            return Reply(body=self.info(f"{self.url}/image/{name}", width, height, level=1))
        if path.startswith("/static/") and path.endswith("/info.json"):
            name = path.split("/")[2]
            width, height = self.images[name]
            return Reply(body=self.info(f"{self.url}/static/{name}", width, height, level=0))
        if match := STATIC.match(path):
            full = self.images.get(match["name"])
            if full is None or int(match["w"]) not in [w for w, _ in self.static_sizes(*full)]:
                return Reply(status=404, body="no such file")  # static: only listed sizes exist
            size = fit(f"{match['w']},", full)
            return Reply(
                body=jpeg(picture(match["name"], *size)), headers={"Content-Type": "image/jpeg"}
            )
        return Reply(status=404, body="not found")

    @staticmethod
    def static_sizes(width: int, height: int) -> list[tuple[int, int]]:
        return [(width // f, height // f) for f in (8, 4, 2, 1)]

    def info(self, service: str, width: int, height: int, level: int) -> dict[str, Any]:
        info: dict[str, Any] = {
            "@context": "http://iiif.io/api/image/2/context.json",
            "@id": service,
            "protocol": "http://iiif.io/api/image",
            "width": width,
            "height": height,
            "profile": [f"http://iiif.io/api/image/2/level{level}.json"],
        }
        if level == 0:
            info["sizes"] = [{"width": w, "height": h} for w, h in self.static_sizes(width, height)]
        return info


def slow_images(path: str) -> Reply | None:
    """`/slow/NAME.jpg`: a small picture of NAME, answered after 50 ms (so a test can kill a
    run in the middle)."""
    if path.startswith("/slow/"):
        name = path.split("/")[2]
        return Reply(
            body=jpeg(picture(name, 160, 120)), delay=0.05, headers={"Content-Type": "image/jpeg"}
        )
    return None


def local_copy(doc: Any, replacements: dict[str, str]) -> Any:
    """A document with ids rewritten: every string equal to, or starting with, a key."""
    text = json.dumps(doc)
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    return json.loads(text)


def fixture(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
