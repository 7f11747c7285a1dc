"""Image embeddings on disk and the vector index over them (FAISS).

Vectors are L2-normalised, stored as float16 in append-only parts under one folder per embedder
(`<data>/similarity/<embedder>/`), keyed by the image's content hash: outside the catalog's row
tables, written a chunk at a time (a part is complete or absent, so a killed run loses at most
its last chunk and a re-run adds only what is missing: one vector per image).

The index is exact (inner product over every vector) up to `EXACT_UP_TO` vectors and an
inverted file past it (FAISS IVF with float16 codes, `nprobe` lists searched), trained once on
the vectors there are and then added to as images come; it is saved beside the vectors and
rebuilt when the parts hold vectors it does not. Indexes built per shard with the same trained
quantizer merge (`VectorIndex.merge`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXACT_UP_TO = 50_000  # past this many vectors, an IVF index (see bench/similar.py)
NPROBE = 24
PART_PREFIX = "part-"


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class VectorStore:
    """The embeddings of one embedder: parts of (keys, float16 vectors) in a folder."""

    def __init__(self, folder: Path, embedder: str | None = None, dim: int | None = None):
        self.folder = Path(folder)
        self.embedder = embedder
        self.dim = dim
        self._keys: set[str] | None = None
        self._part_of: dict[str, Path] = {}  # key -> the part holding its vector

    def _meta(self) -> dict:
        path = self.folder / "meta.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob(f"{PART_PREFIX}*.npz"))

    def keys(self) -> set[str]:
        """The content hashes that have a vector."""
        if self._keys is None:
            self._part_of = {}
            for part in self.parts():
                with np.load(part, allow_pickle=False) as data:
                    for key in data["keys"]:
                        self._part_of.setdefault(str(key), part)
            self._keys = set(self._part_of)
        return self._keys

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> int:
        """Store the vectors of keys not stored yet (normalised, float16); how many were new."""
        known = self.keys()
        fresh = [k for k, key in enumerate(keys) if key and key not in known]
        if not fresh:
            return 0
        vectors = normalise(np.asarray(vectors)[fresh]).astype(np.float16)
        chosen = np.array([keys[k] for k in fresh])
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self._meta()
        if not meta:
            meta = {"embedder": self.embedder, "dim": int(vectors.shape[1])}
            (self.folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        elif meta["dim"] != vectors.shape[1]:
            raise ValueError(
                f"vectors of {vectors.shape[1]} dimensions in a store of {meta['dim']}"
            )
        number = len(self.parts())
        target = self.folder / f"{PART_PREFIX}{number:06d}.npz"
        while target.exists():
            number += 1
            target = self.folder / f"{PART_PREFIX}{number:06d}.npz"
        partial = target.with_suffix(".partial.npz")
        np.savez(partial, keys=chosen, vectors=vectors)
        os.replace(partial, target)  # a part is whole or absent
        for key in chosen:
            known.add(str(key))
            self._part_of[str(key)] = target
        return len(fresh)

    def load(self) -> tuple[list[str], np.ndarray]:
        """Every key and its vector (float16), one per key, in the order they were stored."""
        keys: list[str] = []
        blocks = []
        seen: set[str] = set()
        for part in self.parts():
            with np.load(part, allow_pickle=False) as data:
                part_keys = [str(key) for key in data["keys"]]
                keep = [k for k, key in enumerate(part_keys) if key not in seen]
                seen.update(part_keys)
                keys.extend(part_keys[k] for k in keep)
                blocks.append(data["vectors"][keep])
        if not blocks:
            return [], np.zeros((0, self._meta().get("dim", 0)), np.float16)
        return keys, np.concatenate(blocks)

    def vector(self, key: str) -> np.ndarray | None:
        """One key's vector, read from the one part that holds it."""
        if key not in self.keys():
            return None
        with np.load(self._part_of[key], allow_pickle=False) as data:
            hits = np.flatnonzero(data["keys"] == key)
            return data["vectors"][hits[0]].astype(np.float32)


@dataclass
class Hit:
    key: str
    similarity: float


