"""``monalia label``: records labelled with the project's classes, and the dataset built from them."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from monalia.cli.app import App, cli, pass_app, print_runs_summary, terminate_gracefully
from monalia.cli.thesaurus import say_loaded, short


@cli.command()
@click.option(
    "--unmatched",
    is_flag=True,
    help="Only list the subject labels that matched no concept (writes no dataset).",
)
@click.option(
    "--matched",
    is_flag=True,
    help="Only list the subject texts resolved to one concept, and how (writes no dataset).",
)
@click.option(
    "--top", default=50, show_default=True, help="With --unmatched or --matched: how many to show."
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --unmatched or --matched: write all of them to this CSV file.",
)
@pass_app
def label(app: App, unmatched: bool, matched: bool, top: int, csv_path: Path | None) -> None:
    """Label the catalog's records with the project's classes and build the dataset."""
    from monalia.progress import summary_table
    from monalia.stages.label import label_records

    terminate_gracefully()
    with app.progress("label", "records") as progress:
        outcome = label_records(
            app.catalog,
            app.project,
            app.hooks,
            progress,
            build=not (unmatched or matched),
            on_thesaurus=say_loaded(app),
        )
    for warning in outcome.warnings or []:
        app.say(f"warning: {warning}")
    if unmatched:
        print_unmatched(outcome.labeling, top, csv_path)
    if matched:
        print_matched(outcome.labeling, top, csv_path)
    if unmatched or matched:
        return
    plan = outcome.plan
    assert plan is not None
    splits = plan.stats["splits"]
    available = plan.stats["available_per_class"]
    kept = {target.uri for target in plan.classes}
    summary_table(
        f"dataset {plan.name} {plan.hash[:12]}",
        ["class", "concept", "concepts", "images", "train", "val", "test", ""],
        [
            (
                target.label,
                short(target.uri),
                target.concepts,
                available.get(target.uri, 0),
                *(splits[s]["per_class"].get(target.uri, "") for s in ("train", "val", "test")),
                "" if target.uri in kept else "dropped: too few images",
            )
            for target in outcome.classes
        ]
        + [
            (
                "(all images)",
                "",
                "",
                plan.stats["images"],
                *(splits[s]["images"] for s in ("train", "val", "test")),
                f"{plan.stats['negatives']} negatives" if plan.stats["negatives"] else "",
            )
        ],
    )
    say_dataset_notes(plan.stats)
    if outcome.exported:
        click.echo(f"manifests: {', '.join(str(path) for path in outcome.exported)}")
    if outcome.run is not None:
        print_runs_summary("label", [outcome.run], app)


def print_unmatched(labeling, top: int, csv_path: Path | None) -> None:
    """The subject labels that matched no concept, most frequent first (all of them in CSV)."""
    from monalia.progress import summary_table

    rows = labeling.unmatched.most_common()
    summary_table(
        f"subject labels that matched no concept ({len(rows)} distinct, "
        f"{sum(labeling.unmatched.values())} occurrences)",
        ["field", "label", "records"],
        [(field or "", text, count) for (field, text), count in rows[:top]],
    )
    if len(rows) > top:
        click.echo(f"... {len(rows) - top} more (--top N, or --csv FILE for all)")
    if csv_path is not None:
        with csv_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["field", "label", "records"])
            writer.writerows((field or "", text, count) for (field, text), count in rows)
        click.echo(f"wrote {len(rows)} rows to {csv_path}")


def print_matched(labeling, top: int, csv_path: Path | None) -> None:
    """The subject texts resolved to one concept, by how and how often (all of them in CSV)."""
    from collections import Counter

    from monalia.progress import summary_table

    counts = Counter(
        (field or "", text, concept, how) for _, field, text, _, concept, how in labeling.matches
    )
    rows = counts.most_common()
    summary_table(
        f"subject texts resolved to a concept ({len(rows)} distinct, "
        f"{sum(counts.values())} occurrences)",
        ["field", "text", "concept", "matched by", "records"],
        [(*key, count) for key, count in rows[:top]],
    )
    if len(rows) > top:
        click.echo(f"... {len(rows) - top} more (--top N, or --csv FILE for all)")
    if csv_path is not None:
        with csv_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["field", "text", "concept", "matched_by", "records"])
            writer.writerows((*key, count) for key, count in rows)
        click.echo(f"wrote {len(rows)} rows to {csv_path}")


def say_dataset_notes(stats: dict) -> None:
    """What a user should know about the dataset beyond its table: records read and labelled,
    labels that matched nothing, near duplicates kept together, review decisions used."""
    click.echo(
        f"{stats['records_seen']:,} records read, {stats['records_labelled']:,} labelled, "
        f"{stats['labelled_without_image']:,} of them without a usable image; "
        f"{stats['unmatched_labels']:,} distinct subject labels matched no concept"
        + (" (`monalia label --unmatched`)" if stats["unmatched_labels"] else "")
    )
    if stats.get("near_duplicate_groups"):
        click.echo(
            f"near duplicates: {stats['near_duplicate_groups']} groups kept on one side of the "
            f"split ({stats['near_duplicate_moved']} images moved)"
        )
    left_out = stats.get("excluded_problems") or {}
    if left_out.get("records"):
        kinds = ", ".join(f"{kind} {count}" for kind, count in left_out["kinds"].items())
        click.echo(
            f"left out for their image's problems ([dataset] exclude_problems): "
            f"{left_out['records']:,} records ({kinds}); counted above as without a usable image"
        )
    taught = stats.get("taught_classes") or []
    for entry in taught:
        click.echo(
            f"taught class {entry['label']}: {entry['positives']} positives, "
            f"{entry['negatives']} negatives from `monalia teach`"
        )
    feedback = stats.get("review_decisions") or {}
    if feedback.get("used"):
        click.echo(
            f"review decisions: {feedback['used']} used ({feedback['added']} labels added, "
            f"{feedback['removed']} removed, {feedback['confirmed']} confirmed"
            + (f", {feedback['disputed']} disputed" if feedback.get("disputed") else "")
            + ")"
        )
