#!/usr/bin/env python3
"""bench/teach.py: teaching a class from 5 examples, by uncertainty sampling.

The collection: the ByzArt icons (../shared/fixtures/images, else the test copy), harvested and
fetched as a user does, their vectors made by the `[similarity]` embedder (EfficientNet-Lite0,
ImageNet weights). For each label with at least 15 icons, and for several seeds: start from 5
random icons that show it, then answer questions as a curator would (the truth from the icons'
labels), retraining `monalia teach`'s linear model after every answer, the questions chosen
  - by uncertainty (the records the model is least sure of first: what `monalia teach ask` and
    the workbench ask), or
  - at random;
and, as a third ranking, the similarity to the 5 examples alone (no answers). After 20, 50 and 100
answers: the average precision (AP) of the ranking of the whole collection, averaged over labels
and seeds. Target: uncertainty sampling reaches, in at most 50 answers, the AP random sampling
reaches in 100.

Usage: .venv/bin/python bench/teach.py [--seeds 3] [--images DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from benchlib import Criterion, monalia, verdict  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

SHARED = REPO.parent / "shared" / "fixtures" / "images" / "byzart_icons"
COPY = REPO / "tests" / "fixtures" / "images" / "byzart_icons"
CHECKPOINTS = (20, 50, 100)
START = 5
PROJECT = """
[project]
name = "teach"
catalog = "sqlite:///{folder}/catalog.sqlite"
base_iri = "urn:monalia:teach:"
allow_file_urls = true

[sources.icons]
plugin = "jsonl"
path = "records.jsonl"
"""


def simulate(space, truth: np.ndarray, strategy: str, seed: int) -> dict[int, float]:
    """AP of the ranking after each checkpoint's number of answers."""
    from monalia.curation.teach import Learner

    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(truth)
    given = {space.records[int(r)]: True for r in rng.choice(positives, START, replace=False)}
    learner = Learner(space, seed=seed)
    scores = learner.fit(given)
    found = {}
    for answered in range(1, max(CHECKPOINTS) + 1):
        known = {space.row_of[r] for r in given}
        if strategy == "uncertainty":
            ask = learner.least_sure(scores, known, 1)[0]
        else:
            ask = int(rng.choice(np.setdiff1d(np.arange(len(truth)), list(known))))
        given[space.records[ask]] = bool(truth[ask])
        scores = learner.fit(given)
        if answered in CHECKPOINTS:
            found[answered] = float(average_precision_score(truth, scores))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--keep", type=Path, help="make the project here and keep it")
    args = parser.parse_args()
    images = args.images or (SHARED if SHARED.is_dir() else COPY)
    with (images / "labels.csv").open(encoding="utf-8") as handle:
        labels = {row["file"]: set(row["labels"].split("|")) for row in csv.DictReader(handle)}
    with tempfile.TemporaryDirectory(prefix="bench-teach-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "records.jsonl").open("w", encoding="utf-8") as out:
            for name in sorted(labels):
                out.write(
                    json.dumps(
                        {"id": name, "title": name, "images": [(images / name).resolve().as_uri()]}
                    )
                    + "\n"
                )
        (folder / "monalia.toml").write_text(PROJECT.format(folder=folder), encoding="utf-8")
        monalia(folder, "harvest")
        monalia(folder, "images")
        from monalia.api.registry import default_registry
        from monalia.catalog.database import Catalog
        from monalia.curation.teach import Learner, record_space
        from monalia.project import load_project

        project = load_project(folder / "monalia.toml", default_registry())
        catalog = Catalog.open(project.catalog_url)
        started = time.perf_counter()
        space = record_space(catalog, project)
        print(
            f"bench/teach.py: {images.name}, {len(space.records)} records embedded in "
            f"{time.perf_counter() - started:.0f} s, {args.seeds} seeds, {START} examples to start"
        )
        from sqlalchemy import select

        from monalia.catalog.models import RecordRow

        with catalog.session() as session:
            source_id = dict(session.execute(select(RecordRow.iri, RecordRow.source_id)).all())
        names = [source_id[record] for record in space.records]
        reference = dict(enumerate(names))
        counts = Counter(label for given in labels.values() for label in given)
        chosen = sorted(c for c, n in counts.items() if 15 <= n <= len(labels) - 15)
        results = {s: {k: [] for k in CHECKPOINTS} for s in ("uncertainty", "random")}
        similarity = []
        started = time.perf_counter()
        for label in chosen:
            truth = np.array(
                [label in labels.get(reference[row], set()) for row in range(len(names))], dtype=int
            )
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                first = rng.choice(np.flatnonzero(truth), START, replace=False)
                sims = Learner(space).similarity([int(r) for r in first])
                similarity.append(float(average_precision_score(truth, sims)))
                for strategy in results:
                    for checkpoint, ap in simulate(space, truth, strategy, seed).items():
                        results[strategy][checkpoint].append(ap)
        print(f"{len(chosen)} labels x {args.seeds} seeds in {time.perf_counter() - started:.0f} s")
    print(f"{'answers':>8} {'uncertainty AP':>15} {'random AP':>10} {'similarity AP':>14}")
    mean = {s: {k: float(np.mean(v)) for k, v in results[s].items()} for s in results}
    for checkpoint in CHECKPOINTS:
        print(
            f"{checkpoint:>8} {mean['uncertainty'][checkpoint]:>15.3f} "
            f"{mean['random'][checkpoint]:>10.3f} {float(np.mean(similarity)):>14.3f}"
        )
    needed = next((k for k in CHECKPOINTS if mean["uncertainty"][k] >= mean["random"][100]), None)
    criteria = [
        Criterion(
            "uncertainty AP at 50 answers over random AP at 100",
            mean["uncertainty"][50] / mean["random"][100],
            1.0,
            at_most=False,
        )
    ]
    figures = (
        "AP after 20/50/100 answers: uncertainty "
        + "/".join(f"{mean['uncertainty'][k]:.3f}" for k in CHECKPOINTS)
        + ", random "
        + "/".join(f"{mean['random'][k]:.3f}" for k in CHECKPOINTS)
        + f", similarity to the examples {float(np.mean(similarity)):.3f}; uncertainty reaches "
        f"random's 100-answer AP in {needed if needed else 'more than 100'} answers"
    )
    print(verdict("teach", criteria, figures))


if __name__ == "__main__":
    main()
