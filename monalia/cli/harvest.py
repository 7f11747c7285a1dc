"""``monalia harvest``: records from the project's sources into the catalog."""

from __future__ import annotations

import click

from monalia.cli.app import (
    App,
    cli,
    harvest_failed,
    pass_app,
    print_runs_summary,
    run_harvest_stage,
    selected_instances,
    terminate_gracefully,
)


@cli.command()
@click.argument("sources", nargs=-1)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Stop after this many records (the next run goes on).",
)
@click.option(
    "--since", metavar="DATE", help="Only records changed after DATE, where the source can tell."
)
@click.option(
    "--restart", is_flag=True, help="Forget where the last run stopped and read everything."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and check everything, count new/changed/unchanged/failed, write nothing.",
)
@pass_app
def harvest(
    app: App,
    sources: tuple[str, ...],
    limit: int | None,
    since: str | None,
    restart: bool,
    dry_run: bool,
) -> None:
    """Harvest records from the project's sources (all of them, or those named)."""
    terminate_gracefully()
    if dry_run:
        _dry_run_harvest(app, sources, limit, since, restart)
        return
    runs = run_harvest_stage(app, sources, limit, since, restart)
    print_runs_summary("harvest", runs, app)
    harvest_failed(runs)


def _dry_run_harvest(
    app: App, names: tuple[str, ...], limit: int | None, since: str | None, restart: bool
) -> None:
    from monalia.stages.harvest import HarvestOptions, dry_run

    options = HarvestOptions(limit=limit, since=since, restart=restart)
    for configured in selected_instances("source", app.project.sources, names):
        with app.progress(f"dry run {configured.instance}", "records") as progress:
            result = dry_run(app.catalog, configured, options, progress)
        counts = result["counts"]
        for item, message in result["failures"]:
            click.echo(f"{configured.instance}: would skip {item}: {message}")
        for item, message in result.get("warnings", ()):
            click.echo(f"{configured.instance}: warning for {item}: {message}")
        click.echo(
            f"{configured.instance} (dry run, nothing written): {counts['seen']} read, "
            f"{counts['new']} new, {counts['changed']} changed, "
            f"{counts['unchanged']} unchanged, {counts['failed']} failed"
        )
