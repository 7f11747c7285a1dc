"""Commands about the project itself: init, check, plugins, db."""

from __future__ import annotations

import json
from pathlib import Path

import click

from monalia.cli.app import (
    App,
    cli,
    pass_app,
)
from monalia.errors import ConfigError, MonaliaError


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), default="monalia.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter project file (default ./monalia.toml)."""
    from monalia.project import PROJECT_FILE, starter_file

    if path.is_dir() or (not path.exists() and path.suffix.lower() != ".toml"):
        path = path / PROJECT_FILE  # a folder, made when it does not exist yet
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_file(), encoding="utf-8")
    click.echo(f"wrote {path}: edit its sources and sinks, then run `monalia check`")


@cli.command()
@pass_app
def check(app: App) -> None:
    """Validate the project file, its plugins and the catalog."""
    from monalia.catalog.database import Catalog, safe_url

    project = app.project
    problems: list[str] = []
    if project.path is not None and not project.path.read_text(encoding="utf-8").strip():
        problems.append(f"{project.path} is empty: `monalia init` writes a starter file")
    click.echo(f"project file {project.path}: valid")
    for kind, instances in (("source", project.sources), ("sink", project.sinks)):
        for name, configured in instances.items():
            click.echo(
                f"  {kind} {name}: plugin {configured.info.name} from {configured.info.origin.package}"
            )
            problems.extend(missing_inputs(kind, name, configured))
    if not project.sources:
        problems.append("no [sources.NAME] table: there is nothing to harvest")
    for configured in (project.labeler, project.trainer):
        if configured is not None:
            click.echo(f"  {configured.kind}: plugin {configured.info.name}")
    catalog = Catalog.connect(project.catalog_url)
    try:
        status = catalog.schema_status()
    except Exception as exc:
        raise MonaliaError(f"catalog {safe_url(project.catalog_url)}: {exc}") from None
    if status.up_to_date:
        click.echo(f"catalog {safe_url(project.catalog_url)}: schema {status.current} (current)")
    elif status.empty:
        click.echo(f"catalog {safe_url(project.catalog_url)}: new; it is created on first use")
    else:
        problems.append(catalog.describe_mismatch(status))
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the project; see above")


def missing_inputs(kind: str, name: str, configured) -> list[str]:
    """The local files a source's settings name (`path`, or a local `endpoint`) that are not
    there."""
    problems = []
    for setting in ("path", "endpoint"):
        value = getattr(configured.settings, setting, None)
        if not isinstance(value, str) or "://" in value or "{" in value or kind != "source":
            continue
        location = configured.context.path(value)
        if not location.exists():
            problems.append(f"source {name}: {setting} {location} does not exist")
    return problems


# -- plugins ----------------------------------------------------------------------------------


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


# -- catalog ----------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The catalog's schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the catalog, or upgrade it to this monalia's schema."""
    from monalia.catalog.database import Catalog, safe_url

    url = app.project.catalog_url
    catalog = Catalog.connect(url)
    before = catalog.schema_status()
    catalog.upgrade()
    after = catalog.schema_status()
    if before.current == after.current:
        click.echo(f"catalog {safe_url(url)} is at schema {after.current}, nothing to do")
    else:
        click.echo(f"catalog {safe_url(url)}: schema {before.current or 'none'} -> {after.current}")


@db.command("status")
@pass_app
def db_status(app: App) -> None:
    """Show the catalog's schema revision and this monalia's."""
    from monalia.catalog.database import Catalog, safe_url

    catalog = Catalog.connect(app.project.catalog_url)
    status = catalog.schema_status()
    click.echo(f"catalog:  {safe_url(app.project.catalog_url)}")
    click.echo(f"schema:   {status.current or 'none'}")
    click.echo(f"monalia:  {status.head}")
    if not status.up_to_date:
        click.echo(catalog.describe_mismatch(status))
