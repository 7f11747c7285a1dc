"""``monalia search``: the records a model sees a term in, best first."""

from __future__ import annotations

import click

from monalia.cli.app import FORMATS, App, cli, pass_app
from monalia.cli.report import (
    curation_setup,
    finish_findings,
    model_option,
    print_findings,
    store_option,
)


@cli.command()
@click.argument("term")
@model_option
@click.option(
    "--min-score",
    type=click.FloatRange(0, 1),
    help="Lowest score shown (default: the class's threshold from the model card).",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@store_option
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def search(app: App, term, model_ref, min_score, limit, store, output_format) -> None:
    """Records a model sees TERM in, best score first.

    TERM is one of the model's classes, by label or URI, or a concept (or label) the class
    covers, such as a narrower term. `annotated` says whether the record's metadata already
    mentions the class.
    """
    from monalia.curation.findings import find_class

    setup = curation_setup(app, model_ref, store)
    cls = find_class(setup.curation.classes, term)
    findings = setup.curation.search(cls, min_score, limit)
    finish_findings(app, setup, findings)
    print_findings(f"{cls.label}: {len(findings)} records", findings, output_format)
