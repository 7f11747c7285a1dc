#!/usr/bin/env python3
"""bench/findings.py: how well each method finds label errors planted in a real collection.

The collection: the ByzArt icons (real images, 4.3 labels each; ../shared/fixtures/images, else
the test copy in tests/fixtures/images) as JSON Lines records whose subjects are their labels,
with errors planted in 2 %, 5 % and 10 % of the annotations: a true annotation removed
(silence), a false one added (noise), or both at once (a swap). Each rate runs the whole chain
as a user does: harvest, images, label, `train --folds K` (the model, then K fold models for
the out-of-sample scores), enrich, `report noise` and `report silence` with each method.

For each method, its ranking of every candidate (annotated pairs for noise, unannotated for
silence) is scored against the planted errors: average precision (AP), precision in the first
n (n = the planted count), recall in the first 2n; and the report's own list: how many it shows
and how many planted errors are in it.
- threshold: MonaLIA's rule, on the model's own (in-sample) scores, lowest first for noise.
- confident: cleanlab's label issues over the out-of-sample scores, ranked by self-confidence.
Both run on the same project in the same run, side by side.
Target: the confident method's noise AP above the threshold method's at every rate.

Usage: .venv/bin/python bench/findings.py [--rates 0.02,0.05,0.1] [--folds 5] [--seed 0]
       [--images DIR] [--cnn]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from benchlib import Criterion, monalia, verdict  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402
from support.byzart_project import LINEAR_PROBE, build  # noqa: E402

from monalia.catalog.database import Catalog  # noqa: E402
from monalia.curation.confident_learning import find_issues, ranking  # noqa: E402

SHARED = REPO.parent / "shared" / "fixtures" / "images" / "byzart_icons"
COPY = REPO / "tests" / "fixtures" / "images" / "byzart_icons"
CNN = 'plugin = "cnn"\ninput_size = 96\nepochs = 12\nbatch_size = 16\nworkers = 0'


def scores_by_record(catalog: Catalog, model_name: str) -> tuple[list[str], list[str], np.ndarray]:
    """(record ids, class URIs, scores) of a model or score set, one row per record."""
    from sqlalchemy import text

    with catalog.session() as session:
        rows = session.execute(
            text(
                "SELECT r.source_id, p.class_uri, p.score FROM predictions p "
                "JOIN models m ON m.id = p.model_id JOIN records r ON r.id = p.record_id "
                "WHERE m.name = :name"
            ),
            {"name": model_name},
        ).all()
    records = sorted({row[0] for row in rows})
    uris = sorted({row[1] for row in rows})
    index = {r: i for i, r in enumerate(records)}
    column = {u: i for i, u in enumerate(uris)}
    scores = np.full((len(records), len(uris)), np.nan)
    for record, uri, score in rows:
        scores[index[record], column[uri]] = score
    return records, uris, scores


def measure(order: list[tuple[str, str]], planted: set[tuple[str, str]]) -> dict[str, float]:
    """AP, precision in the first n and recall in the first 2n of a ranking of pairs."""
    n = len(planted)
    truth = np.array([pair in planted for pair in order], dtype=int)
    found = int(truth.sum())
    ap = float(average_precision_score(truth, -np.arange(len(order)))) if found else 0.0
    # planted pairs the ranking does not hold at all count as missed
    ap *= found / n if n else 1.0
    return {
        "ap": ap,
        "p_at_n": float(truth[:n].sum() / n) if n else 0.0,
        "r_at_2n": float(truth[: 2 * n].sum() / n) if n else 0.0,
    }


def rankings(records, uris, scores, given, kind: str, method: str) -> list[tuple[str, str]]:
    labels = np.array([[uri in given.get(r, set()) for uri in uris] for r in records], dtype=int)
    if method == "confident":
        pairs = ranking(labels, scores, find_issues(labels, scores), kind)
    else:
        wanted = 1 if kind == "noise" else 0
        pairs = [(int(r), int(c)) for r, c in zip(*np.nonzero(labels == wanted), strict=True)]
        pairs.sort(key=lambda p: scores[p] if kind == "noise" else -scores[p])
    return [(records[r], uris[c]) for r, c in pairs]


def reported(folder: Path, kind: str, method: str) -> set[tuple[str, str]]:
    found = json.loads(monalia(folder, "report", kind, "--method", method, "--format", "json"))
    return {(f["reference"], f["class"]) for f in found}


def run_rate(rate: float, args, images: Path, root: Path) -> dict[str, dict]:
    folder = root / f"rate-{rate:g}"
    started = time.perf_counter()
    planted = build(
        folder,
        images,
        lambda *a: monalia(folder, *a),
        rate,
        seed=args.seed,
        trainer=CNN if args.cnn else LINEAR_PROBE,
    )
    monalia(folder, "train", "--folds", str(args.folds))
    monalia(folder, "enrich")
    catalog = Catalog.open(f"sqlite:///{folder}/catalog.sqlite")
    from monalia.catalog.lookups import find_model
    from monalia.stages.train.crossfit import score_set_of

    main = find_model(catalog, None).name
    oos = score_set_of(catalog, main).name
    results: dict[str, dict] = {}
    for method, source in (("threshold", main), ("confident", oos)):
        records, uris, scores = scores_by_record(catalog, source)
        keep = ~np.isnan(scores).any(axis=1)
        records = [r for r, k in zip(records, keep, strict=True) if k]
        scores = scores[keep]
        for kind in ("noise", "silence"):
            errors = planted.noise if kind == "noise" else planted.silence
            order = rankings(records, uris, scores, planted.given, kind, method)
            shown = reported(folder, kind, method)
            results[f"{method} {kind}"] = {
                **measure(order, errors),
                "planted": len(errors),
                "reported": len(shown),
                "planted_reported": len(shown & errors),
            }
    results["seconds"] = {"total": time.perf_counter() - started}
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="0.02,0.05,0.1")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--cnn", action="store_true", help="the CNN trainer (slow on a CPU)")
    parser.add_argument("--keep", type=Path, help="make the projects here and keep them")
    args = parser.parse_args()
    images = args.images or (SHARED if SHARED.is_dir() else COPY)
    rates = [float(r) for r in args.rates.split(",")]
    trainer = "cnn" if args.cnn else "linear-probe"
    print(f"bench/findings.py: {images.name}, {trainer}, {args.folds} folds, seed {args.seed}")
    criteria = []
    with tempfile.TemporaryDirectory(prefix="bench-findings-") as tmp:
        for rate in rates:
            results = run_rate(rate, args, images, args.keep or Path(tmp))
            print(
                f"\nerrors planted in {rate:.0%} of the annotations ({results['seconds']['total']:.0f} s)"
            )
            print(
                f"{'method':<10} {'kind':<8} {'planted':>7} {'AP':>6} {'P@n':>6} {'R@2n':>6} "
                f"{'reported':>8} {'planted in report':>18}"
            )
            for name, entry in results.items():
                if name == "seconds":
                    continue
                method, kind = name.split()
                print(
                    f"{method:<10} {kind:<8} {entry['planted']:>7} {entry['ap']:>6.3f} "
                    f"{entry['p_at_n']:>6.3f} {entry['r_at_2n']:>6.3f} {entry['reported']:>8} "
                    f"{entry['planted_reported']:>18}"
                )
            criteria.append(
                Criterion(
                    f"noise AP at {rate:.0%}, confident over threshold",
                    results["confident noise"]["ap"] / max(results["threshold noise"]["ap"], 1e-9),
                    1.0,
                    at_most=False,
                    unit="x",
                )
            )
    figures = "; ".join(f"{c.what.split(',')[0]}: {c.value:.2f}x" for c in criteria)
    print(verdict("findings", criteria, figures))


if __name__ == "__main__":
    main()
