"""Publishing a model's scores: read back from the catalog a page at a time and written to each
sink as the model's named graph (replaced whole, so publishing again repairs a sink)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from sqlalchemy import func, select

from monalia.catalog.database import Catalog
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
from monalia.catalog.run_tracking import (
    DONE,
    RunInfo,
    RunTracker,
)
from monalia.progress import Progress
from monalia.project import PluginInstance
from monalia.rdf.scores import ImageScores, model_graph_iri, model_triples
from monalia.stages.enrich.scoring import model_info

PUBLISH_PAGE = 500  # images read back per query when publishing


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
                tracker.add(seen=1, new=1)  # each image's scores written to the sink
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
