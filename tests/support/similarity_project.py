"""A project of real icons (ByzArt) with transformed copies planted as other records.

The originals are one source; each planted copy (resized, a 10 % crop, JPEG quality 30,
greyscale, a small rotation, an added border) is a record of a second source carrying the same
labels, as when a provider sends the same object again. One copy is the original file itself
(identical content). Harvest and images run for real (file URLs).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

from PIL import Image, ImageOps

from support.byzart_project import BYZART, read_labels

ICONS = Path(__file__).parent.parent / "fixtures" / "images" / "byzart_icons"

PROJECT = """
[project]
name = "similar"
catalog = "sqlite:///{folder}/catalog.sqlite"
base_iri = "urn:monalia:similar:"
allow_file_urls = true

[sources.icons]
plugin = "jsonl"
path = "icons.jsonl"

[sources.copies]
plugin = "jsonl"
path = "copies.jsonl"

[thesaurus]
files = ["byzart.ttl"]

[classes]
targets = [{targets}]

[dataset]
name = "icons"
min_per_class = 3

[sinks.files]
plugin = "turtle"
path = "out/{{graph}}.ttl"
"""


def transform(image: Image.Image, how: str) -> Image.Image:
    width, height = image.size
    if how == "resize":
        return image.resize((width * 2 // 3, height * 2 // 3), Image.Resampling.BILINEAR)
    if how == "crop":
        return image.crop((width // 20, height // 20, width - width // 20, height - height // 20))
    if how == "jpeg30":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=30)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if how == "grey":
        return ImageOps.grayscale(image).convert("RGB")
    if how == "rotate":
        return image.rotate(3, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))
    if how == "border":
        return ImageOps.expand(image, border=width // 12, fill=(250, 250, 250))
    raise ValueError(how)


TRANSFORMS = ("resize", "crop", "jpeg30", "grey", "rotate", "border")


def build(folder: Path, run, originals: int = 40, copied: int = 12) -> dict[str, str]:
    """Write the project and run harvest and images; returns copy id -> original id."""
    labels = read_labels(ICONS)
    names = sorted(labels)[:originals]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "copies").mkdir(exist_ok=True)
    counts = Counter(label for name in names for label in labels[name])
    classes = sorted(c for c, n in counts.items() if n >= 6)[:6]

    def record(identifier: str, path: Path, name: str) -> dict:
        subjects = [{"uri": f"{BYZART}{c}"} for c in labels[name] if c in classes]
        return {
            "id": identifier,
            "title": f"icon {name[:12]}",
            "images": [path.resolve().as_uri()],
            "subjects": subjects or ["icône"],
        }

    icons = [record(f"icon-{n:03d}", ICONS / name, name) for n, name in enumerate(names)]
    copies, origin = [], {}
    for n, name in enumerate(names[:copied]):
        how = TRANSFORMS[n % len(TRANSFORMS)]
        with Image.open(ICONS / name) as image:
            copy = transform(image.convert("RGB"), how)
        path = folder / "copies" / f"copy-{n:03d}-{how}.jpg"
        copy.save(path, "JPEG", quality=90)
        copies.append(record(f"copy-{n:03d}-{how}", path, name))
        origin[f"copy-{n:03d}-{how}"] = f"icon-{n:03d}"
    # the same file again, in the other source: a duplicate by content
    copies.append(record("copy-same-file", ICONS / names[originals - 1], names[originals - 1]))
    origin["copy-same-file"] = f"icon-{originals - 1:03d}"
    for file, rows in (("icons.jsonl", icons), ("copies.jsonl", copies)):
        with (folder / file).open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    concepts = "\n".join(
        f'<{BYZART}{c}> a skos:Concept ; skos:prefLabel "{c}"@en .' for c in classes
    )
    (folder / "byzart.ttl").write_text(
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n" + concepts + "\n",
        encoding="utf-8",
    )
    (folder / "monalia.toml").write_text(
        PROJECT.format(folder=folder, targets=", ".join(f'"{BYZART}{c}"' for c in classes)),
        encoding="utf-8",
    )
    for stage in ("harvest", "images"):
        run(stage)
    return origin
