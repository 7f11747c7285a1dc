"""``monalia audit``: image problems (cleanvision) and dataset problems (cleanlab's Datalab)."""

from __future__ import annotations

import json

import click

from monalia.cli.app import FORMATS, App, cli, pass_app, write_csv

TABLE_COLUMNS = ["kind", "score", "reference", "title", "image"]


def print_problems(title: str, problems, output_format: str) -> None:
    from monalia.curation.audit import PROBLEM_FIELDS

    if output_format == "json":
        click.echo(json.dumps([p.as_dict() for p in problems], ensure_ascii=False, indent=2))
        return
    if output_format == "csv":
        write_csv([p.as_dict() for p in problems], PROBLEM_FIELDS)
        return
    from monalia.progress import summary_table

    if not problems:
        click.echo(f"{title}: nothing found")
        return
    summary_table(
        title,
        TABLE_COLUMNS,
        [
            [p.kind, f"{p.score:.3f}", p.reference, p.title or "", p.image_path or p.image]
            for p in problems
        ],
    )


@cli.command("audit")
@click.option(
    "--images/--no-images", default=True, show_default=True, help="Check the fetched images."
)
@click.option(
    "--dataset/--no-dataset",
    default=True,
    show_default=True,
    help="Check the model's dataset (needs out-of-sample scores: `monalia train --folds K`).",
)
@click.option("--model", "model_ref", help="Model whose dataset and out-of-sample scores to check.")
@click.option("--stored", is_flag=True, help="Show what the last audit found; run no checks.")
@click.option("--kind", "kinds", multiple=True, help="Only show this kind of problem (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def audit(app: App, images, dataset, model_ref, stored, kinds, limit, output_format) -> None:
    """Pictures that are not the object (blank, dark, blurry, tiny, odd shapes, duplicates) and
    dataset problems (outliers, near duplicates, non-IID data, class imbalance, groups the model
    does worse on). Findings are stored; `[dataset] exclude_problems` leaves them out of the
    next dataset."""
    from monalia.curation.audit import stored_problems
    from monalia.curation.problem_kinds import KINDS

    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r}: one of {', '.join(KINDS)}", param_hint="--kind")
    if not stored:
        from monalia.cli.app import print_runs_summary
        from monalia.stages.audit import run_audit

        outcome = run_audit(
            app.catalog,
            app.project,
            images,
            dataset,
            model_ref,
            app.hooks,
            app.progress("audit", "images"),
            app.say,
        )
        for note in outcome.notes:
            app.say(note)
        print_runs_summary("audit", [outcome.info], app, to_stderr=output_format != "table")
    shown_kinds = list(kinds)
    if not stored and not kinds:  # what the checks that ran found
        section = app.project.file.audit
        shown_kinds = (section.image_checks if images else []) + (
            section.dataset_checks if dataset else []
        )
    problems_all = stored_problems(app.catalog, shown_kinds or None, app.project.data_dir)
    total = len(problems_all)
    problems = problems_all[:limit] if limit else problems_all
    counts: dict[str, int] = {}
    for problem in problems_all:
        counts[problem.kind] = counts.get(problem.kind, 0) + 1
    summary = ", ".join(f"{kind} {n}" for kind, n in counts.items()) or "none"
    shown = f"{total} problems" + (f", {len(problems)} shown" if len(problems) < total else "")
    print_problems(f"audit: {shown} ({summary})", problems, output_format)
