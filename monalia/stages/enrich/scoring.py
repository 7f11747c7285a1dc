"""Scoring a chunk of images at a time on this machine, each chunk's predictions written in one
transaction with the run's counts: a killed run loses at most the chunk in hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from monalia.api.trainer import LoadOptions, Predictor
from monalia.catalog.database import Catalog
from monalia.catalog.lookups import model_folder
from monalia.catalog.models import (
    ImageRow,
    ModelRow,
    utcnow,
)
from monalia.catalog.queries import image_file, scorable, unscored
from monalia.catalog.run_tracking import (
    DONE,
    RunInfo,
    RunTracker,
)
from monalia.errors import MonaliaError
from monalia.project import Project
from monalia.rdf.scores import ModelClass, ModelInfo
from monalia.similarity.near_duplicates import embed_files, keep_chunk_vectors
from monalia.stages.enrich.options import EnrichOptions


@dataclass(frozen=True)
class PendingImage:
    image_id: int
    record_id: int
    path: Path
    sha256: str | None
    url: str


def model_info(row: ModelRow) -> ModelInfo:
    metrics = row.metrics or {}
    per_class = metrics.get("per_class") or {}
    thresholds = row.thresholds or {}
    evaluated = metrics.get("evaluated_on")
    return ModelInfo(
        name=row.name,
        classes=tuple(
            ModelClass(
                entry["uri"],
                entry.get("label") or entry["uri"],
                thresholds.get(entry["uri"]),
                (per_class.get(entry["uri"]) or {}).get("ap"),
            )
            for entry in row.classes
        ),
        backbone=row.backbone,
        trainer=row.trainer,
        dataset_hash=(row.card or {}).get("dataset_hash"),
        created_at=row.created_at,
        test_map=(metrics.get(evaluated) or {}).get("map") if evaluated else None,
        vocab_id=model_vocab_id(row.card),
    )


def model_vocab_id(card: dict | None) -> str:
    """The field a model's task predicts, as its card keeps it (REPR before cards kept it)."""
    from monalia.rdf.scores import VOCAB_ID

    return ((card or {}).get("task") or {}).get("vocab_id") or VOCAB_ID


def count_images(catalog: Catalog, model_id: int, rescore: bool) -> tuple[int, int]:
    """(images to score now, images already scored and unchanged)."""
    with catalog.session() as session:
        total = session.scalar(select(func.count()).select_from(ImageRow).where(scorable()))
        if rescore:
            return total or 0, 0
        pending = session.scalar(
            select(func.count()).select_from(ImageRow).where(scorable(), unscored(model_id))
        )
    return pending or 0, (total or 0) - (pending or 0)


def pending_chunks(
    catalog: Catalog,
    model_id: int,
    data_dir: Path,
    chunk_size: int,
    rescore: bool,
    limit: int | None,
    tracker: RunTracker,
) -> Iterator[tuple[list[PendingImage], list[Path], list[str | None]]]:
    """Chunks of images to score, read by id so that memory stays flat however large."""
    after, left = 0, limit if limit is not None else float("inf")
    while left > 0:
        query = select(
            ImageRow.id, ImageRow.record_id, ImageRow.path, ImageRow.sha256, ImageRow.url
        ).where(scorable(), ImageRow.id > after)
        if not rescore:
            query = query.where(unscored(model_id))
        size = int(min(chunk_size, left))
        with catalog.session() as session:
            rows = session.execute(query.order_by(ImageRow.id).limit(size)).all()
        if not rows:
            return
        after = rows[-1].id
        items = []
        for row in rows:
            path = image_file(data_dir, row.path)
            if path is None or not path.is_file():
                tracker.add(seen=1)
                tracker.fail_item(row.url, f"image file is missing: {path}")
                continue
            items.append(PendingImage(row.id, row.record_id, path, row.sha256, row.url))
        left -= len(rows)
        if items:
            yield items, [item.path for item in items], [item.sha256 for item in items]


def write_predictions(
    catalog: Catalog,
    model: ModelRow,
    chunk,
    tracker: RunTracker,
) -> int:
    """Replace the chunk's predictions for this model, with the run's counts, in one commit."""
    from monalia.catalog.bulk import prepare_model, write_scores

    for index in chunk.unreadable:
        item = chunk.items[index]
        tracker.fail_item(item.url, f"{item.path}: the image could not be decoded")
    scored = [chunk.items[int(index)] for index in chunk.indices]
    table = "predictions"
    if scored:
        table = prepare_model(catalog.engine, model.id, [c["uri"] for c in model.classes])
    with catalog.session() as session:
        write_scores(
            session,
            table,
            model.id,
            [item.image_id for item in scored],
            [item.record_id for item in scored],
            [item.sha256 for item in scored],
            chunk.scores,  # row k: the image at chunk.indices[k]
            tracker.id,
            utcnow(),
        )
        tracker.add(seen=len(chunk.items), new=len(scored))
        tracker.flush(session)
    return len(scored)


