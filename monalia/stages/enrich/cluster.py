"""Scoring on a Ray cluster: the pending images in id ranges, scored by model actors, written
by the driver a chunk at a time, exactly as a local run writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from monalia.api.trainer import ChunkScores, LoadOptions
from monalia.catalog.database import Catalog
from monalia.catalog.lookups import model_folder
from monalia.catalog.models import ImageRow, ModelRow
from monalia.catalog.queries import scorable, unscored
from monalia.catalog.run_tracking import RunTracker
from monalia.project import Project
from monalia.similarity.near_duplicates import keep_chunk_vectors
from monalia.stages.enrich.options import EnrichOptions
from monalia.stages.enrich.scoring import (
    PendingImage,
    load_predictor,
    similarity_vectors,
    write_predictions,
)


def _pending_id_range(
    catalog: Catalog, model_id: int, rescore: bool, limit: int | None
) -> tuple[int, int] | None:
    """The ids of the first and last image this run scores (the limit-th pending one)."""
    query = select(ImageRow.id).where(scorable())
    if not rescore:
        query = query.where(unscored(model_id))
    with catalog.session() as session:
        first = session.scalar(query.order_by(ImageRow.id).limit(1))
        if first is None:
            return None
        if limit is None:
            last = session.scalar(query.order_by(ImageRow.id.desc()).limit(1))
        else:
            last = session.scalar(query.order_by(ImageRow.id).offset(limit - 1).limit(1))
            if last is None:
                last = session.scalar(query.order_by(ImageRow.id.desc()).limit(1))
    return first, last


def score_on_cluster(
    catalog: Catalog,
    project: Project,
    model: ModelRow,
    options: EnrichOptions,
    tracker: RunTracker,
    pending: int,
) -> int:
    """Score on Ray (see `monalia.executors.ray_executor`); write the scores here a chunk at a time."""
    import numpy as np

    from monalia.executors import ray_executor as cluster

    settings = project.file.enrich
    section = project.file.executor
    ray = cluster.connect(section)
    cpus, gpus = cluster.cluster_resources(ray)
    actors = section.actors or (gpus if gpus else max(1, cpus))
    batch_size = options.batch_size or settings.batch_size
    # loaded here too: the input size decides how the workers decode, and a model that cannot
    # load should fail before the cluster starts on it
    input_size = load_predictor(project, model, LoadOptions("cpu", 1, 0)).input_size
    vectors = similarity_vectors(catalog, project, model, None, tracker, options.say)
    embed = embedding_settings(project, model, vectors)
    job = cluster.ScoringJob(
        catalog_url=catalog.url,
        model_id=model.id,
        trainer=model.trainer,
        model_folder=str(model_folder(project, model)),
        data_dir=str(project.data_dir),
        rescore=options.rescore,
        batch_size=batch_size,
        device="cuda" if gpus else "cpu",
        **embed,
    )
    tracker.info.settings.update(cluster={"cpus": cpus, "gpus": gpus, "actors": actors})
    options.say(
        f"scoring {pending:,} images with {model.name} on Ray: {cpus} CPUs, {gpus} GPUs, "
        f"{actors} model actor(s)"
    )
    id_range = _pending_id_range(catalog, model.id, options.rescore, options.limit)
    if id_range is None:
        return 0
    scored = 0
    buffered: list[dict[str, np.ndarray]] = []

    def write(batches: list[dict[str, np.ndarray]]) -> int:
        chunk = chunk_of_batches(batches, tracker)
        written = write_predictions(catalog, model, chunk, tracker)
        if vectors is not None and chunk.embeddings is not None and chunk.embeddings.shape[1]:
            keep_chunk_vectors(vectors, chunk)
        return written

    with options.progress(f"enrich {model.name} (ray)", pending, "images") as progress:
        size = 0
        for batch in cluster.score_on_ray(ray, job, input_size, id_range, actors, gpus):
            buffered.append(batch)
            size += len(batch["image_id"])
            progress.advance(len(batch["image_id"]))
            if size >= settings.chunk_size:
                scored += write(buffered)
                buffered, size = [], 0
        if buffered:
            scored += write(buffered)
    return scored


def embedding_settings(project: Project, model: ModelRow, vectors) -> dict[str, str]:
    """What the workers need to keep image vectors in the same pass (nothing when none are
    kept): the scoring model's own, or the ImageNet backbone's of ``[similarity]``."""
    if vectors is None:
        return {}
    similarity = project.file.similarity
    weights = similarity.weights
    if weights != "imagenet":
        weights = str(project.context("similarity").path(weights))
    return {
        "embed": "scoring" if vectors.name == model.name else "imagenet",
        "embed_backbone": similarity.backbone,
        "embed_weights": weights,
    }


def chunk_of_batches(batches: list[dict[str, Any]], tracker: RunTracker) -> ChunkScores:
    """The workers' batches as one chunk of scores, as a local run makes it; an image whose file
    is missing is a failed item here, one that could not be decoded is an unreadable one."""
    import numpy as np

    columns = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    items, rows, unreadable = [], [], []
    for k in range(len(columns["image_id"])):
        error = str(columns["error"][k])
        if error.startswith("image file is missing"):
            tracker.add(seen=1)
            tracker.fail_item(str(columns["url"][k]), error)
            continue
        if error:
            unreadable.append(len(items))
        else:
            rows.append((len(items), k))
        items.append(
            PendingImage(
                int(columns["image_id"][k]),
                int(columns["record_id"][k]),
                Path(str(columns["path"][k])),
                str(columns["sha256"][k]) or None,
                str(columns["url"][k]),
            )
        )
    return ChunkScores(
        items,
        np.array([columns["scores"][k] for _, k in rows], dtype=np.float32).reshape(len(rows), -1),
        np.array([index for index, _ in rows], dtype=int),
        unreadable,
        np.array([columns["embedding"][k] for _, k in rows], dtype=np.float32)
        if "embedding" in columns and rows
        else None,
    )
