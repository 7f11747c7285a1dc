"""``monalia plugins``: every installed plugin."""

from __future__ import annotations

import json

import click

from monalia.cli.app import App, cli, pass_app

KIND_ORDER = ["source", "labeler", "trainer", "sink", "metadata-format"]


@cli.command("plugins")
@click.option("--kind", type=click.Choice(KIND_ORDER), help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_app
def plugins_command(app: App, kind: str | None, as_json: bool) -> None:
    """List every installed plugin: kind, name, origin package and version.

    Read from the plugin manifest, which is rebuilt (every plugin imported) when a
    distribution was installed, upgraded or removed, or a plugin's source file changed."""
    from monalia.api.manifest import load_manifest

    manifest = load_manifest()
    if manifest is None:  # first use, or something was installed or changed since
        from monalia.api.registry import current_manifest

        manifest = current_manifest()
    plugins = sorted(
        (p for p in manifest["plugins"] if kind is None or p["kind"] == kind),
        key=lambda p: (KIND_ORDER.index(p["kind"]), p["name"]),
    )
    broken = manifest["broken"]
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "kind": p["kind"],
                        "name": p["name"],
                        "package": p["package"],
                        "version": p["version"],
                        "class": p["class"],
                        "summary": p["summary"],
                    }
                    for p in plugins
                ]
                + [
                    {
                        "kind": "broken",
                        "name": b["entry_point"],
                        "package": b["package"],
                        "version": b["version"],
                        "error": b["error"],
                    }
                    for b in broken
                ],
                indent=2,
            )
        )
        return
    from monalia.progress import summary_table

    rows = [(p["kind"], p["name"], p["package"], p["version"], p["summary"]) for p in plugins]
    rows += [("BROKEN", b["entry_point"], b["package"], b["version"], b["error"]) for b in broken]
    summary_table("plugins", ["kind", "name", "package", "version", "what it does"], rows)
