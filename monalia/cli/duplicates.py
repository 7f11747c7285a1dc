"""``monalia duplicates``: groups of near-duplicate images."""

from __future__ import annotations

import json

import click

from monalia.cli.app import FORMATS, App, cli, pass_app, print_runs_summary, write_csv

DUPLICATE_CSV_FIELDS = [
    "group",
    "lowest",
    "record",
    "source",
    "reference",
    "title",
    "image",
    "sha256",
]


@cli.command()
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    help="Cosine similarity from which two images are the same picture ([similarity] threshold).",
)
@click.option(
    "--across-sources", is_flag=True, help="Only pairs whose records come from two sources."
)
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@click.option("--no-publish", is_flag=True, help="Record the groups in the catalog only.")
@pass_app
def duplicates(app: App, threshold, across_sources, output_format, no_publish) -> None:
    """Groups of near-duplicate images: the same artwork photographed twice, the same object
    in two sources, crops, recompressions, greyscale copies.

    Identical files (the same content hash) come first, for free; then pairs of images whose
    vectors are at or above the threshold, grouped. The groups are recorded in the catalog and
    published to the sinks as the graph `<base>graph/duplicates` (`ml:nearDuplicateOf`).
    """
    from monalia.catalog.run_tracking import DONE, RunTracker
    from monalia.similarity.near_duplicates import (
        find_duplicates,
        publish_duplicates,
        store_duplicates,
    )

    settings = {"threshold": threshold, "across_sources": across_sources}
    with RunTracker(app.catalog, "duplicates", "similarity", None, settings, app.hooks) as tracker:
        progress = app.progress("embed", "images")
        search = find_duplicates(
            app.catalog, app.project, threshold, across_sources, progress, app.say
        )
        progress.close()
        embedder, used, groups = search.embedder, search.threshold, search.groups
        pairs = store_duplicates(app.catalog, embedder, used, groups, tracker.id)
        # each fetched image: in a group (new), in none (unchanged), or without a vector and
        # in no group (failed: its file is missing or unreadable)
        grouped = {image.image_id for group in groups for image in group.images}
        failed = search.without_vector - grouped
        tracker.add(
            seen=search.images,
            new=len(grouped),
            unchanged=search.images - len(grouped) - len(failed),
            failed=len(failed),
        )
        if failed:
            tracker.event(
                f"{len(failed)} images have no vector (their file is missing or unreadable)",
                level="warning",
            )
        written = {} if no_publish else publish_duplicates(app.project, groups, embedder)
        records = sum(len({i.record_id for i in g.images}) for g in groups)
        info = tracker.finish(
            DONE,
            f"{len(groups):,} groups, {records:,} records, {pairs:,} pairs at {used} "
            f"({embedder})" + (f"; published to {', '.join(written)}" if written else ""),
        )
    print_groups(groups, output_format, used, embedder)
    print_runs_summary("duplicates", [info], app, to_stderr=output_format != "table")


def print_groups(groups, output_format: str, threshold: float, embedder: str) -> None:
    """The groups as JSON, CSV (one line per image) or a table."""
    entries = [
        {
            "group": group.number,
            "lowest": round(group.lowest, 4),
            "records": [image.as_dict() for image in group.images],
            "pairs": [
                {"a": a.record, "b": b.record, "similarity": round(s, 4), "method": m}
                for a, b, s, m in group.pairs
            ],
        }
        for group in groups
    ]
    if output_format == "json":
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
    elif output_format == "csv":
        # one line per image: the group's fields, then the image's, in the JSON's names
        rows = [
            {"group": entry["group"], "lowest": entry["lowest"], **image}
            for entry in entries
            for image in entry["records"]
        ]
        write_csv(rows, DUPLICATE_CSV_FIELDS)
    else:
        click.echo(f"{len(groups)} groups of near duplicates (threshold {threshold}, {embedder})")
        for group in groups:
            click.echo(f"group {group.number} (lowest similarity {group.lowest:.4f}):")
            for image in group.images:
                click.echo(f"  {image.source}:{image.source_id}  {image.title or ''}  {image.url}")
