"""``monalia similar``: the records whose images look most like one."""

from __future__ import annotations

import json
import sys

import click

from monalia.cli.app import FORMATS, App, cli, pass_app, write_csv

# the fields of a similar record in JSON and CSV
SIMILAR_FIELDS = ["similarity", "record", "source", "reference", "title", "image", "sha256"]


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    from monalia.progress import summary_table

    summary_table(title, headers, rows, sys.stdout)


@cli.command()
@click.argument("query")
@click.option("--k", "k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--source", help="Only records of this source.")
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def similar(app: App, query: str, k: int, source: str | None, output_format: str) -> None:
    """The records whose images look most like QUERY's, best first.

    QUERY is a record (its IRI, SOURCE:ID or ID), an image URL of the catalog, or an image
    file, which need not be in the collection (it is embedded on the fly). Images not yet
    embedded are embedded first, with `[similarity] model`, and kept.
    """
    from monalia.similarity.near_duplicates import similar as find

    progress = app.progress("embed", "images")
    own, found = find(app.catalog, app.project, query, k, source, progress, app.say)
    progress.close()
    rows = [{"similarity": round(n.similarity, 4), **n.image.as_dict()} for n in found]
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif output_format == "csv":
        write_csv(rows, SIMILAR_FIELDS)
    else:
        title = own[0].title or own[0].record if own else query
        print_table(
            f"like {title}: {len(rows)} records",
            ["similarity", "source", "reference", "title", "image"],
            [
                [
                    f"{r['similarity']:.4f}",
                    r["source"],
                    r["reference"],
                    r["title"] or "",
                    r["image"],
                ]
                for r in rows
            ],
        )
