"""The ``monalia`` command line: stage commands wired to the plugins named in the project file.

Heavy libraries are imported inside the commands that need them, so ``monalia --help`` is quick.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from monalia import __version__
from monalia.errors import ConfigError, MonaliaError

DEBUG_ENV = "MONALIA_DEBUG"


class App:
    """What the commands share: the project file, the catalog, the plugins."""

    def __init__(self, project_path: str | None, quiet: bool):
        self.project_path = project_path
        self.quiet = quiet

    @cached_property
    def registry(self):
        from monalia.plugins import default_registry

        return default_registry()

    @cached_property
    def project(self):
        from monalia.config import find_project_file, load_project

        return load_project(find_project_file(self.project_path), self.registry)

    @property
    def hooks(self):
        return self.registry.pm.hook

    @cached_property
    def catalog(self):
        from monalia.catalog import Catalog
        from monalia.pipeline.runs import mark_interrupted_runs

        catalog = Catalog.open(self.project.catalog_url)
        for run_id in mark_interrupted_runs(catalog):
            self.say(f"run {run_id} was interrupted (its process is gone); marked interrupted")
        return catalog

    def say(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def progress(self, label: str, unit: str):
        from monalia.progress import Progress

        return Progress(label, unit=unit, enabled=not self.quiet)


class MonaliaGroup(click.Group):
    """Turns unexpected exceptions into one line (the traceback with MONALIA_DEBUG=1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise MonaliaError(
                f"{type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 to see the traceback)"
            ) from exc


pass_app = click.make_pass_decorator(App)


def _terminate_gracefully() -> None:
    # SIGTERM ends a stage like Ctrl-C does, so its run is recorded as interrupted.
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@click.group(cls=MonaliaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-p",
    "--project",
    "project_path",
    metavar="PATH",
    envvar="MONALIA_PROJECT",
    help="Project file (or its folder). Default: ./monalia.toml, or $MONALIA_PROJECT.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress, only results and errors.")
@click.version_option(__version__, prog_name="monalia")
@click.pass_context
def cli(ctx: click.Context, project_path: str | None, quiet: bool) -> None:
    """monalia: harvest museum collections, learn what their images show, publish it as RDF."""
    ctx.obj = App(project_path, quiet)


# -- project ----------------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), default="monalia.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter project file (default ./monalia.toml)."""
    from monalia.config import PROJECT_FILE, starter_file

    if path.is_dir():
        path = path / PROJECT_FILE
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_file(), encoding="utf-8")
    click.echo(f"wrote {path}: edit its sources and sinks, then run `monalia check`")


@cli.command()
@pass_app
def check(app: App) -> None:
    """Validate the project file, its plugins and the catalog."""
    from monalia.catalog import Catalog, safe_url

    project = app.project
    click.echo(f"project file {project.path}: valid")
    for kind, instances in (("source", project.sources), ("sink", project.sinks)):
        for name, configured in instances.items():
            click.echo(
                f"  {kind} {name}: plugin {configured.info.name} from {configured.info.origin.package}"
            )
    for configured in (project.labeler, project.trainer):
        if configured is not None:
            click.echo(f"  {configured.kind}: plugin {configured.info.name}")
    catalog = Catalog.connect(project.catalog_url)
    status = catalog.schema_status()
    if status.up_to_date:
        click.echo(f"catalog {safe_url(project.catalog_url)}: schema {status.current} (current)")
    elif status.empty:
        click.echo(f"catalog {safe_url(project.catalog_url)}: new; it is created on first use")
    else:
        raise MonaliaError(catalog.describe_mismatch(status))


# -- plugins ----------------------------------------------------------------------------------


