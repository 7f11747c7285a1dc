#!/usr/bin/env python3
"""bench/enrich.py: `monalia enrich` over 10,000 and 50,000 images against a bare forward pass.

monalia: the enrich stage's own path on a fresh SQLite catalog of N records with one JPEG each
(about 260 px, the size the image stage keeps): decode, resize and crop in the loader, score
with EfficientNet-Lite0 (3 classes), write every prediction to the catalog a chunk at a time,
then publish the model's graph to a Turtle file. Each size runs in a process of its own, timed
from its start to its exit (as a user waits for `monalia enrich`), which reads its own peak
resident memory (VmHWM) when it is done.
Reference: the same network's forward pass over the same batches already decoded, resized and
normalised into one tensor on the device (the first 2,000 images), in a process of its own:
scoring with nothing to load and nothing to write.
The reference and each size run --repeat times (default 3), interleaved; medians are compared.
Targets: monalia >= 0.85x the bare forward's images/s at every size; peak memory at the largest
size within 10% of the peak at the smallest. The last line's ratio is the worst criterion's.

With --ray N (default 1,000; 0 to skip): the same N images scored by the local executor and
by the ray executor on a local Ray cluster of 1 and of 2 CPUs (scores written to the catalog
and published, as above; timed once the cluster is up), interleaved --repeat times; no target,
the figures join the last line; then on a cluster started as an operator starts one (`ray start`:
a head with no CPUs and two worker nodes of 1 CPU each), as images/s per worker node.
--ray-only skips the sizes above.

Usage: .venv/bin/python bench/enrich.py [--sizes 10000,50000] [--device cpu|cuda] [--batch-size B]
       [--workers W] [--size S] [--repeat R] [--ray N] [--ray-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from benchlib import Criterion, Samples, alternate, peak_mb, verdict  # noqa: E402

TARGET = 0.85
MEMORY_TARGET = 1.10
REFERENCE_IMAGES = 2000
CLASSES = [
    {"uri": "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-2037", "label": "cheval"},
    {"uri": "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-1220", "label": "arbre"},
    {"uri": "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-1950", "label": "chien"},
]


def draw_one(job: tuple[Path, int]) -> str:
    from support.drawn_images import SHAPES, draw

    folder, number = job
    rng = random.Random(number)
    shapes = {shape for shape in SHAPES if rng.random() < 0.4}
    width, height = rng.choice([(260, 200), (200, 260), (260, 260)])
    picture = draw(shapes, rng, size=max(width, height)).resize((width, height))
    path = folder / f"{number:06d}.jpg"
    picture.save(path, quality=88)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    final = folder / f"{digest}.jpg"
    path.replace(final)
    return final.name


def make_images(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor() as pool:
        return list(pool.map(draw_one, [(folder, n) for n in range(count)], chunksize=256))


def make_model(folder: Path, size: int) -> dict:
    """An EfficientNet-Lite0 with a 3-class head, saved with its card as `monalia train` does."""
    import torch

    from monalia.hashing import file_sha256
    from monalia.learning.backbones import build_model

    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", len(CLASSES))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    card = {
        "name": "bench-efficientnet_lite0",
        "backbone": "efficientnet_lite0",
        "classes": [{**entry, "threshold": 0.5} for entry in CLASSES],
        "thresholds": {entry["uri"]: 0.5 for entry in CLASSES},
        "metrics": {},
        "settings": {"dropout": 0.5, "channels_last": True},
        "input": {"size": size, "mean": [0.5] * 3, "std": [0.5] * 3},
        "weights": "model.pt",
        "weights_sha256": file_sha256(folder / "model.pt"),
    }
    (folder / "model_card.json").write_text(json.dumps(card))
    return card


def build_project(root: Path, count: int, images: list[str], card: dict, options) -> Path:
    """A project whose catalog holds `count` records with a fetched image each, and the model."""
    from sqlalchemy import insert

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import ImageRow, ModelRow, RecordRow, utcnow

    project = root / f"project-{count}"
    (project / ".monalia").mkdir(parents=True)
    (project / ".monalia" / "images").symlink_to(root / "images")
    (project / ".monalia" / "models").mkdir()
    (project / ".monalia" / "models" / "bench").symlink_to(root / "model")
    catalog_url = f"sqlite:///{project / 'catalog.sqlite'}"
    (project / "monalia.toml").write_text(
        f'[project]\ncatalog = "{catalog_url}"\n\n'
        '[sinks.file]\nplugin = "turtle"\npath = "out/{graph}.ttl"\n\n'
        f'[enrich]\ndevice = "{options.device}"\nbatch_size = {options.batch_size}\n'
        + (f"workers = {options.workers}\n" if options.workers is not None else ""),
        encoding="utf-8",
    )
    catalog = Catalog.open(catalog_url)  # a new catalog gets the schema
    now = utcnow()
    with catalog.session() as session:
        for start in range(0, count, 5000):
            numbers = range(start, min(count, start + 5000))
            session.execute(
                insert(RecordRow),
                [
                    {
                        "id": n + 1,
                        "source": "bench",
                        "source_id": f"r{n}",
                        "iri": f"urn:monalia:record/bench/r{n}",
                        "title": f"Œuvre {n}",
                        "creators": [],
                        "content_hash": "0" * 64,
                        "first_seen": now,
                        "last_seen": now,
                    }
                    for n in numbers
                ],
            )
            session.execute(
                insert(ImageRow),
                [
                    {
                        "record_id": n + 1,
                        "position": 0,
                        "url": f"https://img.example.org/{n}.jpg",
                        "is_main": True,
                        "status": "fetched",
                        "sha256": images[n % len(images)][:64],
                        "path": f"images/{images[n % len(images)]}",
                    }
                    for n in numbers
                ],
            )
        session.add(
            ModelRow(
                name=card["name"],
                trainer="cnn",
                backbone=card["backbone"],
                classes=card["classes"],
                thresholds=card["thresholds"],
                metrics={},
                card=card,
                path="models/bench",
                created_at=now,
            )
        )
    return project


def run_enrich(project: Path, executor: str = "local", cpus: int = 0, address=None) -> dict:
    """In this process: `monalia enrich` through its own code; time and peak memory. With the
    ray executor, a local Ray of `cpus` CPUs is started first, or the cluster at `address`
    joined (not timed)."""
    from monalia.catalog.database import Catalog
    from monalia.project import load_project
    from monalia.stages.enrich import EnrichOptions, enrich

    project_file = load_project(project / "monalia.toml")
    catalog = Catalog.open(project_file.catalog_url)
    if executor == "ray":
        from monalia.executors import ray_executor as cluster

        project_file.file.executor.cpus = cpus
        project_file.file.executor.address = address
        cluster.connect(project_file.file.executor)
    started = time.perf_counter()
    outcome = enrich(catalog, project_file, EnrichOptions(executor=executor, rescore=True))
    seconds = time.perf_counter() - started
    run = outcome.run
    return {
        "images": run.counts["new"],
        "seconds": seconds,
        "peak_mb": peak_mb(),  # this process's own peak, not one inherited from its parent
        "published": outcome.publish_runs[0].message,
    }


def bare_forward(root: Path, images: list[str], options) -> float:
    import torch

    from monalia.learning.backbones import build_model
    from monalia.plugins.trainers.cnn import data
    from monalia.plugins.trainers.cnn.fit import resolve_device

    device = resolve_device(options.device)
    count = min(REFERENCE_IMAGES, len(images))
    transform = data.eval_transform(options.size)
    batch = torch.stack(
        [
            transform(
                data.load_resized(root / "images" / name, None, data.cache_side(options.size), None)
            )
            for name in images[:count]
        ]
    )
    pixels = (
        ((batch.float() / 255 - 0.5) / 0.5).to(device).contiguous(memory_format=torch.channels_last)
    )
    model = build_model("efficientnet_lite0", len(CLASSES)).to(device).eval()
    model.to(memory_format=torch.channels_last)
    from monalia.plugins.trainers.cnn.engine import choose_precision

    precision = choose_precision(device, "auto")
    with torch.inference_mode():
        for start in range(0, min(count, options.batch_size * 2), options.batch_size):
            with precision.autocast(device):
                model(pixels[start : start + options.batch_size])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        outputs = []
        for start in range(0, count, options.batch_size):
            with precision.autocast(device):
                outputs.append(
                    torch.sigmoid(model(pixels[start : start + options.batch_size]).float())
                )
        torch.cat(outputs).cpu()
    return count / (time.perf_counter() - started)


def child(args: list[str]) -> dict:
    """One measurement in a fresh process: what it prints last, as JSON."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ray", type=int, default=1000)
    parser.add_argument("--ray-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--executor", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(
            json.dumps(
                run_enrich(Path(options.child), options.executor, options.cpus, options.address)
            )
        )
        return 0
    if options.bare:
        root = Path(options.bare)
        images = sorted(path.name for path in (root / "images").iterdir())
        print(json.dumps({"rate": bare_forward(root, images, options), "peak_mb": peak_mb()}))
        return 0
    if options.ray_only:
        print(f"bench enrich executors: {bench_ray(options)} (no target)")
        return 0
    sizes = [int(value) for value in options.sizes.split(",")]
    common = ["--device", options.device, "--batch-size", str(options.batch_size)]
    common += ["--size", str(options.size)]
    if options.workers is not None:
        common += ["--workers", str(options.workers)]
    peaks: dict[int, Samples] = {}
    published = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        distinct = min(max(sizes), 10_000)  # files are reused beyond this: decoding is the same
        print(f"drawing {distinct} images ...", file=sys.stderr)
        images = make_images(root / "images", distinct)
        card = make_model(root / "model", options.size)
        projects = {count: build_project(root, count, images, card, options) for count in sizes}
        for count in sizes:
            peaks[count] = Samples(f"peak memory, {count:,} images", "MB")

        def bare() -> float:
            return child(["--bare", str(root), *common])["rate"]

        def enrich_at(count: int):
            def run() -> float:
                result = child(["--child", str(projects[count]), *common])
                peaks[count].values.append(result["peak_mb"])
                published[count] = result["published"]
                # the whole process, as a user waits for `monalia enrich`: interpreter, imports,
                # catalog and model opened, every image scored and written, the graph published
                return result["images"] / result["wall"]

            return run

        rates = alternate(
            {"bare forward": bare, **{count: enrich_at(count) for count in sizes}},
            options.repeat,
            "images/s",
        )
    from monalia.plugins.trainers.cnn.fit import resolve_device

    device = resolve_device(options.device)
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}, {torch.get_num_threads()} torch threads, input {options.size} px, "
        f"batch {options.batch_size}"
    )
    bare = rates["bare forward"].median
    print(f"bare forward over decoded tensors: {rates['bare forward'].spread(1)}")
    criteria = []
    for count in sizes:
        rate = rates[count].median
        print(
            f"monalia enrich {count:>7,} images: {rates[count].spread(1)} ({rate / bare:.2f}x), "
            f"peak {peaks[count].spread(0)} (VmHWM of its process); {published[count]}"
        )
        criteria.append(Criterion(f"enrich {count:,} images / bare forward", rate / bare, TARGET))
    small, large = min(sizes), max(sizes)
    growth = peaks[large].median / peaks[small].median
    if large != small:
        criteria.append(
            Criterion(
                f"peak memory {large:,} / {small:,} images", growth, MEMORY_TARGET, at_most=True
            )
        )
    executors = f"; {bench_ray(options)}" if options.ray else ""
    print(
        verdict(
            "enrich",
            criteria,
            f"monalia {rates[large].median:.1f} images/s at {large:,} vs bare forward "
            f"{bare:.1f} images/s on {name}; peak {peaks[small].median:.0f} MB at {small:,}, "
            f"{peaks[large].median:.0f} MB at {large:,}; medians of {options.repeat}" + executors,
        )
    )
    return 0


