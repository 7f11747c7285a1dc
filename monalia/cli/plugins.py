"""``monalia plugins``: every installed plugin."""

from __future__ import annotations

import json

import click

from monalia.cli.app import (
    App,
    cli,
    pass_app,
)


@cli.command("plugins")
@click.option(
    "--kind",
    type=click.Choice(["source", "labeler", "trainer", "sink", "metadata-format"]),
    help="Only this kind.",
)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_app
def plugins_command(app: App, kind: str | None, as_json: bool) -> None:
    """List every installed plugin: kind, name, origin package and version."""
    plugins = app.registry.all(kind)
    broken = app.registry.pm.broken
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "kind": p.kind,
                        "name": p.name,
                        "package": p.origin.package,
                        "version": p.origin.version,
                        "class": f"{p.cls.__module__}.{p.cls.__qualname__}",
                        "summary": p.summary,
                    }
                    for p in plugins
                ]
                + [
                    {
                        "kind": "broken",
                        "name": b.entry_point,
                        "package": b.origin.package,
                        "version": b.origin.version,
                        "error": b.error,
                    }
                    for b in broken
                ],
                indent=2,
            )
        )
        return
    from monalia.progress import summary_table

    rows = [(p.kind, p.name, p.origin.package, p.origin.version, p.summary) for p in plugins]
    rows += [("BROKEN", b.entry_point, b.origin.package, b.origin.version, b.error) for b in broken]
    summary_table("plugins", ["kind", "name", "package", "version", "what it does"], rows)