class VectorIndex:
    """Nearest vectors by cosine similarity: exact, or FAISS IVF past `EXACT_UP_TO`."""

    def __init__(self, index, keys: list[str], kind: str):
        self.index = index
        self.keys = keys
        self.kind = kind

    @classmethod
    def build(cls, keys: list[str], vectors: np.ndarray, exact_up_to: int = EXACT_UP_TO):
        import faiss

        data = np.ascontiguousarray(normalise(vectors))
        dim = data.shape[1]
        if len(keys) <= exact_up_to or len(keys) < 39:  # too few to train lists on
            index = faiss.IndexFlatIP(dim)
            kind = "exact"
        else:
            # about 4 sqrt(n) lists, each trained on 50 vectors: k-means stays minutes at 1M
            lists = max(1, int(min(4 * np.sqrt(len(keys)), len(keys) // 39)))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
            sample = data
            if len(data) > 50 * lists:
                rng = np.random.default_rng(0)
                sample = data[rng.choice(len(data), 50 * lists, replace=False)]
            index.train(sample)
            index.nprobe = NPROBE
            kind = "ivf"
        index.add(data)
        return cls(index, list(keys), kind)

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors (an IVF index keeps its trained lists)."""
        self.index.add(np.ascontiguousarray(normalise(vectors)))
        self.keys.extend(keys)

    def merge(self, other: VectorIndex) -> None:
        """Take in another index's vectors (built per shard; IVF: the same trained lists)."""
        if self.kind == "ivf":
            self.index.merge_from(other.index, len(self.keys))
        else:
            self.index.add(other.index.reconstruct_n(0, other.index.ntotal))
        self.keys.extend(other.keys)

    def search(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        if not self.keys:
            return [[] for _ in range(len(vectors))]
        scores, rows = self.index.search(
            np.ascontiguousarray(normalise(np.atleast_2d(vectors))), min(k, len(self.keys))
        )
        return [
            [Hit(self.keys[int(r)], float(s)) for s, r in zip(row_s, row_r, strict=True) if r >= 0]
            for row_s, row_r in zip(scores, rows, strict=True)
        ]

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / "index.faiss.partial"
        faiss.write_index(self.index, str(partial))
        os.replace(partial, folder / "index.faiss")
        keys = folder / "index-keys.json.partial"
        keys.write_text(json.dumps({"kind": self.kind, "keys": self.keys}), encoding="utf-8")
        os.replace(keys, folder / "index-keys.json")

    @classmethod
    def load(cls, folder: Path) -> VectorIndex | None:
        import faiss

        path, keys = folder / "index.faiss", folder / "index-keys.json"
        if not (path.is_file() and keys.is_file()):
            return None
        meta = json.loads(keys.read_text(encoding="utf-8"))
        index = faiss.read_index(str(path))
        if meta["kind"] == "ivf":
            index.nprobe = NPROBE
        return cls(index, meta["keys"], meta["kind"])


def open_index(store: VectorStore, exact_up_to: int = EXACT_UP_TO) -> VectorIndex:
    """The store's index, saved beside it: loaded, extended with the vectors added since, or
    built (again, when it is exact and has grown past `exact_up_to`)."""
    index = VectorIndex.load(store.folder)
    stored = store.keys()
    if index is not None:
        indexed = set(index.keys)
        if indexed <= stored and not (index.kind == "exact" and len(stored) > exact_up_to):
            missing = stored - indexed
            if not missing:
                return index
            keys, vectors = store.load()
            rows = [k for k, key in enumerate(keys) if key in missing]
            index.add([keys[k] for k in rows], vectors[rows])
            index.save(store.folder)
            return index
    keys, vectors = store.load()
    index = VectorIndex.build(keys, vectors, exact_up_to)
    if keys:
        index.save(store.folder)
    return index


def pairs_above(
    index: VectorIndex, keys: list[str], vectors: np.ndarray, threshold: float, k: int = 20
) -> Iterable[tuple[str, str, float]]:
    """(key, other key, similarity) for every pair at or above `threshold`, each pair once."""
    for start in range(0, len(keys), 1024):
        block = vectors[start : start + 1024]
        for key, hits in zip(keys[start : start + 1024], index.search(block, k), strict=True):
            for hit in hits:
                if hit.key != key and hit.similarity >= threshold and key < hit.key:
                    yield key, hit.key, hit.similarity
