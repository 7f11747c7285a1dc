#!/usr/bin/env python3
"""bench/audit.py: how well `monalia audit` finds problem images planted in a real collection.

The collection: the ByzArt icons (../shared/fixtures/images, else the test copy), with 5 % more
images planted (tests/support/problem_images): blank placeholder scans, colour charts, 2x2-pixel
thumbnails scaled back up, scans rotated by a few degrees, and exact copies of other records'
files, the kinds in turn, each record keeping the subjects of the icon it was made from. The
chain a user runs: harvest, images, label, `train --folds 3` (linear probe), then `monalia
audit` (cleanvision's image checks and Datalab's dataset checks), once with the libraries'
default thresholds and once with `[audit] thresholds` set for this collection.

Per planted kind: recall (planted images of the kind that any check flags; a duplicate counts
once both copies are flagged as duplicates). Per check: how many images it flags and its
precision (flagged images that are planted, or, for the duplicate checks, that are the originals
of a planted copy). Target: recall 1.0 for blank and duplicate, and at least 0.6 over all kinds.

Usage: .venv/bin/python bench/audit.py [--share 0.05] [--seed 0] [--images DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from benchlib import Criterion, monalia, verdict  # noqa: E402
from support.problem_images import KINDS, plant_problems, write_project  # noqa: E402

SHARED = REPO.parent / "shared" / "fixtures" / "images" / "byzart_icons"
COPY = REPO / "tests" / "fixtures" / "images" / "byzart_icons"
TUNED = "\n[audit]\nthresholds = {{ low_information = {low}, odd_size = 0.5 }}\n"
DUPLICATE_CHECKS = {"exact_duplicates", "near_duplicates", "near_duplicate"}


def score(found: list[dict], planted: dict[str, tuple[str, str]]):
    """Recall per planted kind, flagged count and precision per check."""
    by_image: dict[str, set[str]] = defaultdict(set)
    for entry in found:
        by_image[entry["reference"]].add(entry["kind"])
    originals = {source for kind, source in planted.values() if kind == "duplicate"}
    recall = {}
    for kind in KINDS:
        names = [name for name, (k, _source) in planted.items() if k == kind]
        hits = 0
        for name in names:
            if kind == "duplicate":
                source = planted[name][1]
                hits += bool(
                    by_image[name] & DUPLICATE_CHECKS and by_image[source] & DUPLICATE_CHECKS
                )
            else:
                hits += bool(by_image[name])
        recall[kind] = (hits, len(names))
    checks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, kinds in by_image.items():
        for kind in kinds:
            checks[kind][0] += 1
            right = name in planted or (kind in DUPLICATE_CHECKS and name in originals)
            checks[kind][1] += right
    return recall, dict(checks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--keep", type=Path, help="make the project here and keep it")
    parser.add_argument(
        "--low-information",
        type=float,
        default=0.7,
        help="the tuned run's low_information threshold",
    )
    args = parser.parse_args()
    source = args.images or (SHARED if SHARED.is_dir() else COPY)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        root = args.keep or Path(tmp)
        images = root / "images"
        planted = plant_problems(source, images, args.share, args.seed)
        folder = root / "project"
        write_project(folder, images, planted, classes=6)
        total = len(list(images.glob("*.jpg")))
        print(
            f"bench/audit.py: {source.name}, {total} images of which {len(planted)} planted "
            f"({', '.join(f'{k} {n}' for k, n in Counter(k for k, _ in planted.values()).items())})"
        )
        started = time.perf_counter()
        for stage in ("harvest", "images", "label"):
            monalia(folder, stage)
        monalia(folder, "train", "--folds", "3")
        print(f"harvest, images, label, train with 3 folds: {time.perf_counter() - started:.0f} s")
        results = {}
        project_file = folder / "monalia.toml"
        plain = project_file.read_text(encoding="utf-8")
        for name, extra in (("defaults", ""), ("tuned", TUNED.format(low=args.low_information))):
            project_file.write_text(plain + extra, encoding="utf-8")
            started = time.perf_counter()
            found = json.loads(monalia(folder, "audit", "--format", "json"))
            seconds = time.perf_counter() - started
            results[name] = score(found, planted)
            recall, checks = results[name]
            print(f"\n{name} thresholds ({seconds:.1f} s for {total} images)")
            print(f"{'planted kind':<14} {'found':>5} {'of':>3} {'recall':>7}")
            for kind, (hits, n) in recall.items():
                print(f"{kind:<14} {hits:>5} {n:>3} {hits / n if n else 0:>7.2f}")
            print(f"{'check':<22} {'flagged':>7} {'right':>5} {'precision':>9}")
            for kind, (flagged, right) in sorted(checks.items()):
                print(f"{kind:<22} {flagged:>7} {right:>5} {right / flagged:>9.2f}")
    recall, _checks = results["tuned"]
    default_recall, _ = results["defaults"]

    def share(found) -> float:
        return sum(h for h, _ in found.values()) / max(1, sum(n for _, n in found.values()))

    criteria = [
        Criterion(
            "blank recall", recall["blank"][0] / max(1, recall["blank"][1]), 1.0, at_most=False
        ),
        Criterion(
            "duplicate recall",
            recall["duplicate"][0] / max(1, recall["duplicate"][1]),
            1.0,
            at_most=False,
        ),
        Criterion("recall over all kinds (tuned)", share(recall), 0.6, at_most=False),
    ]
    figures = (
        "recall "
        + ", ".join(f"{k} {h}/{n}" for k, (h, n) in recall.items())
        + f"; all kinds {share(recall):.2f} tuned, {share(default_recall):.2f} with the defaults"
    )
    print(verdict("audit", criteria, figures))


if __name__ == "__main__":
    main()
