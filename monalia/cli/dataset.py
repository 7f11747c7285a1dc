"""``monalia dataset``: the catalog's datasets, their statistics and exports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from monalia.cli.app import App, cli, pass_app
from monalia.cli.thesaurus import short


@cli.group(invoke_without_command=True)
@click.pass_context
def dataset(ctx: click.Context) -> None:
    """List the catalog's datasets; `stats` and `export` look at one."""
    if ctx.invoked_subcommand is not None:
        return
    from monalia.progress import summary_table
    from monalia.stages.label.datasets import list_datasets

    app: App = ctx.obj
    summary_table(
        "datasets",
        ["name", "hash", "classes", "images", "created (UTC)"],
        [
            (
                row.name,
                row.hash[:12],
                len(row.classes),
                count,
                row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for row, count in list_datasets(app.catalog)
        ],
    )


@dataset.command("stats")
@click.argument("reference", required=False)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_app
def dataset_stats(app: App, reference: str | None, as_json: bool) -> None:
    """Per-class image counts per split of a dataset (name or hash; default the newest)."""
    from monalia.progress import summary_table
    from monalia.stages.label.datasets import find_dataset

    row = find_dataset(app.catalog, reference)
    stats = row.stats or {}
    if as_json:
        json.dump(
            {"name": row.name, "hash": row.hash, "classes": row.classes, "stats": stats},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        click.echo()
        return
    splits = stats.get("splits", {})
    rows = []
    for entry in row.classes:
        counts = [
            splits.get(s, {}).get("per_class", {}).get(entry["uri"], 0)
            for s in ("train", "val", "test")
        ]
        rows.append((entry["label"], short(entry["uri"]), *counts, sum(counts)))
    rows.append(
        (
            "(images)",
            "",
            *(splits.get(s, {}).get("images", 0) for s in ("train", "val", "test")),
            stats.get("images", 0),
        )
    )
    summary_table(
        f"dataset {row.name} {row.hash[:12]}",
        ["class", "concept", "train", "val", "test", "total"],
        rows,
    )
    for entry in stats.get("dropped_classes", []):
        click.echo(f"dropped {entry['label']} <{entry['uri']}>: {entry['images']} images")
    if stats.get("negatives"):
        click.echo(f"{stats['negatives']} negative images (no class)")


@dataset.command("export")
@click.argument("reference", required=False)
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write to (default: the dataset's folder under the data dir).",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["csv", "jsonl"]),
    multiple=True,
    help="Manifest format (repeatable; default both).",
)
@pass_app
def dataset_export(
    app: App, reference: str | None, folder: Path | None, formats: tuple[str, ...]
) -> None:
    """Write a dataset's manifests (CSV / JSONL), classes and stats."""
    from monalia.stages.label.datasets import dataset_folder, export_dataset, find_dataset

    row = find_dataset(app.catalog, reference)
    folder = folder or dataset_folder(app.project.data_dir, row)
    written = export_dataset(app.catalog, row, folder, list(formats) or ["csv", "jsonl"])
    for path in written:
        click.echo(f"wrote {path}")