@cli.command("plugins")
@click.option(
    "--kind", type=click.Choice(["source", "labeler", "trainer", "sink"]), help="Only this kind."
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
    from monalia.catalog import Catalog, safe_url

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
    from monalia.catalog import Catalog, safe_url

    catalog = Catalog.connect(app.project.catalog_url)
    status = catalog.schema_status()
    click.echo(f"catalog:  {safe_url(app.project.catalog_url)}")
    click.echo(f"schema:   {status.current or 'none'}")
    click.echo(f"monalia:  {status.head}")
    if not status.up_to_date:
        click.echo(catalog.describe_mismatch(status))


# -- stages -----------------------------------------------------------------------------------


def _print_runs_summary(title: str, runs: list, app: App | None = None) -> None:
    from sqlalchemy import select

    from monalia.catalog.models import RunEventRow
    from monalia.progress import summary_table

    rows = []
    for run in runs:
        seconds = (run.ended_at - run.started_at).total_seconds() if run.ended_at else 0
        counts = run.counts
        rate = f"{counts['seen'] / seconds:,.0f}/s" if seconds > 0 else ""
        rows.append(
            (
                run.id,
                run.target,
                run.plugin,
                run.status,
                counts["seen"],
                counts["new"],
                counts["changed"],
                counts["unchanged"],
                counts["failed"],
                f"{seconds:.1f}s",
                rate,
            )
        )
    summary_table(
        title,
        [
            "run",
            "target",
            "plugin",
            "status",
            "seen",
            "new",
            "changed",
            "unchanged",
            "failed",
            "time",
            "rate",
        ],
        rows,
    )
    for run in runs:
        if run.message:
            click.echo(f"run {run.id}: {run.message}")
        if run.counts["failed"] and app is not None:
            with app.catalog.session() as session:
                events = session.scalars(
                    select(RunEventRow)
                    .where(RunEventRow.run_id == run.id)
                    .order_by(RunEventRow.id)
                    .limit(3)
                ).all()
            for event in events:
                click.echo(f"run {run.id}: failed {event.item or ''}: {event.message}")
            click.echo(
                f"run {run.id}: {run.counts['failed']} item(s) failed and were skipped; "
                f"all of them: `monalia runs show {run.id}`"
            )


def _selected(kind: str, configured: dict, names: tuple[str, ...]) -> list:
    if not configured:
        raise ConfigError(f"the project file configures no {kind}s")
    for name in names:
        if name not in configured:
            raise ConfigError(
                f"no {kind} named {name!r} in the project file (configured: {', '.join(configured)})"
            )
    return [configured[name] for name in (names or configured)]


def _run_harvest(
    app: App, names: tuple[str, ...], limit: int | None, since: str | None, restart: bool
) -> list:
    from monalia.pipeline.harvest import HarvestOptions, harvest

    selected = _selected("source", app.project.sources, names)
    catalog = app.catalog
    options = HarvestOptions(limit=limit, since=since, restart=restart)
    runs = []
    for configured in selected:
        with app.progress(f"harvest {configured.instance}", "records") as progress:
            runs.append(harvest(catalog, configured, app.hooks, options, progress))
    return runs


@cli.command()
@click.argument("sources", nargs=-1)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Stop after this many records (the next run goes on).",
)
@click.option(
    "--since", metavar="DATE", help="Only records changed after DATE, where the source can tell."
)
@click.option(
    "--restart", is_flag=True, help="Forget where the last run stopped and read everything."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and check everything, count new/changed/unchanged/failed, write nothing.",
)
@pass_app
def harvest(
    app: App,
    sources: tuple[str, ...],
    limit: int | None,
    since: str | None,
    restart: bool,
    dry_run: bool,
) -> None:
    """Harvest records from the project's sources (all of them, or those named)."""
    _terminate_gracefully()
    if dry_run:
        _dry_run_harvest(app, sources, limit, since, restart)
        return
    runs = _run_harvest(app, sources, limit, since, restart)
    _print_runs_summary("harvest", runs, app)


def _dry_run_harvest(
    app: App, names: tuple[str, ...], limit: int | None, since: str | None, restart: bool
) -> None:
    from monalia.pipeline.harvest import HarvestOptions, dry_run

    options = HarvestOptions(limit=limit, since=since, restart=restart)
    for configured in _selected("source", app.project.sources, names):
        with app.progress(f"dry run {configured.instance}", "records") as progress:
            result = dry_run(app.catalog, configured, options, progress)
        counts = result["counts"]
        for item, message in result["failures"]:
            click.echo(f"{configured.instance}: would skip {item}: {message}")
        click.echo(
            f"{configured.instance} (dry run, nothing written): {counts['seen']} read, "
            f"{counts['new']} new, {counts['changed']} changed, "
            f"{counts['unchanged']} unchanged, {counts['failed']} failed"
        )


def _run_publish(app: App, sinks: tuple[str, ...], sources: tuple[str, ...]) -> list:
    from monalia.pipeline.publish import catalog_sources, publish_records

    selected = _selected("sink", app.project.sinks, sinks)
    catalog = app.catalog
    available = catalog_sources(catalog)
    for name in sources:
        if name not in available:
            raise ConfigError(
                f"the catalog holds no records of source {name!r} (it has: {', '.join(available) or 'none'})"
            )
    runs = []
    for configured in selected:
        with app.progress(f"publish to {configured.instance}", "triples") as progress:
            runs.append(
                publish_records(catalog, configured, list(sources) or None, app.hooks, progress)
            )
    return runs


@cli.command()
@click.option("--sink", "sinks", multiple=True, help="Only this sink (repeatable).")
@click.option("--source", "sources", multiple=True, help="Only this source's records (repeatable).")
@pass_app
def publish(app: App, sinks: tuple[str, ...], sources: tuple[str, ...]) -> None:
    """Publish the catalog's records as RDF to the project's sinks."""
    _terminate_gracefully()
    runs = _run_publish(app, sinks, sources)
    _print_runs_summary("publish", runs, app)


