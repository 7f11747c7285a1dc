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
    RegionRow,
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
from monalia.rdf.scores import CanvasTarget, ImageScores, model_graph_iri, model_triples
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


def _regions(session, model_id: int, first: int, last: int, uris: dict[int, str]):
    """{image id: ({class URI: boxes}, (width, height))} of an id range's regions."""
    found: dict[int, tuple[dict[str, tuple], tuple[int, int]]] = {}
    for row in session.execute(
        select(
            RegionRow.image_id,
            RegionRow.class_index,
            RegionRow.boxes,
            RegionRow.image_width,
            RegionRow.image_height,
        ).where(RegionRow.model_id == model_id, RegionRow.image_id.between(first, last))
    ):
        boxes = tuple(tuple(int(v) for v in box) for box in row.boxes or ())
        entry = found.setdefault(row.image_id, ({}, (row.image_width, row.image_height)))
        if boxes:
            entry[0][uris[row.class_index]] = boxes
    return found


def _record_details(session, record_ids: set[int]) -> dict[int, tuple]:
    """{record id: (landing page, title, {image URL: CanvasTarget})} for the annotation sinks."""
    from monalia.formats.iiif_presentation import canvas_targets

    details = {}
    for row in session.execute(
        select(
            RecordRow.id,
            RecordRow.landing_page,
            RecordRow.title,
            RecordRow.raw,
            RecordRow.source_id,
        ).where(RecordRow.id.in_(record_ids))
    ):
        targets = {
            url: CanvasTarget(manifest, canvas, width, height, row.source_id.split("#")[0])
            for url, (manifest, canvas, width, height) in canvas_targets(
                row.raw, row.source_id
            ).items()
        }
        details[row.id] = (row.landing_page, row.title, targets)
    return details


def iter_image_scores(
    catalog: Catalog, model_id: int, mentions=None, details: bool = False
) -> Iterator[ImageScores]:
    """Every image's scores under the model, a page of images at a time, by image id, with
    the regions found for its detections.

    With `mentions` (a `monalia.curation.findings.Mentions`), each image says which classes its
    record's subjects mention; with `details`, its record's page and title and, for IIIF
    records, the canvas the image is painted on.
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
            regions = _regions(session, model_id, images[0].image_id, images[-1].image_id, uris)
            records = _record_details(session, {row.record_id for row in images}) if details else {}
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
            if row.image_id in regions:
                current.regions, current.image_size = regions[row.image_id]
            if row.record_id in records:
                current.landing_page, current.title, targets = records[row.record_id]
                current.canvas = targets.get(row.url)
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
    labels: dict[str, list[tuple[str, str | None]]] | None = None,
    context=None,
) -> RunInfo:
    """Replace the model's named graph (or rows, or annotations) in one sink with the catalog's
    predictions.

    With `mentions` (a `monalia.curation.findings.Mentions`) the graph gets the curation bands;
    an annotation sink gets the classes' `labels` in every language, the model card, and the
    harvested IIIF manifests the images belong to. With `context` (a
    `monalia.rdf.class_context.ClassContext`) the graph carries the classes' broader concepts
    and the labels of all of them in every language.
    """
    sink = configured.create()
    base_iri = configured.context.base_iri
    info = replace(model_info(model), bands=mentions is not None)
    if context is not None:
        info = replace(
            info,
            hierarchy=tuple(context.broader),
            concept_labels=tuple(
                (concept, text, lang, kind)
                for concept, entries in context.labels.items()
                for text, lang, kind in entries
            ),
        )
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
            for image in iter_image_scores(
                catalog, model.id, mentions, details=sink.wants_record_details
            ):
                tracker.add(seen=1, new=1)  # each image's scores written to the sink
                progress.advance(1)
                yield image

        header = model_triples(info, base_iri, tracker.id, utcnow())
        if sink.takes_triples:
            written = sink.publish_model(graph, info, header, images(), base_iri, min_score)
        else:
            from monalia.stages.annotations import iter_manifests

            written = sink.publish_model(
                graph, info, header, images(), base_iri, min_score, labels=labels, card=model.card
            )
            sink.write_manifests(iter_manifests(catalog, model.id))
        if hooks is not None:
            hooks.graph_published(sink=sink, graph=graph, triples=written, run=tracker.info)
        return tracker.finish(
            DONE,
            f"{tracker.counts['seen']:,} images of {model.name}: {written:,} "
            f"{sink.unit} to {sink.location()}",
        )
