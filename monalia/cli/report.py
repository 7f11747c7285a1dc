"""``monalia report``: noise, silence and the HTML report.

The options and the findings table here are shared with ``monalia search``.
"""

from __future__ import annotations

import json
import os

import click

from monalia.cli.app import FORMATS, App, cli, pass_app, write_csv

# the table's columns; CSV and JSON carry every field of a finding, under the same names
# (`Finding.as_dict`; the schema is in the documentation's reference)
TABLE_COLUMNS = ["score", "class", "reference", "title", "annotated", "image"]


def store_option(function):
    return click.option(
        "--store",
        help="Sink instance, SPARQL endpoint URL, store folder or RDF file to query "
        "(default: [report] store, else the first embedded-store, sparql-store or turtle sink).",
    )(function)


def model_option(function):
    return click.option(
        "--model",
        "model_ref",
        help="Model name or its start (default: [report] model, [enrich] model, else the newest).",
    )(function)


def _row(finding) -> list[str]:
    annotated = {True: "yes", False: "no", None: ""}[finding.annotated]
    image = finding.image_path or finding.image
    if finding.image_path:
        relative = os.path.relpath(finding.image_path)
        image = relative if len(relative) < len(image) else image
    return [
        f"{finding.score:.4f}",
        finding.class_label,
        finding.identifier or "",
        finding.title or "",
        annotated,
        image,
    ]


def print_findings(title: str, findings, output_format: str) -> None:
    if output_format == "json":
        click.echo(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=2))
        return
    if output_format == "csv":
        from monalia.curation.findings import FINDING_FIELDS

        write_csv([f.as_dict() for f in findings], FINDING_FIELDS)
        return
    from monalia.progress import summary_table

    if not findings:
        click.echo(f"{title}: nothing found")
        return
    summary_table(title, TABLE_COLUMNS, [_row(f) for f in findings])


def lang_option(function):
    return click.option(
        "--lang",
        metavar="LANG",
        help="Label the classes in this language (e.g. en) where the thesaurus has it "
        "(default: [classes] language).",
    )(function)


def rank_option(function):
    return click.option(
        "--rank",
        type=click.Choice(["image", "hybrid"]),
        help="Rank by the image score, or by the image score fused with the metadata's "
        "evidence (default: [report] ranking, image).",
    )(function)


def method_option(function):
    return click.option(
        "--method",
        type=click.Choice(["confident", "threshold"]),
        help="How noise and silence are found (default: [report] method, confident): "
        "confident learning over out-of-sample scores, or the card's thresholds.",
    )(function)


def curation_setup(
    app: App, model_ref, store, below=None, above=None, method=None, lang: str | None = None
):
    from monalia.curation.languages import in_language
    from monalia.curation.session import open_curation

    setup = open_curation(app.reader, app.project, model_ref, store, below, above, method)
    app.say(f"model {setup.model.name}, querying {setup.store}")
    if setup.note:
        app.say(setup.note)
    missing = in_language(setup.curation, lang)
    if missing:
        app.say(f"no {lang} label for {', '.join(missing)}: shown as before")
    return setup


def finish_findings(app: App, setup, findings, output_format: str = "json") -> None:
    """Describe the findings as the output shows them: the table shows a title and reference,
    CSV and JSON every field."""
    from monalia.curation.session import add_local_images

    setup.curation.describe(findings, brief=output_format == "table")
    add_local_images(app.reader, app.project, findings)


@cli.group()
def report() -> None:
    """Curation reports: noise (suspect annotations), silence (missing ones), an HTML site."""


def _report_command(kind: str):
    threshold = "--below" if kind == "noise" else "--above"
    explained = (
        "annotated with a class (or a narrower term) yet scored below the class's noise "
        "threshold: suspect annotations"
        if kind == "noise"
        else "scored above the class's silence threshold and not annotated with it: missing "
        "annotations"
    )

    @report.command(kind, help=f"Records {explained}. Thresholds per class from the model card.")
    @model_option
    @click.option(
        "--class", "class_names", multiple=True, help="Only this class (repeatable; default: all)."
    )
    @click.option(
        threshold,
        "threshold",
        type=click.FloatRange(0, 1),
        help="One threshold for every class instead of the card's.",
    )
    @click.option(
        "--level",
        metavar="CONCEPT",
        help="Work at a concept broader than the classes (its label or IRI): a record counts "
        "once, by its rolled-up score over the classes under it.",
    )
    @click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
    @store_option
    @method_option
    @lang_option
    @rank_option
    @click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
    @pass_app
    def command(
        app: App,
        model_ref,
        class_names,
        threshold,
        level,
        limit,
        store,
        method,
        lang,
        rank,
        output_format,
    ) -> None:
        from monalia.curation.session import pick_classes

        below, above = (threshold, None) if kind == "noise" else (None, threshold)
        setup = curation_setup(app, model_ref, store, below, above, method, lang)
        if level:
            from monalia.curation import rollup

            concept = rollup.find_broader(
                setup.curation, level, lang or app.project.file.classes.language
            )
            app.say(
                f"{kind} at {concept.label}: over {', '.join(concept.class_labels)} "
                f"({rollup.RULE} of their scores)"
            )
            findings = getattr(rollup, f"{kind}_at")(setup.curation, concept)
        else:
            classes = pick_classes(setup, class_names)
            findings = getattr(setup.curation, kind)(classes)
        if (rank or app.project.file.report.ranking) == "hybrid" and kind == "silence":
            findings = hybrid_silence(app, setup, findings)
        total = len(findings)
        findings = findings[:limit] if limit else findings
        finish_findings(app, setup, findings, output_format)
        shown = f"{total} records" + (f", {len(findings)} shown" if len(findings) < total else "")
        how = (
            f"method {setup.method}: confident learning on {setup.curation.out_of_sample.name}"
            " for the dataset's records, thresholds for the others"
            if setup.method == "confident" and setup.curation.out_of_sample is not None
            else f"method {setup.method}"
        )
        print_findings(f"{kind}: {shown} ({how})", findings, output_format)

    return command


def hybrid_silence(app: App, setup, findings):
    """Silence ranked by the fused score: unannotated records whose title or description
    names the class come first at the same image score."""
    from monalia.curation.hybrid import hybrid_rank

    weights = app.project.file.report.hybrid_weights
    ranked = []
    for uri in dict.fromkeys(f.class_uri for f in findings):
        cls = setup.curation.by_uri.get(uri)
        group = [f for f in findings if f.class_uri == uri]
        ranked.extend(hybrid_rank(setup.curation, cls, group, weights) if cls else group)
    return sorted(ranked, key=lambda f: (-f.score, f.class_label, f.record))


noise_command = _report_command("noise")
silence_command = _report_command("silence")


@report.command("html")
@click.argument("out", type=click.Path(file_okay=False))
@model_option
@store_option
@click.option(
    "--per-class",
    type=click.IntRange(min=1),
    help="Search results per class (default: [report] search_limit).",
)
@method_option
@pass_app
def report_html(app: App, out, model_ref, store, per_class, method) -> None:
    """A static site: noise, silence and search results with thumbnails, the model's metrics."""
    from pathlib import Path

    from monalia.curation.html_report import write_site

    setup = curation_setup(app, model_ref, store, method=method)
    index = write_site(
        Path(out),
        setup,
        app.catalog,
        app.project,
        per_class or app.project.file.report.search_limit,
        progress=app.progress("report html", "pages"),
    )
    click.echo(f"report: {index}")
