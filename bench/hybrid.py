#!/usr/bin/env python3
"""bench/hybrid.py: the hybrid ranking (image score fused with the metadata's evidence) against
the image score alone and the metadata alone.

The collection: `monalia demo` (300 notices, no fold models), twice: with the model trained as
the demo trains it (10 epochs: the image alone is nearly perfect) and under-trained (2 epochs:
the image is unsure, as on a real collection), each class searched as a user does: `monalia search CLASS --rank hybrid --min-score 0`,
every record the model scored. The truth is what each picture shows (the demo's shapes.json),
so the demo's planted wrong annotations count against the metadata. Three rankings per class:
  - image: the model's score;
  - text: the metadata's strongest evidence (the class's concept or label, a narrower term, the
    label in the title or description, none), ties left as ties;
  - hybrid: the log-odds fusion `monalia search --rank hybrid` ranks by.
Average precision per class, then the mean over classes. Target, for each model: the hybrid
ranking's AP at least the better of the other two.

Usage: .venv/bin/python bench/hybrid.py [--notices 300] [--epochs 10,2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
from benchlib import Criterion, monalia, verdict  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

EVIDENCE_RANK = {"class": 3, "narrower": 2, "text": 1, None: 0}


def measure(folder: Path, notices: int, epochs: int) -> dict[str, float]:
    """Mean AP of the three rankings over the demo's classes, for a demo trained `epochs`."""
    from monalia.demo.collection import CLASSES

    started = time.perf_counter()
    monalia(
        Path.cwd(),
        "demo",
        str(folder),
        "--notices",
        str(notices),
        "--epochs",
        str(epochs),
        "--folds",
        "0",
    )
    print(f"demo ({epochs} epochs) made and trained in {time.perf_counter() - started:.0f} s")
    shapes = json.loads((folder / "shapes.json").read_text(encoding="utf-8"))
    results: dict[str, list[float]] = {"image": [], "text": [], "hybrid": []}
    for uri, (label, _) in CLASSES.items():
        found = json.loads(
            monalia(
                folder,
                "search",
                label,
                "--rank",
                "hybrid",
                "--min-score",
                "0",
                "--limit",
                "1000000",
                "--format",
                "json",
            )
        )
        truth = np.array([uri in shapes.get(f["reference"], {}) for f in found], dtype=int)
        image = np.array([f["image_score"] for f in found])
        text = np.array([EVIDENCE_RANK[f["evidence"]] for f in found], dtype=float)
        fused = np.array([f["score"] for f in found])
        for name, scores in (("image", image), ("text", text), ("hybrid", fused)):
            results[name].append(float(average_precision_score(truth, scores)))
        print(
            f"  {label}: {len(found)} records, {int(truth.sum())} show it; AP image "
            f"{results['image'][-1]:.4f}, text {results['text'][-1]:.4f}, hybrid "
            f"{results['hybrid'][-1]:.4f}"
        )
    return {name: float(np.mean(values)) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=300)
    parser.add_argument("--epochs", default="10,2", help="The demo models' epochs, by commas.")
    args = parser.parse_args()
    criteria, figures = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for epochs in (int(value) for value in args.epochs.split(",")):
            mean = measure(Path(scratch) / f"demo-{epochs}", args.notices, epochs)
            best = max(mean["image"], mean["text"])
            criteria.append(
                Criterion(
                    f"{epochs}-epoch model: hybrid AP over the better of image and text",
                    mean["hybrid"] / best,
                    1.0,
                )
            )
            figures.append(
                f"{epochs} epochs: hybrid {mean['hybrid']:.4f}, image {mean['image']:.4f}, "
                f"text {mean['text']:.4f}"
            )
    print(
        verdict(
            "hybrid",
            criteria,
            "demo, mean AP over its 3 classes: "
            + "; ".join(figures)
            + "; the Joconde fixtures hold no images, so no fused ranking is measured on them",
        )
    )


if __name__ == "__main__":
    main()
