#!/usr/bin/env python3
"""bench/similar.py: near-duplicate detection against imagededup, and the vector index at scale.

(1) Duplicate detection on a planted set: the ByzArt icons (real images; ../shared's 300, else
the tests' 100) and, for each, six copies: resized to two thirds, a 10 % crop, JPEG quality 30,
greyscale, rotated 3 degrees, an added border. The truth is every pair within one original's
group. Side by side on the same files:
  - monalia: the `[similarity]` embedder (ImageNet EfficientNet-Lite0, border trimmed and colour
    dropped), its index and `pairs_above` at the default threshold, plus identical files;
  - imagededup's CNN method at its default threshold (0.9). Its default network, MobileNetV3,
    downloads its weights, which this machine cannot: it runs with the same packaged
    EfficientNet-Lite0 weights through imagededup's CustomModel (its pooling, its threshold);
  - imagededup's PHash at its default (Hamming distance <= 10).
  Precision, recall and F1 of the pairs found. Target: monalia's F1 >= imagededup CNN's.
(2) The index at 100,000 and 1,000,000 vectors of the real dimension (1,280): random unit vectors
for build time, memory per vector and query latency (one query at a time, p50); recall@10
against exact search on vectors drawn around the real set's embeddings (each real vector with
noise, as collections hold many near neighbours), at 100,000. Targets: p50 <= 10 ms at 1M,
recall@10 >= 0.95.

Usage: .venv/bin/python bench/similar.py [--sizes 100000,1000000] [--queries 200] [--skip-quality]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from benchlib import Criterion, verdict  # noqa: E402

SHARED = REPO.parent / "shared" / "fixtures" / "images" / "byzart_icons"
TESTS = REPO / "tests" / "fixtures" / "images" / "byzart_icons"
RECALL_TARGET = 0.95
LATENCY_TARGET_MS = 10.0


def planted(folder: Path, icons: Path) -> tuple[list[Path], set[frozenset[str]]]:
    from PIL import Image
    from support.similarity_project import TRANSFORMS, transform

    files, truth = [], set()
    for number, source in enumerate(sorted(icons.glob("*.jpg"))):
        group = [f"o{number:04d}.jpg"]
        with Image.open(source) as image:
            image = image.convert("RGB")
            image.save(folder / group[0], quality=95)
            for how in TRANSFORMS:
                name = f"o{number:04d}-{how}.jpg"
                transform(image, how).save(folder / name, quality=90)
                group.append(name)
        files.extend(folder / name for name in group)
        truth.update(frozenset(pair) for pair in itertools.combinations(group, 2))
    return files, truth


def score(found: set[frozenset[str]], truth: set[frozenset[str]]) -> tuple[float, float, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def monalia_pairs(files: list[Path]) -> tuple[set[frozenset[str]], float, np.ndarray]:
    from monalia.project import SimilaritySection
    from monalia.similarity.embedder import BackboneEmbedder
    from monalia.similarity.vectors import VectorIndex, pairs_above

    section = SimilaritySection()
    embedder = BackboneEmbedder(section.backbone, section.weights, "cpu", 32)
    names = [f.name for f in files]
    started = time.perf_counter()
    chunk = next(embedder.score_chunks([(names, files, names)], embed=True))
    vectors = chunk.embeddings
    keys = [names[int(k)] for k in chunk.indices]
    index = VectorIndex.build(keys, vectors, section.exact_up_to)
    found = {frozenset((a, b)) for a, b, _ in pairs_above(index, keys, vectors, section.threshold)}
    seconds = time.perf_counter() - started
    return found, seconds, vectors


def imagededup_pairs(folder: Path, method: str) -> tuple[set[frozenset[str]], float]:
    started = time.perf_counter()
    if method == "phash":
        from imagededup.methods import PHash

        duplicates = PHash(verbose=False).find_duplicates(image_dir=str(folder))
    else:
        import torch
        from imagededup.methods import CNN
        from imagededup.utils import CustomModel
        from torchvision import transforms

        from monalia.learning.backbones import feature_extractor

        class Lite0(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net, _ = feature_extractor("efficientnet_lite0", "imagenet")

            def forward(self, x):
                return self.net(x)

        transform = transforms.Compose(
            [
                transforms.Resize((224, 224)),
                transforms.ToTensor(),
                transforms.Normalize([0.5] * 3, [0.5] * 3),
            ]
        )
        cnn = CNN(
            verbose=False,
            model_config=CustomModel(name="efficientnet_lite0", model=Lite0(), transform=transform),
        )
        duplicates = cnn.find_duplicates(image_dir=str(folder))  # its default threshold, 0.9
    found = {frozenset((a, b)) for a, others in duplicates.items() for b in others if a != b}
    return found, time.perf_counter() - started


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def index_at(size: int, dim: int, queries: int, rng) -> dict[str, float]:
    import faiss

    from monalia.similarity.vectors import VectorIndex

    data = rng.standard_normal((size, dim), dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    keys = [str(n) for n in range(size)]
    started = time.perf_counter()
    index = VectorIndex.build(keys, data, exact_up_to=50_000)
    build = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp))
        stored = (Path(tmp) / "index.faiss").stat().st_size
    faiss.omp_set_num_threads(1)  # one query at a time, as `monalia similar` asks
    latencies = []
    for n in rng.choice(size, queries, replace=False):
        began = time.perf_counter()
        index.search(data[n], 10)
        latencies.append((time.perf_counter() - began) * 1000)
    faiss.omp_set_num_threads(0)
    del data
    return {
        "build": build,
        "p50": float(np.median(latencies)),
        "p95": float(np.percentile(latencies, 95)),
        "bytes": stored / size,
        "kind": index.kind,
    }


def recall_at(size: int, real: np.ndarray, queries: int, rng) -> float:
    """recall@10 of the index against exact search, over vectors drawn around the real ones."""
    import faiss

    from monalia.similarity.vectors import VectorIndex, normalise

    seeds = normalise(real)
    picks = rng.integers(0, len(seeds), size)
    data = seeds[picks] + rng.standard_normal((size, seeds.shape[1]), dtype=np.float32) * 0.012
    data = normalise(data)
    keys = [str(n) for n in range(size)]
    approximate = VectorIndex.build(keys, data, exact_up_to=50_000)
    exact = faiss.IndexFlatIP(data.shape[1])
    exact.add(data)
    asked = data[rng.choice(size, queries, replace=False)]
    _, truth = exact.search(asked, 10)
    found = approximate.search(asked, 10)
    return float(
        np.mean(
            [
                len({int(h.key) for h in hits} & set(row.tolist())) / 10
                for hits, row in zip(found, truth, strict=True)
            ]
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    icons = SHARED if SHARED.is_dir() else TESTS
    criteria, figures = [], []
    rng = np.random.default_rng(0)
    real = None
    with tempfile.TemporaryDirectory(prefix="bench-similar-") as tmp:
        folder = Path(tmp)
        files, truth = planted(folder, icons)
        print(
            f"planted: {len(files)} images ({len(files) // 7} originals x 7), {len(truth)} true pairs"
        )
        found, seconds, real = monalia_pairs(files)
        results = {"monalia": (score(found, truth), seconds, len(found))}
        if not args.skip_quality:
            for method in ("cnn", "phash"):
                pairs, took = imagededup_pairs(folder, method)
                results[f"imagededup {method}"] = (score(pairs, truth), took, len(pairs))
    for name, ((precision, recall, f1), took, count) in results.items():
        print(
            f"{name}: precision {precision:.3f}, recall {recall:.3f}, F1 {f1:.3f}, {count} pairs, {took:.1f} s"
        )
    if "imagededup cnn" in results:
        ours, theirs = results["monalia"][0][2], results["imagededup cnn"][0][2]
        criteria.append(
            Criterion(
                "F1, monalia / imagededup CNN", ours / theirs if theirs else float("inf"), 1.0
            )
        )
        figures.append(
            f"F1 monalia {ours:.3f} vs imagededup CNN {theirs:.3f}, PHash {results['imagededup phash'][0][2]:.3f}"
        )
    dim = real.shape[1]
    for size in (int(s) for s in args.sizes.split(",")):
        measured = index_at(size, dim, args.queries, rng)
        print(
            f"{size:,} vectors ({measured['kind']}): build {measured['build']:.1f} s, "
            f"{measured['bytes']:.0f} bytes per vector, query p50 {measured['p50']:.2f} ms, "
            f"p95 {measured['p95']:.2f} ms"
        )
        figures.append(
            f"{size:,}: p50 {measured['p50']:.2f} ms, build {measured['build']:.0f} s, "
            f"{measured['bytes']:.0f} B/vector"
        )
        if size == max(int(s) for s in args.sizes.split(",")):
            criteria.append(
                Criterion(f"query p50 at {size:,}", measured["p50"], LATENCY_TARGET_MS, True, "ms")
            )
    recall_size = min(int(s) for s in args.sizes.split(","))
    recall = recall_at(recall_size, real, args.queries, rng)
    print(
        f"recall@10 against exact search at {recall_size:,} (around the real vectors): {recall:.3f}"
    )
    criteria.append(Criterion(f"recall@10 at {recall_size:,}", recall, RECALL_TARGET))
    figures.append(f"recall@10 {recall:.3f}")
    print(verdict("similar", criteria, "; ".join(figures)))


if __name__ == "__main__":
    main()
