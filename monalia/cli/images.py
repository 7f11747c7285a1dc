"""``monalia images``: fetch, check and store every record's image."""

from __future__ import annotations

import click

from monalia.cli.app import App, cli, pass_app, print_runs_summary, runs_stage, terminate_gracefully
from monalia.errors import ConfigError


@runs_stage("images")
def run_images_stage(
    app: App,
    limit: int | None = None,
    retry_failed: bool = False,
    sources: tuple[str, ...] = (),
    executor: str | None = None,
) -> list:
    from monalia.stages.images import ImageOptions, fetch_images
    from monalia.stages.publish import catalog_sources

    available = catalog_sources(app.catalog)
    for name in sources:
        if name not in available:
            raise ConfigError(
                f"the catalog holds no records of source {name!r} (it has: {', '.join(available) or 'none'})"
            )
    options = ImageOptions(
        limit=limit, retry_failed=retry_failed, sources=sources, executor=executor
    )
    with app.progress("images", "images") as progress:
        return [fetch_images(app.catalog, app.project, options, progress, app.hooks)]


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), help="Fetch at most this many images.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also retry images refused for good (bad content, 4xx); transient failures are always retried.",
)
@click.option("--source", "sources", multiple=True, help="Only this source's records (repeatable).")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    help="Crawl processes here, or crawl shards on a Ray cluster (default: [executor] kind).",
)
@pass_app
def images(
    app: App,
    limit: int | None,
    retry_failed: bool,
    sources: tuple[str, ...],
    executor: str | None,
) -> None:
    """Fetch every record's image once, at the [images] box size; check and store it by hash."""
    terminate_gracefully()
    runs = run_images_stage(app, limit, retry_failed, sources, executor)
    print_runs_summary("images", runs, app)
    for run in runs:
        if run.status != "done":
            raise click.exceptions.Exit(1)
