"""``monalia publish``: the catalog's records as RDF to the sinks."""

from __future__ import annotations

import click

from monalia.cli.app import (
    App,
    cli,
    pass_app,
    print_runs_summary,
    run_publish_stage,
    terminate_gracefully,
)


@cli.command()
@click.option("--sink", "sinks", multiple=True, help="Only this sink (repeatable).")
@click.option("--source", "sources", multiple=True, help="Only this source's records (repeatable).")
@pass_app
def publish(app: App, sinks: tuple[str, ...], sources: tuple[str, ...]) -> None:
    """Publish the catalog's records as RDF to the project's sinks."""
    terminate_gracefully()
    runs = run_publish_stage(app, sinks, sources)
    print_runs_summary("publish", runs, app)
