"""Problem images planted among real icons: what `monalia audit` must find.

Five kinds, each made from the collection itself so that only the problem tells them apart: a
blank placeholder scan, a colour chart (a strip of patches, as photographers put in the frame), a
thumbnail of 2x2 pixels scaled back up, a scan rotated by a few degrees with white corners, and
an exact copy of another record's file. Sizes follow the icons' own. Used by tests/test_audit
and bench/audit.
"""

from __future__ import annotations

import random
import shutil
import statistics
from pathlib import Path

KINDS = ("blank", "colour_chart", "tiny", "rotated", "duplicate")
# which of the audit's kinds count as finding each planted kind
FOUND_BY = {
    "blank": {"low_information", "light", "dark"},
    "colour_chart": {"odd_aspect_ratio", "outlier", "low_information"},
    "tiny": {"blurry", "low_information", "near_duplicates"},
    "rotated": {"odd_aspect_ratio", "outlier", "light"},
    "duplicate": {"exact_duplicates", "near_duplicates", "near_duplicate"},
}
PATCHES = [
    (255, 255, 255),
    (200, 200, 200),
    (128, 128, 128),
    (64, 64, 64),
    (0, 0, 0),
    (230, 25, 25),
    (25, 160, 40),
    (30, 60, 220),
    (250, 220, 20),
    (0, 200, 200),
    (220, 0, 200),
    (140, 80, 20),
]


def plant_problems(
    source: Path, target: Path, share: float, seed: int = 0
) -> dict[str, tuple[str, str]]:
    """Copy the icons of `source` into `target` and add `share` of their number as problem
    images, the kinds in turn; returns planted file name -> (kind, the icon it was made from)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    icons = sorted(source.glob("*.jpg"))
    for icon in icons:
        shutil.copy(icon, target / icon.name)
    shutil.copy(source / "labels.csv", target / "labels.csv")
    sizes = [Image.open(icon).size for icon in icons]
    width = int(statistics.median(w for w, _ in sizes))
    height = int(statistics.median(h for _, h in sizes))
    count = max(len(KINDS), round(share * len(icons)))
    planted: dict[str, tuple[str, str]] = {}
    picks = rng.sample(icons, count)
    for number, icon in enumerate(picks):
        kind = KINDS[number % len(KINDS)]
        name = f"planted-{number:03d}-{kind}.jpg"
        path = target / name
        if kind == "blank":
            tone = rng.randint(238, 252)
            Image.new("RGB", (width, height), (tone, tone, tone - 3)).save(path, quality=92)
        elif kind == "colour_chart":
            patches = PATCHES[:]
            rng.shuffle(patches)  # no two charts alike
            chart = Image.new("RGB", (width * 2, max(24, height // 4)), (90, 90, 90))
            draw = ImageDraw.Draw(chart)
            step = chart.width // len(PATCHES)
            for i, colour in enumerate(patches):
                draw.rectangle([i * step + 2, 3, (i + 1) * step - 2, chart.height - 4], fill=colour)
            chart.save(path, quality=92)
        elif kind == "tiny":
            picture = Image.open(icon).convert("RGB").resize((2, 2), Image.BILINEAR)
            picture.resize((width, height), Image.BILINEAR).save(path, quality=92)
        elif kind == "rotated":
            picture = Image.open(icon).convert("RGB")
            turned = picture.rotate(
                rng.choice([-1, 1]) * rng.uniform(6, 12), expand=True, fillcolor=(255, 255, 255)
            )
            turned.save(path, quality=92)
        else:
            shutil.copy(icon, path)
        planted[name] = (kind, icon.name)
    return planted


PROJECT = """
[project]
name = "audited"
catalog = "sqlite:///{folder}/catalog.sqlite"
base_iri = "urn:monalia:audited:"
allow_file_urls = true

[sources.icons]
plugin = "jsonl"
path = "records.jsonl"

[thesaurus]
files = ["byzart.ttl"]

[classes]
targets = [{targets}]

[dataset]
name = "icons"
min_per_class = 8

[trainer]
plugin = "linear-probe"
batch_size = 32

[enrich]
workers = 0
"""


def write_project(folder: Path, images: Path, planted: dict[str, tuple[str, str]], classes: int):
    """A project over the icons and the planted images (each with the labels of the icon it was
    made from: a wrong upload keeps the record's subjects), learning the `classes` most common
    labels."""
    import csv
    import json
    from collections import Counter

    with (images / "labels.csv").open(encoding="utf-8") as handle:
        labels = {row["file"]: row["labels"].split("|") for row in csv.DictReader(handle)}
    common = [c for c, _ in Counter(x for v in labels.values() for x in v).most_common(classes)]
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in images.glob("*.jpg"))
    with (folder / "records.jsonl").open("w", encoding="utf-8") as out:
        for name in names:
            given = labels.get(name) or labels.get(planted.get(name, ("", ""))[1], [])
            record = {
                "id": name,
                "title": name,
                "images": [(images / name).resolve().as_uri()],
                "subjects": [{"uri": f"urn:byzart:{c}"} for c in given if c in common] or ["icon"],
            }
            out.write(json.dumps(record) + "\n")
    concepts = "\n".join(
        f'<urn:byzart:{c}> a skos:Concept ; skos:prefLabel "{c}"@en .' for c in common
    )
    (folder / "byzart.ttl").write_text(
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n" + concepts + "\n",
        encoding="utf-8",
    )
    (folder / "monalia.toml").write_text(
        PROJECT.format(folder=folder, targets=", ".join(f'"urn:byzart:{c}"' for c in common)),
        encoding="utf-8",
    )
