"""A project over real icons (ByzArt) with label errors planted at a known rate.

Each icon is a record whose subjects are its true ByzArt labels (kept to the classes with enough
images), except where an error is planted: a true annotation removed (silence to find), or a
false one added, alone or in place of a removed one (a swap: noise and silence). The records go
through the real chain: harvest (JSON Lines), images (file URLs), label, train, enrich.
Used by the findings tests and by bench/findings.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BYZART = "urn:byzart:"
PROJECT = """
[project]
name = "icons"
catalog = "sqlite:///{folder}/catalog.sqlite"
base_iri = "urn:monalia:icons:"
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
min_per_class = {min_per_class}

[trainer]
{trainer}

[sinks.store]
plugin = "embedded-store"
path = "store"

[enrich]
records = true  # the store holds the records' metadata: the reports read their subjects
workers = 0
batch_size = 32

[report]
method = "{method}"
"""
LINEAR_PROBE = 'plugin = "linear-probe"\nbatch_size = 32'


@dataclass
class Planted:
    """What was planted: (record id, class URI) pairs, and every record's true labels."""

    noise: set[tuple[str, str]] = field(default_factory=set)
    silence: set[tuple[str, str]] = field(default_factory=set)
    truth: dict[str, set[str]] = field(default_factory=dict)
    given: dict[str, set[str]] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)  # URI -> label


def read_labels(images_dir: Path) -> dict[str, list[str]]:
    with (images_dir / "labels.csv").open(encoding="utf-8") as handle:
        return {row["file"]: row["labels"].split("|") for row in csv.DictReader(handle)}


def plant(
    labels: dict[str, list[str]], classes: list[str], rate: float, seed: int
) -> tuple[dict[str, set[str]], Planted]:
    """Each record's given labels with errors planted in `rate` of its annotations."""
    rng = random.Random(seed)
    records = sorted(labels)
    truth = {name: {BYZART + c for c in labels[name] if c in classes} for name in records}
    given = {name: set(uris) for name, uris in truth.items()}
    planted = Planted(truth=truth, classes={BYZART + c: c for c in classes})
    annotations = sum(len(uris) for uris in truth.values())
    count = max(3, round(rate * annotations))
    uris = [BYZART + c for c in classes]
    done: set[str] = set()
    for number in range(count):
        kind = ("silence", "noise", "swap")[number % 3]
        for _ in range(1000):
            name = rng.choice(records)
            if name in done:
                continue
            present = sorted(given[name])
            absent = [uri for uri in uris if uri not in given[name]]
            if kind in ("silence", "swap") and len(present) < 2:
                continue  # keep at least one annotation: a record stays in the dataset
            if kind in ("noise", "swap") and not absent:
                continue
            if kind in ("silence", "swap"):
                removed = rng.choice(present)
                given[name].discard(removed)
                planted.silence.add((name, removed))
            if kind in ("noise", "swap"):
                added = rng.choice(absent)
                given[name].add(added)
                planted.noise.add((name, added))
            done.add(name)
            break
    planted.given = given
    return given, planted


def build(
    folder: Path,
    images_dir: Path,
    run,
    rate: float,
    seed: int = 0,
    min_images: int = 20,
    trainer: str = LINEAR_PROBE,
    method: str = "confident",
) -> Planted:
    """Write the project into `folder`, plant the errors, and run harvest, images and label
    through `run(*args)` (a function that runs `monalia ARGS` in `folder` and checks it)."""
    labels = read_labels(images_dir)
    counts = Counter(label for names in labels.values() for label in names)
    classes = sorted(c for c, n in counts.items() if n >= min_images and n <= len(labels) - 10)
    given, planted = plant(labels, classes, rate, seed)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "records.jsonl").open("w", encoding="utf-8") as out:
        for name in sorted(given):
            record = {
                "id": name,
                "title": name,
                "images": [(images_dir / name).resolve().as_uri()],
                "subjects": [{"uri": uri} for uri in sorted(given[name])] or ["icône"],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    concepts = "\n".join(
        f'<{BYZART}{c}> a skos:Concept ; skos:prefLabel "{c}"@en .' for c in classes
    )
    (folder / "byzart.ttl").write_text(
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n" + concepts + "\n",
        encoding="utf-8",
    )
    (folder / "monalia.toml").write_text(
        PROJECT.format(
            folder=folder,
            targets=", ".join(f'"{BYZART}{c}"' for c in classes),
            min_per_class=max(5, min_images // 2),
            trainer=trainer,
            method=method,
        ),
        encoding="utf-8",
    )
    for stage in ("harvest", "images", "label"):
        run(stage)
    return planted