@cli.command("run")
@pass_app
def run_pipeline(app: App) -> None:
    """Run the stages listed under [pipeline] in the project file, in order."""
    _terminate_gracefully()
    available = {
        "harvest": lambda: _run_harvest(app, (), None, None, False),
        "images": lambda: cli_images.run_images_stage(app),
        "label": lambda: _run_label(app),
        "train": lambda: cli_train.run_train_stage(app),
        "enrich": lambda: cli_enrich.run_enrich_stage(app),
        "publish": lambda: _run_publish(app, (), ()),
    }
    stages = app.project.model.pipeline.stages
    missing = [stage for stage in stages if stage not in available]
    if missing:
        raise ConfigError(
            f"[pipeline] stages {missing} are not available in monalia {__version__} "
            f"(available: {', '.join(available)})"
        )
    runs = []
    for stage in stages:
        stage_runs = available[stage]()
        runs.extend(stage_runs)
        if any(run.status != "done" for run in stage_runs):
            break
    _print_runs_summary("pipeline", runs, app)
    if any(run.status != "done" for run in runs):
        raise MonaliaError("the pipeline stopped: a stage did not finish")


# -- runs -------------------------------------------------------------------------------------


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


@cli.group(invoke_without_command=True)
@click.option("--stage", help="Only runs of this stage.")
@click.option("--status", type=click.Choice(["running", "done", "failed", "interrupted"]))
@click.option("-n", "--limit", default=20, show_default=True, help="How many, newest first.")
@click.pass_context
def runs(ctx: click.Context, stage: str | None, status: str | None, limit: int) -> None:
    """List stage runs (newest first); `monalia runs show ID` details one."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlalchemy import select

    from monalia.catalog.models import RunRow
    from monalia.progress import summary_table

    app: App = ctx.obj
    query = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
    if stage:
        query = query.where(RunRow.stage == stage)
    if status:
        query = query.where(RunRow.status == status)
    with app.catalog.session() as session:
        rows = [
            (
                r.id,
                r.stage,
                r.plugin,
                r.target,
                r.status,
                _when(r.started_at),
                f"{(r.ended_at - r.started_at).total_seconds():.1f}s" if r.ended_at else "",
                r.seen,
                r.new,
                r.changed,
                r.unchanged,
                r.failed,
            )
            for r in session.scalars(query)
        ]
    summary_table(
        "runs (UTC)",
        [
            "run",
            "stage",
            "plugin",
            "target",
            "status",
            "started",
            "time",
            "seen",
            "new",
            "changed",
            "unchanged",
            "failed",
        ],
        rows,
    )


@runs.command("show")
@click.argument("run_id", type=int)
@click.option(
    "--events", "max_events", default=50, show_default=True, help="How many events to show."
)
@pass_app
def runs_show(app: App, run_id: int, max_events: int) -> None:
    """Show one run: settings, counts, and the items that failed."""
    from sqlalchemy import func, select

    from monalia.catalog.models import RunEventRow, RunRow

    with app.catalog.session() as session:
        run = session.get(RunRow, run_id)
        if run is None:
            raise MonaliaError(f"no run {run_id} in the catalog")
        click.echo(f"run {run.id}: {run.stage} {run.target or ''} ({run.plugin or '-'})")
        click.echo(f"status:   {run.status}")
        click.echo(f"started:  {_when(run.started_at)} UTC on {run.host}, pid {run.pid}")
        click.echo(f"ended:    {_when(run.ended_at) or '-'}")
        click.echo(
            f"counts:   seen {run.seen}, new {run.new}, changed {run.changed}, "
            f"unchanged {run.unchanged}, failed {run.failed}"
        )
        if run.message:
            click.echo(f"message:  {run.message}")
        click.echo("settings: " + json.dumps(run.settings, ensure_ascii=False, sort_keys=True))
        total = session.scalar(select(func.count()).where(RunEventRow.run_id == run.id)) or 0
        events = session.scalars(
            select(RunEventRow)
            .where(RunEventRow.run_id == run.id)
            .order_by(RunEventRow.id)
            .limit(max_events)
        ).all()
        if events:
            click.echo(f"events ({total}):")
            for event in events:
                item = f" [{event.item}]" if event.item else ""
                click.echo(f"  {_when(event.at)} {event.level}{item}: {event.message}")
            if total > len(events):
                click.echo(f"  ... {total - len(events)} more (--events N)")


def _run_label(app: App) -> list:
    from monalia.pipeline.label import label_records

    with app.progress("label", "records") as progress:
        outcome = label_records(app.catalog, app.project, app.hooks, progress)
    return [outcome.run]


def main() -> None:
    """Entry point of the ``monalia`` console script."""
    cli(prog_name="monalia")


from monalia import (  # noqa: E402, F401
    cli_demo,
    cli_enrich,
    cli_images,
    cli_label,
    cli_report,
    cli_train,
)

if __name__ == "__main__":  # pragma: no cover
    # run as `python -m monalia.cli`: commands are registered on the imported module's group
    from monalia.cli import main as imported_main

    sys.exit(imported_main())
