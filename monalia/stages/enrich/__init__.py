"""The enrich stage: score the catalog's images with a registered model, then publish the scores.

Scoring goes a chunk of images at a time: a chunk's predictions are written in one transaction
with the run's counts, so a killed run loses at most the chunk in hand and a re-run picks up
where it stopped (an image whose predictions for this model exist for its current content is
skipped). Publishing reads the model's predictions back from the catalog and replaces the
model's named graph in each sink, so a sink is repaired by publishing again.
"""

from __future__ import annotations

from monalia.api.trainer import LoadOptions
from monalia.catalog.database import Catalog
from monalia.catalog.lookups import find_model
from monalia.catalog.models import ModelRow
from monalia.catalog.run_tracking import DONE, RunInfo, RunTracker
from monalia.errors import ConfigError
from monalia.learning.devices import resolve_device
from monalia.project import PluginInstance, Project
from monalia.stages.enrich.cluster import score_on_cluster
from monalia.stages.enrich.options import EnrichOptions, EnrichOutcome
from monalia.stages.enrich.publishing import count_scored_images, publish_model
from monalia.stages.enrich.scoring import (
    PendingImage,
    catch_up_vectors,
    count_images,
    finish_scoring,
    load_predictor,
    score_locally,
    write_predictions,
)


def wants_regions(project: Project, options: EnrichOptions) -> bool:
    return options.regions if options.regions is not None else project.file.enrich.regions


def score_images(
    catalog: Catalog, project: Project, model: ModelRow, options: EnrichOptions, hooks=None
) -> tuple[RunInfo, RunInfo | None]:
    """Score every fetched image not yet scored by `model` (all with `rescore`); with regions
    asked for, find where each detection is seen, in a run of its own."""
    if not wants_regions(project, options):
        return _score_images(catalog, project, model, options, hooks, None), None
    from monalia.stages.enrich.regions import RegionPass, count_detections

    _, done = count_detections(catalog, model)
    region_settings = {"model": model.name, "fraction": project.file.enrich.region_fraction}
    with RunTracker(
        catalog, "regions", model.trainer, model.name, region_settings, hooks, exclusive="target"
    ) as region_tracker:
        region_tracker.add(seen=done, unchanged=done)
        regions = RegionPass(catalog, project, model, region_tracker)
        run = _score_images(catalog, project, model, options, hooks, regions)
        device = resolve_device(options.device or project.file.enrich.device)
        loading = LoadOptions(
            str(device), options.batch_size or project.file.enrich.batch_size, 0, None
        )
        regions.catch_up(options.progress, loading)
        counts = region_tracker.counts
        return run, region_tracker.finish(
            DONE,
            f"{counts['new']:,} regions found with {model.name}"
            + (f", {done:,} unchanged" if done else "")
            + (f", {counts['failed']:,} failed" if counts["failed"] else ""),
        )


def _score_images(
    catalog: Catalog, project: Project, model: ModelRow, options: EnrichOptions, hooks, regions
) -> RunInfo:
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
    with RunTracker(
        catalog, "enrich", model.trainer, model.name, run_settings, hooks, exclusive="target"
    ) as tracker:
        tracker.add(unchanged=unchanged)
        if executor == "ray":
            scored = score_on_cluster(catalog, project, model, options, tracker, pending)
            catch_up_vectors(catalog, project, model, tracker, options)
            return finish_scoring(tracker, model, scored, unchanged)
        # images are scored once: a resized copy would only fill the disk, so no cache
        loading = LoadOptions(str(device), batch_size, workers, cache_dir=None)
        return score_locally(
            catalog, project, model, options, tracker, (pending, unchanged), loading, regions
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
    project = project.for_task()
    model = find_model(catalog, options.model or project.file.enrich.model, project.model_dataset)
    sinks = selected_sinks(project, options.sinks)
    run, regions_run = (
        score_images(catalog, project, model, options, hooks) if options.score else (None, None)
    )
    outcome = EnrichOutcome(model.name, run, regions_run)
    if not sinks:
        options.say("no sink in the project file: the scores are in the catalog only")
    with catalog.session() as session:
        model = session.get(ModelRow, model.id)
        session.expunge(model)
    total = count_scored_images(catalog, model.id)
    if project.file.enrich.records:
        from monalia.stages.publish import publish_records

        for configured in [c for c in sinks if c.info.cls.takes_triples]:
            with options.progress(
                f"publish records to {configured.instance}", None, "triples"
            ) as progress:
                outcome.publish_runs.append(
                    publish_records(catalog, configured, None, hooks, progress)
                )
    labels = context = None
    if sinks:
        from monalia.classes import project_mentions
        from monalia.rdf.class_context import project_class_context
        from monalia.stages.annotations import class_labels
        from monalia.stages.publish import mention_graphs, queried_by_reports

        mentions = project_mentions(catalog, project, model)
        context = project_class_context(project, [entry["uri"] for entry in model.classes])
        labels = class_labels(model, context)
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
                    labels,
                    context,
                )
            )
        if configured.info.cls.takes_triples and queried_by_reports(configured):
            base_iri = configured.context.base_iri
            configured.create().publish(mention_graphs(catalog, base_iri, {model.name: mentions}))
    return outcome


__all__ = [
    "EnrichOptions",
    "EnrichOutcome",
    "PendingImage",
    "enrich",
    "load_predictor",
    "selected_sinks",
    "write_predictions",
]
