"""``monalia init`` and ``monalia check``: write a starter project file, and validate one."""

from __future__ import annotations

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