def bench_ray(options) -> str:
    """The local executor against the ray executor with 1 and 2 CPUs, on the same images,
    interleaved --repeat times: the figures, for the last line (no target of its own)."""
    count = options.ray
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print(f"drawing {count} images for the executors ...", file=sys.stderr)
        images = make_images(root / "images", count)
        card = make_model(root / "model", options.size)
        project = build_project(root, count, images, card, options)

        def executor(name: str, cpus: int, address: str | None = None):
            def run() -> float:
                arguments = ["--child", str(project), "--device", options.device]
                arguments += ["--executor", name, "--cpus", str(cpus)]
                result = child([*arguments, *(["--address", address] if address else [])])
                # timed in the child once its Ray is up: starting a cluster is not scoring
                return result["images"] / result["seconds"]

            return run

        # a cluster as an operator starts one: a head that schedules nothing and two worker
        # nodes of one CPU each (`ray start`), the same data folder and catalog
        from support.ray_cluster import RayCluster

        nodes = RayCluster(root / "ray")
        os.environ.update(nodes.driver_env())  # the children join with the cluster's token
        try:
            nodes.start("head", cpus=0, head=True)
            nodes.start("worker-1", cpus=1)
            nodes.start("worker-2", cpus=1)
            rates = alternate(
                {
                    "local": executor("local", 0),
                    "ray, 1 CPU": executor("ray", 1),
                    "ray, 2 CPUs": executor("ray", 2),
                    "ray, 2 nodes": executor("ray", 2, nodes.address),
                },
                options.repeat,
                "images/s",
            )
        finally:
            nodes.stop()
    for label, samples in rates.items():
        print(f"executor {label:>12}: {samples.spread(1)}")
    local, one, two, cluster = (
        rates[k].median for k in ("local", "ray, 1 CPU", "ray, 2 CPUs", "ray, 2 nodes")
    )
    return (
        f"executors on {count:,} images: ray 1 CPU {one:.1f} images/s ({one / local:.2f}x "
        f"local), ray 2 CPUs {two:.1f} ({two / local:.2f}x local), local {local:.1f}; "
        f"ray on 2 worker nodes of 1 CPU (`ray start`) {cluster:.1f} images/s, "
        f"{cluster / 2:.1f} per worker node"
    )


if __name__ == "__main__":
    sys.exit(main())
