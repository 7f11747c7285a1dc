"""``monalia search``: the records a model sees a term in, best first."""

from __future__ import annotations

import click

from monalia.cli.app import FORMATS, App, cli, pass_app
from monalia.cli.report import (
    curation_setup,
    finish_findings,
    lang_option,
    model_option,
    print_findings,
    rank_option,
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
@lang_option
@rank_option
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def search(app: App, term, model_ref, min_score, limit, store, lang, rank, output_format) -> None:
    """Records a model sees TERM in, best score first.

    TERM is one of the model's classes, by label (in any language its thesaurus has) or URI, a
    concept (or label) the class covers, such as a narrower term, or a concept broader than
    some of the classes ("animal" above "cheval"): then records rank by the rolled-up score,
    the highest of those classes' scores, and `via` says which made it. `annotated` says
    whether the record's metadata already mentions the class. With `--rank hybrid`, records
    rank by the image score fused with the metadata's evidence (the class's concept or label,
    a narrower term, the label in the title or description), and `evidence` says which.
    """
    from monalia.curation.findings import find_class
    from monalia.curation.languages import class_by_any_label
    from monalia.curation.rollup import RULE, find_broader, rolled_up_search
    from monalia.errors import ConfigError

    setup = curation_setup(app, model_ref, store, lang=lang)
    curation = setup.curation
    try:
        cls = find_class(curation.classes, term)
    except ConfigError:
        cls = class_by_any_label(curation, term)
        if cls is None:
            concept = find_broader(curation, term, lang or app.project.file.classes.language)
            app.say(
                f"{concept.label}: rolled up from {', '.join(concept.class_labels)} ({RULE} "
                f"of their scores; derived threshold {concept.threshold:.4f})"
            )
            findings = rolled_up_search(curation, concept, min_score, limit)
            finish_findings(app, setup, findings, output_format)
            print_findings(f"{concept.label}: {len(findings)} records", findings, output_format)
            return
    if (rank or app.project.file.report.ranking) == "hybrid":
        from monalia.curation.hybrid import hybrid_search

        weights = app.project.file.report.hybrid_weights
        findings = hybrid_search(curation, cls, min_score, limit, weights)
    else:
        findings = curation.search(cls, min_score, limit)
    finish_findings(app, setup, findings, output_format)
    print_findings(f"{cls.label}: {len(findings)} records", findings, output_format)
