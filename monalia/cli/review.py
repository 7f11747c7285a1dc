"""``monalia review``: the curators' decisions as changes, or as a PROV-O graph."""

from __future__ import annotations

import json

import click

from monalia.cli.app import FORMATS, App, cli, pass_app, write_csv
from monalia.cli.report import model_option, store_option


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


@review.command("stats")
@click.option("--model", "model_name", help="Only decisions on this model's findings.")
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def review_stats_command(app: App, model_name: str | None, output_format: str) -> None:
    """Precision of the model's claims as curators judged them, per class and kind, with a 95 %
    Wilson interval; how often reviewers agree (Fleiss' and Cohen's kappa)."""
    from monalia.curation.review_stats import PRECISION_FIELDS, review_stats

    stats = review_stats(app.catalog, model_name=model_name)
    if output_format == "json":
        click.echo(json.dumps(stats.as_dict(), ensure_ascii=False, indent=2))
        return
    if output_format == "csv":
        write_csv([row.as_dict() for row in stats.rows], PRECISION_FIELDS)
        return
    from monalia.progress import summary_table

    if not stats.rows:
        click.echo("no decisions yet: review findings in `monalia serve`")
        return

    def number(value) -> str:
        return "–" if value is None else f"{value:.2f}"

    summary_table(
        f"precision as reviewed: {stats.decided} findings decided by "
        f"{len(stats.reviewers)} reviewers",
        ["class", "kind", "reviewed", "held", "precision", "95 % interval"],
        [
            [
                row.class_label,
                row.kind,
                row.reviewed,
                row.held,
                number(row.precision),
                f"{row.interval[0]:.2f}–{row.interval[1]:.2f}",
            ]
            for row in stats.rows
        ],
    )
    agreement = stats.agreement
    if agreement.findings:
        click.echo(
            f"agreement: {agreement.unanimous} of {agreement.findings} findings decided by "
            f"several reviewers agree ({number(agreement.share)}); "
            f"Fleiss' kappa {number(agreement.fleiss)}"
        )
        for pair in agreement.pairs:
            click.echo(
                f"  {pair.first} and {pair.second}: {pair.agreed} of {pair.findings} agree, "
                f"Cohen's kappa {number(pair.kappa)}"
            )
    else:
        click.echo("agreement: no finding was decided by more than one reviewer")


@review.command("sample")
@click.argument("class_name")
@click.option("--size", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--strata",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Score bands of equal count, sampled alike.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@model_option
@store_option
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def review_sample(app: App, class_name, size, strata, seed, model_ref, store, output_format):
    """A stratified random sample of a class's detections to review, so that the precision
    `review stats` gives is the class's, not that of its best scores. The workbench shows the
    same sample (Sample on the classes page); decisions on it count as "sample"."""
    from monalia.cli.report import curation_setup, finish_findings, print_findings
    from monalia.curation.findings import find_class
    from monalia.curation.review_stats import stratified_sample

    setup = curation_setup(app, model_ref, store)
    cls = find_class(setup.curation.classes, class_name)
    detections = setup.curation.search(cls, None, app.project.file.serve.search_limit)
    chosen = stratified_sample(detections, size, strata, seed)
    finish_findings(app, setup, chosen)
    print_findings(
        f"sample of {cls.label}: {len(chosen)} of {len(detections)} detections, "
        f"{strata} score bands, seed {seed}",
        chosen,
        output_format,
    )
