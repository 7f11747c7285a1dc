"""The enrich stage: score the catalog's images with a registered model, then publish the scores.

Scoring goes a chunk of images at a time: a chunk's predictions are written in one transaction
with the run's counts, so a killed run loses at most the chunk in hand and a re-run picks up
where it stopped (an image whose predictions for this model exist for its current content is
skipped). Publishing reads the model's predictions back from the catalog and replaces the
model's named graph in each sink, so a sink is repaired by publishing again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import func, select

from monalia.api.trainer import ChunkScores, LoadOptions, Predictor
from monalia.catalog.database import Catalog
from monalia.catalog.lookups import find_model, model_folder
from monalia.catalog.models import (
    ImageRow,
    ModelClassRow,
    ModelRow,
    PredictionRow,
    RecordRow,
    ScoredImageRow,
    SubjectRow,
    utcnow,
)
from monalia.catalog.queries import image_file, scorable, unscored
from monalia.catalog.run_tracking import (
    DONE,
    RunInfo,
    RunTracker,
)
from monalia.errors import ConfigError, MonaliaError
from monalia.learning.devices import resolve_device
from monalia.progress import Progress
from monalia.project import PluginInstance, Project
from monalia.rdf.scores import ImageScores, ModelClass, ModelInfo, model_graph_iri, model_triples
from monalia.similarity.near_duplicates import embed_files, keep_chunk_vectors

PUBLISH_PAGE = 500  # images read back per query when publishing


@dataclass
class EnrichOptions:
    model: str | None = None
    device: str | None = None
    batch_size: int | None = None
    workers: int | None = None
    limit: int | None = None
    rescore: bool = False
    executor: str | None = None  # local or ray; None: [executor] kind
    score: bool = True  # False: only publish what the catalog holds
    sinks: list[str] | None = None
    say: Callable[[str], None] = lambda message: None
    progress: Callable[[str, int | None, str], Progress] = lambda label, total, unit: Progress(
        label, total=total, unit=unit, enabled=False
    )


@dataclass
class EnrichOutcome:
    model: str
    run: RunInfo | None
    publish_runs: list[RunInfo] = field(default_factory=list)


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
    )


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


def score_images(
    catalog: Catalog, project: Project, model: ModelRow, options: EnrichOptions, hooks=None
) -> RunInfo:
    """Score every fetched image not yet scored by `model` (all with `rescore`)."""
    settings = project.file.enrich
    device = resolve_device(options.device or settings.device)
    batch_size = options.batch_size or settings.batch_size
    workers = options.workers if options.workers is not None else settings.workers
    pending, unchanged = count_images(catalog, model.id, options.rescore)
    if options.limit is not None:
        pending = min(pending, options.limit)
    executor = options.executor or project.file.executor.kind
    run_settings = {
        "model": model.name,
        "device": str(device),
        "batch_size": batch_size,
        "rescore": options.rescore,
        "limit": options.limit,
        "executor": executor,
    }
    if executor == "ray":
        from monalia.executors.ray_executor import require_ray

        require_ray()  # before the run starts: a missing extra is a usage error
    project.trainer_plugin(model.trainer)  # an uninstalled trainer is a usage error too
    with RunTracker(catalog, "enrich", model.trainer, model.name, run_settings, hooks) as tracker:
        tracker.add(unchanged=unchanged)
        if executor == "ray":
            scored = score_on_cluster(catalog, project, model, options, tracker, pending)
            catch_up_vectors(catalog, project, model, tracker, options)
            return _finish_scoring(tracker, model, scored, unchanged)
        # images are scored once: a resized copy would only fill the disk, so no cache
        predictor = load_predictor(
            project, model, LoadOptions(str(device), batch_size, workers, cache_dir=None)
        )
        options.say(
            f"scoring {pending:,} images with {model.name} on {device}"
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
                if same_pass:
                    keep_chunk_vectors(vectors, chunk)
                elif vectors is not None:  # the ImageNet backbone's, for the same images
                    embed_files(
                        vectors,
                        {item.sha256: item.path for item in chunk.items if item.sha256},
                    )
        catch_up_vectors(catalog, project, model, tracker, options)
        return _finish_scoring(tracker, model, scored, unchanged)


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


def _finish_scoring(tracker: RunTracker, model: ModelRow, scored: int, unchanged: int) -> RunInfo:
    failed = tracker.counts["failed"]
    return tracker.finish(
        DONE,
        f"{scored:,} images scored with {model.name}"
        + (f", {unchanged:,} unchanged" if unchanged else "")
        + (f", {failed:,} failed" if failed else ""),
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
    embed = {}
    if vectors is not None:
        similarity = project.file.similarity
        weights = similarity.weights
        if weights != "imagenet":
            weights = str(project.context("similarity").path(weights))
        embed = {
            "embed": "scoring" if vectors.name == model.name else "imagenet",
            "embed_backbone": similarity.backbone,
            "embed_weights": weights,
        }
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
        chunk = ChunkScores(
            items,
            np.array([columns["scores"][k] for _, k in rows], dtype=np.float32).reshape(
                len(rows), -1
            ),
            np.array([index for index, _ in rows], dtype=int),
            unreadable,
            np.array([columns["embedding"][k] for _, k in rows], dtype=np.float32)
            if "embedding" in columns and rows
            else None,
        )
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


def _mentioned(catalog: Catalog, record_ids: set[int], mentions) -> dict[int, frozenset[str]]:
    with catalog.session() as session:
        rows = session.execute(
            select(SubjectRow.record_id, SubjectRow.uri, SubjectRow.label).where(
                SubjectRow.record_id.in_(record_ids)
            )
        ).all()
    subjects: dict[int, list[tuple[str | None, str | None]]] = {}
    for row in rows:
        subjects.setdefault(row.record_id, []).append((row.uri, row.label))
    return {record: mentions.of(pairs) for record, pairs in subjects.items()}


def iter_image_scores(catalog: Catalog, model_id: int, mentions=None) -> Iterator[ImageScores]:
    """Every image's scores under the model, a page of images at a time, by image id.

    With `mentions` (a `monalia.curation.findings.Mentions`), each image says which classes its record's
    subjects mention.
    """
    with catalog.session() as session:
        uris = dict(
            session.execute(
                select(ModelClassRow.class_index, ModelClassRow.uri).where(
                    ModelClassRow.model_id == model_id
                )
            ).all()
        )
    after = 0
    while True:
        with catalog.session() as session:
            images = session.execute(
                select(
                    ScoredImageRow.image_id,
                    ScoredImageRow.record_id,
                    ScoredImageRow.image_sha256,
                    ScoredImageRow.run_id,
                    ScoredImageRow.scored_at,
                    RecordRow.iri,
                    ImageRow.url,
                    RecordRow.deleted_at,
                )
                .join(ImageRow, ImageRow.id == ScoredImageRow.image_id)
                .join(RecordRow, RecordRow.id == ImageRow.record_id)
                .where(ScoredImageRow.model_id == model_id, ScoredImageRow.image_id > after)
                .order_by(ScoredImageRow.image_id)
                .limit(PUBLISH_PAGE)
            ).all()
            if not images:
                return
            scores: dict[int, dict[str, float]] = {}
            for image_id, index, score in session.execute(
                select(PredictionRow.image_id, PredictionRow.class_index, PredictionRow.score)
                .where(
                    PredictionRow.model_id == model_id,
                    PredictionRow.image_id >= images[0].image_id,
                    PredictionRow.image_id <= images[-1].image_id,
                )
                .order_by(PredictionRow.image_id, PredictionRow.class_index)
            ):
                scores.setdefault(image_id, {})[uris[index]] = score
        after = images[-1].image_id
        # deleted at the source: out of the graph
        images = [row for row in images if row.deleted_at is None]
        mentioned = (
            _mentioned(catalog, {row.record_id for row in images}, mentions) if mentions else {}
        )
        for row in images:
            current = ImageScores(
                row.record_id,
                row.iri,
                row.image_id,
                row.url,
                row.image_sha256,
                row.run_id,
                row.scored_at,
                mentioned=mentioned.get(row.record_id, frozenset()),
            )
            current.scores.update(scores.get(row.image_id, {}))
            yield current


def count_scored_images(catalog: Catalog, model_id: int) -> int:
    with catalog.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(ScoredImageRow)
                .where(ScoredImageRow.model_id == model_id)
            )
            or 0
        )


def publish_model(
    catalog: Catalog,
    configured: PluginInstance,
    model: ModelRow,
    min_score: float = 0.0,
    hooks=None,
    progress: Progress | None = None,
    mentions=None,
) -> RunInfo:
    """Replace the model's named graph (or rows) in one sink with the catalog's predictions.

    With `mentions` (a `monalia.curation.findings.Mentions`) the graph gets the curation bands.
    """
    sink = configured.create()
    base_iri = configured.context.base_iri
    info = replace(model_info(model), bands=mentions is not None)
    graph = model_graph_iri(base_iri, model.name)
    settings = {"settings": sink.describe_settings(), "model": model.name}
    progress = progress or Progress(f"publish to {configured.instance}", enabled=False)
    with (
        RunTracker(
            catalog, "publish", configured.info.name, configured.instance, settings, hooks
        ) as tracker,
        progress,
    ):

        def images() -> Iterator[ImageScores]:
            for image in iter_image_scores(catalog, model.id, mentions):
                tracker.add(seen=1)
                progress.advance(1)
                yield image

        header = model_triples(info, base_iri, tracker.id, utcnow())
        written = sink.publish_model(graph, info, header, images(), base_iri, min_score)
        if hooks is not None:
            hooks.graph_published(sink=sink, graph=graph, triples=written, run=tracker.info)
        return tracker.finish(
            DONE,
            f"{tracker.counts['seen']:,} images of {model.name}: {written:,} "
            f"{sink.unit} to {sink.location()}",
        )


def selected_sinks(project: Project, names: list[str] | None) -> list[PluginInstance]:
    names = names if names is not None else project.file.enrich.sinks
    if names is None:
        return list(project.sinks.values())
    unknown = [name for name in names if name not in project.sinks]
    if unknown:
        known = ", ".join(project.sinks) or "none"
        raise ConfigError(f"no sink {', '.join(unknown)} in the project file (sinks: {known})")
    return [project.sinks[name] for name in names]


def enrich(catalog: Catalog, project: Project, options: EnrichOptions, hooks=None) -> EnrichOutcome:
    """Score (unless `options.score` is False), then publish to the selected sinks."""
    model = find_model(catalog, options.model or project.file.enrich.model)
    sinks = selected_sinks(project, options.sinks)
    run = score_images(catalog, project, model, options, hooks) if options.score else None
    outcome = EnrichOutcome(model.name, run)
    if not sinks:
        options.say("no sink in the project file: the scores are in the catalog only")
    with catalog.session() as session:
        model = session.get(ModelRow, model.id)
        session.expunge(model)
    total = count_scored_images(catalog, model.id)
    if project.file.enrich.records:
        from monalia.stages.publish import publish_records

        for configured in sinks:
            with options.progress(
                f"publish records to {configured.instance}", None, "triples"
            ) as progress:
                outcome.publish_runs.append(
                    publish_records(catalog, configured, None, hooks, progress)
                )
    if sinks:
        from monalia.classes import project_mentions

        mentions = project_mentions(catalog, project, model)
    for configured in sinks:
        with options.progress(
            f"publish {model.name} to {configured.instance}", total, "images"
        ) as progress:
            outcome.publish_runs.append(
                publish_model(
                    catalog,
                    configured,
                    model,
                    project.file.enrich.min_score,
                    hooks,
                    progress,
                    mentions,
                )
            )
    return outcome
