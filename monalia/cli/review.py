"""``monalia review``: the curators' decisions as changes, or as a PROV-O graph."""

from __future__ import annotations

import click

from monalia.cli.app import App, cli, pass_app


@cli.group()
def review() -> None:
    """The curators' decisions as data: changes to apply, a PROV-O curation graph."""


@review.command("export")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "json", "rdf"]),
    default="csv",
    show_default=True,
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@pass_app
def review_export(app: App, output_format: str, out: str | None) -> None:
    """The changes the decisions call for, per record: field, add or remove, term URI and
    label. As RDF, the curation graph (decisions as prov:Activity, reviewers as prov:Agent)."""
    from monalia.curation.review_export import (
        accepted_changes,
        changes_csv,
        changes_json,
        curation_turtle,
    )

    export = accepted_changes(app.catalog, app.project)
    if output_format == "csv":
        text = changes_csv(export)
    elif output_format == "json":
        text = changes_json(export)
    else:
        text = curation_turtle(export, app.project.file.project.base_iri)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)
    app.say(
        f"{len(export.changes)} changes from {len(export.decisions)} decisions "
        f"({export.confirmed} confirm the metadata as it is)"
    )


@review.command("publish")
@click.option("--sink", "sinks", multiple=True, help="A sink of the project (default: all).")
@pass_app
def review_publish(app: App, sinks: tuple[str, ...]) -> None:
    """Publish the curation graph to the project's sinks, replacing the earlier one."""
    from monalia.curation.review_export import curation_graph_iri, publish_curation

    written = publish_curation(app.catalog, app.project, list(sinks) or None)
    graph = curation_graph_iri(app.project.file.project.base_iri)
    for name, count in written.items():
        click.echo(f"{name}: {count:,} triples in {graph}")