def load_predictor(project: Project, model: ModelRow, options: LoadOptions) -> Predictor:
    """The model, loaded by the trainer plugin that made it."""
    from monalia.catalog.reader import is_score_set

    if is_score_set(model.card):
        raise MonaliaError(
            f"{model.name} is a set of out-of-sample scores made by `monalia train --folds`, "
            f"not a model that can score: name the model itself ({model.card.get('model')})"
        )
    trainer = project.trainer_plugin(model.trainer)
    return trainer.scorer(model_folder(project, model), options)


def score_locally(
    catalog: Catalog,
    project: Project,
    model: ModelRow,
    options: EnrichOptions,
    tracker: RunTracker,
    counts: tuple[int, int],
    loading: LoadOptions,
    regions=None,
) -> RunInfo:
    """Score the pending images on this machine, a chunk at a time; `counts` is (pending,
    unchanged). With `regions` (a `RegionPass`), each chunk's detections get their regions
    in the same pass."""
    pending, unchanged = counts
    settings = project.file.enrich
    predictor = load_predictor(project, model, loading)
    if regions is not None:
        regions.use(predictor)
    options.say(
        f"scoring {pending:,} images with {model.name} on {loading.device}"
        + (f" ({unchanged:,} already scored and unchanged)" if unchanged else "")
    )
    chunks = pending_chunks(
        catalog,
        model.id,
        project.data_dir,
        settings.chunk_size,
        options.rescore,
        options.limit,
        tracker,
    )
    scored = 0
    vectors = similarity_vectors(catalog, project, model, predictor, tracker, options.say)
    same_pass = vectors is not None and vectors.name == model.name
    with options.progress(f"enrich {model.name}", pending, "images") as progress:
        for chunk in predictor.score_chunks(chunks, progress, embed=same_pass):
            scored += write_predictions(catalog, model, chunk, tracker)
            if regions is not None:
                regions.chunk(chunk)
            if same_pass:
                keep_chunk_vectors(vectors, chunk)
            elif vectors is not None:  # the ImageNet backbone's, for the same images
                embed_files(
                    vectors,
                    {item.sha256: item.path for item in chunk.items if item.sha256},
                )
    catch_up_vectors(catalog, project, model, tracker, options)
    return finish_scoring(tracker, model, scored, unchanged)


def catch_up_vectors(catalog, project: Project, model, tracker, options) -> None:
    """Embed the fetched images that are scored but have no vector (a run stopped between
    the two, or vectors asked for after the scores): skipped images need them too."""
    from monalia.similarity.near_duplicates import embed_missing, embedding, fetched_images

    if not project.file.similarity.enrich:
        return
    found = embedding(catalog, project, scoring_model=model)
    images = fetched_images(catalog)
    missing = len({image.sha256 for image in images} - found.store.keys())
    if not missing:
        return
    options.say(f"keeping the vectors of {missing:,} images scored earlier ({found.name})")
    try:
        embed_missing(project, found, images)
    except MonaliaError as exc:  # a model that cannot embed: the scores stand
        tracker.event(f"no vectors kept: {exc}", level="warning")


def similarity_vectors(catalog, project: Project, model, predictor, tracker, say):
    """Where enrich keeps image vectors (`[similarity]`), or None: not asked for, or the
    scoring model cannot embed when its own features are asked for."""
    from monalia.similarity.near_duplicates import embedding

    if not project.file.similarity.enrich:
        return None
    found = embedding(catalog, project, scoring_model=model)
    if found.name == model.name and predictor is not None and not predictor.can_embed:
        tracker.event(
            f"model {model.name} cannot embed images: no vectors kept for similarity",
            level="warning",
        )
        return None
    if found.name != model.name:
        say(f"keeping image vectors of {found.name} for similarity ([similarity] model)")
    return found


def finish_scoring(tracker: RunTracker, model: ModelRow, scored: int, unchanged: int) -> RunInfo:
    failed = tracker.counts["failed"]
    return tracker.finish(
        DONE,
        f"{scored:,} images scored with {model.name}"
        + (f", {unchanged:,} unchanged" if unchanged else "")
        + (f", {failed:,} failed" if failed else ""),
    )
