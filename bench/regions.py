#!/usr/bin/env python3
"""bench/regions.py: how well `enrich --regions` finds where the demo's shapes are, and its cost.

Builds the demo collection (its generator records where it drew each shape: `shapes.json`),
harvests, fetches, labels and trains it as `monalia demo` does, then, alternating, scores every
image with the model alone (`enrich --rescore --no-regions`) and with regions (`enrich --rescore
--regions`), as the commands do it, each in process on the same catalog.

CorLoc: the share of detections of a class the picture really shows whose strongest box
overlaps the drawn shape with IoU >= 0.5 (detections of a class the picture does not show have
no true box and are counted apart). Cost: the seconds regions add per 1,000 images scored.
Target: CorLoc >= 0.7 (BENCHMARKS.md); the cost is reported.

Usage: .venv/bin/python bench/regions.py [--notices N] [--repeat R] [--folder DIR]
(a --folder holding an earlier run's demo is reused as it is)
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

from benchlib import Criterion, alternate, verdict  # noqa: E402

TARGET_CORLOC = 0.7


def prepare(folder: Path, notices: int):
    from monalia.cli.app import App, run_harvest_stage, run_label_stage
    from monalia.cli.images import run_images_stage
    from monalia.cli.train import run_train_stage
    from monalia.demo.collection import build_sample

    build_sample(folder, notices=notices)
    app = App(str(folder / "monalia.toml"), True)
    for stage in (
        lambda app: run_harvest_stage(app, (), None, None, False),
        run_images_stage,
        run_label_stage,
        run_train_stage,
    ):
        for run in stage(app):
            if run.status != "done":
                raise SystemExit(f"bench regions: {run.stage} ended {run.status}: {run.message}")
    return app


def enrich(app, regions: bool) -> float:
    from monalia.stages.enrich import EnrichOptions
    from monalia.stages.enrich import enrich as enrich_catalog

    options = EnrichOptions(rescore=True, regions=regions, sinks=[])
    started = time.perf_counter()
    outcome = enrich_catalog(app.catalog, app.project, options)
    seconds = time.perf_counter() - started
    for run in (outcome.run, outcome.regions_run):
        if run is not None and run.status != "done":
            raise SystemExit(f"bench regions: {run.stage} ended {run.status}: {run.message}")
    return seconds


def corloc(app, folder: Path) -> tuple[float, int, int, int]:
    """(CorLoc, detections with a true box, of which located, detections without one)."""
    from monalia.stages.enrich.regions import localisation

    drawn = json.loads((folder / "shapes.json").read_text(encoding="utf-8"))
    truths, located, strays = localisation(
        app.catalog, lambda source_id, uri: drawn.get(source_id.rsplit("/", 1)[-1], {}).get(uri)
    )
    return (located / truths if truths else 0.0), truths, located, strays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, help="where to build the demo (default: a temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = args.folder or Path(temp) / "demo"
        if args.folder and (folder / ".monalia").is_dir():  # prepared by an earlier run
            from monalia.cli.app import App

            app = App(str(folder / "monalia.toml"), True)
        else:
            print(f"preparing the demo collection ({args.notices} notices) ...", file=sys.stderr)
            app = prepare(folder, args.notices)
        samples = alternate(
            {
                "scores alone": lambda: enrich(app, False),
                "scores + regions": lambda: enrich(app, True),
            },
            args.repeat,
            "s",
        )
        enrich(app, True)  # the last timed run may have been the one without regions
        value, truths, located, strays = corloc(app, folder)
        alone, both = samples["scores alone"], samples["scores + regions"]
        per_1000 = (both.median - alone.median) / args.notices * 1000
        for entry in samples.values():
            print(f"{entry.name}: {entry.spread()} for {args.notices} images")
        print(
            f"regions: {truths} detections of a drawn class, {located} located "
            f"(IoU >= 0.5), {strays} detections of a class not drawn"
        )
        line = verdict(
            "regions",
            [Criterion("CorLoc on the demo shapes", value, TARGET_CORLOC)],
            f"regions cost {per_1000:.1f} s per 1,000 images over scoring alone "
            f"({alone.median:.2f} s vs {both.median:.2f} s for {args.notices} images, CPU)",
        )
        print(line)


if __name__ == "__main__":
    main()
