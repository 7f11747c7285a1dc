"""The ``enrich`` command: score the catalog's images with a model and publish the scores.

It registers on the ``monalia`` group when `monalia.cli` is imported.
"""

from __future__ import annotations

import click

from monalia.cli.app import App, cli, pass_app, print_runs_summary, runs_stage, terminate_gracefully
from monalia.cli.train import DEVICE_HELP


def _enrich_options(app: App, **values):
    from monalia.progress import Progress
    from monalia.stages.enrich import EnrichOptions

    return EnrichOptions(
        say=app.say,
        progress=lambda label, total, unit: Progress(
            label, total=total, unit=unit, enabled=not app.quiet
        ),
        **values,
    )


@cli.command()
@click.option(
    "--model",
    "model_ref",
    help="Model name or its start (default: [enrich] model, else the newest).",
)
@click.option("--device", help=DEVICE_HELP)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Images per batch (default: [enrich] batch_size).",
)
@click.option(
    "--workers", type=click.IntRange(min=0), help="Loader processes (default: by device)."
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Score at most this many images in this run."
)
@click.option("--rescore", is_flag=True, help="Score every image again, also those already scored.")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    help="Where to score: this process, or a Ray cluster (default: [executor] kind).",
)
@click.option(
    "--regions/--no-regions",
    default=None,
    help="Also find where each detection is seen: boxes from its Grad-CAM map "
    "(default: [enrich] regions).",
)
@click.option("--publish-only", is_flag=True, help="Score nothing; publish what the catalog holds.")
@click.option(
    "--sink",
    "sinks",
    multiple=True,
    help="Only this sink (repeatable; default: [enrich] sinks, else all).",
)
@pass_app
def enrich(
    app: App,
    model_ref: str | None,
    device: str | None,
    batch_size: int | None,
    workers: int | None,
    limit: int | None,
    rescore: bool,
    executor: str | None,
    regions: bool | None,
    publish_only: bool,
    sinks: tuple[str, ...],
) -> None:
    """Score every fetched image with a registered model, then publish the scores.

    Scores go to the catalog a chunk at a time (a killed run goes on where it stopped; images
    already scored by the model and unchanged are skipped), then each sink's copy of the
    model's output is replaced with the catalog's: RDF in the model's named graph, or rows.
    """
    from monalia.stages.enrich import enrich as enrich_catalog

    terminate_gracefully()
    outcome = enrich_catalog(
        app.catalog,
        app.project,
        _enrich_options(
            app,
            model=model_ref,
            device=device,
            batch_size=batch_size,
            workers=workers,
            limit=limit,
            rescore=rescore,
            executor=executor,
            regions=regions,
            score=not publish_only,
            sinks=list(sinks) or None,
        ),
        app.hooks,
    )
    runs = [run for run in (outcome.run, outcome.regions_run) if run] + outcome.publish_runs
    print_runs_summary("enrich", runs, app)


@runs_stage("enrich")
def run_enrich_stage(app: App) -> list:
    """The enrich stage of `monalia run`."""
    from monalia.stages.enrich import enrich as enrich_catalog

    outcome = enrich_catalog(app.catalog, app.project, _enrich_options(app), app.hooks)
    return [run for run in (outcome.run, outcome.regions_run) if run] + outcome.publish_runs
