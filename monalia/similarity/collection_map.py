"""A map of the collection: every record's image vector projected to two dimensions.

The projection is UMAP (umap-learn) with cosine distances, seeded so the same vectors give the
same map. It is computed once per vector set (the embedder's vectors of the records' images, in
order) and kept beside the vectors (`map-<digest>.npz`); a collection that gains images gets a
new map the next time one is asked for. Under 16 vectors UMAP has too few neighbours to work
with and the map is the first two principal components.

The workbench's Map page draws the points (`monalia serve`), coloured by class, finding or
source; `monalia map` computes the projection ahead of time.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_UMAP = 16
NEIGHBOURS = 15
SEED = 0
GRID = 65535  # coordinates are sent as whole numbers in [0, GRID]


@dataclass
class CollectionMap:
    """Each record (its first image with a vector) at a point of the unit square."""

    record_ids: np.ndarray  # catalog record ids
    image_ids: np.ndarray  # the image each point is
    xy: np.ndarray  # n x 2, in [0, 1]
    method: str  # "umap" or "pca"
    seconds: float  # what computing it took (0 when read from the cache)
    cached: bool


def _digest(keys: list[str]) -> str:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:20]


def project_2d(vectors: np.ndarray) -> tuple[np.ndarray, str]:
    """The vectors in two dimensions, scaled into the unit square."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2)), "none"
    if n < MIN_UMAP:
        centred = vectors - vectors.mean(axis=0)
        if n < 3:
            xy = np.zeros((n, 2))
            xy[:, 0] = np.arange(n)
        else:
            _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
            xy = centred @ vt[:2].T
        method = "pca"
    else:
        import warnings

        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # umap-learn warns that a seed runs single-threaded
            reducer = umap.UMAP(
                n_neighbors=min(NEIGHBOURS, n - 1),
                min_dist=0.1,
                metric="cosine",
                random_state=SEED,
                low_memory=True,
            )
            xy = reducer.fit_transform(vectors)
        method = "umap"
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    return (xy - low) / span, method


def is_cached(catalog, project) -> bool:
    """Whether some map was computed for the project's vectors (not necessarily the current
    one): the workbench then makes its page's data as it starts."""
    from monalia.similarity.near_duplicates import embedding

    return any(Path(embedding(catalog, project).store.folder).glob("map-*.npz"))


def collection_map(catalog, project, progress=None, say=None) -> CollectionMap:
    """The map of the catalog's records, computed when its vector set has none yet."""
    from monalia.similarity.near_duplicates import record_vectors

    found, chosen, vectors = record_vectors(catalog, project, progress, say)
    records = [image.record_id for image in chosen]
    image_ids = [image.image_id for image in chosen]
    chosen_keys = [image.sha256 for image in chosen]
    folder = Path(found.store.folder)
    cache = folder / f"map-{_digest(chosen_keys)}.npz"
    if cache.is_file():
        stored = np.load(cache)
        return CollectionMap(
            np.asarray(records),
            np.asarray(image_ids),
            stored["xy"],
            str(stored["method"]),
            0.0,
            True,
        )
    if say is not None and len(chosen) >= MIN_UMAP:
        say(f"projecting {len(chosen):,} image vectors to a map (UMAP; kept for the next time)")
    started = time.monotonic()
    xy, method = project_2d(np.asarray(vectors, dtype=np.float32))
    seconds = time.monotonic() - started
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("map-*.npz"):  # one map per vector store: the newest
        old.unlink(missing_ok=True)
    partial = cache.with_suffix(".part.npz")
    np.savez(partial, xy=xy, method=np.array(method))
    partial.replace(cache)
    return CollectionMap(np.asarray(records), np.asarray(image_ids), xy, method, seconds, False)
