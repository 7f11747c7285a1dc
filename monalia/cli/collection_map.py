"""``monalia map``: the collection's 2-D map, computed ahead of the workbench's Map page."""

from __future__ import annotations

import json

import click

from monalia.cli.app import App, cli, pass_app


@cli.command("map")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the points as JSON.")
@pass_app
def collection_map_command(app: App, out: str | None) -> None:
    """Project every record's image vector to 2-D (UMAP; kept beside the vectors until the
    collection's images change), so the workbench's Map page opens at once."""
    from monalia.similarity.collection_map import collection_map

    found = collection_map(app.catalog, app.project, app.progress("embed", "images"), app.say)
    how = "read from the cache" if found.cached else f"computed in {found.seconds:.1f} s"
    click.echo(f"map of {len(found.record_ids):,} records ({found.method}, {how})")
    if out:
        points = [
            {"record": int(r), "image": int(i), "x": round(float(x), 5), "y": round(float(y), 5)}
            for r, i, (x, y) in zip(found.record_ids, found.image_ids, found.xy, strict=True)
        ]
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(points, handle)
        click.echo(f"points: {out}")
