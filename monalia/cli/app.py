"""What every command shares: the application object, the root group, shared helpers.

Heavy libraries are imported inside the commands that need them, so ``monalia --help`` is quick.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar

import click

from monalia import __version__
from monalia.errors import ConfigError, MonaliaError

DEBUG_ENV = "MONALIA_DEBUG"
# `--format` of the commands that print data: a table for people, CSV and JSON for scripts
FORMATS = click.Choice(["table", "csv", "json"])


class App:
    """What the commands share: the project file, the catalog, the plugins."""

    def __init__(self, project_path: str | None, quiet: bool, task: str | None = None):
        self.project_path = project_path
        self.quiet = quiet
        self.task = task  # `--task`: the learning task of [tasks] the command works on

    @cached_property
    def registry(self):
        from monalia.api.registry import default_registry

        return default_registry()

    @cached_property
    def project(self):
        from monalia.project import find_project_file, load_project

        project = load_project(find_project_file(self.project_path), self.registry)
        return project.for_task(self.task) if self.task else project

    @cached_property
    def reader(self):
        """The catalog for reading: without SQLAlchemy where the catalog allows it (see
        `monalia.catalog.reader`), else the catalog itself."""
        from monalia.catalog.reader import CatalogReader
        from monalia.project_toml import catalog_url_of, find_project_file

        if "catalog" in self.__dict__:
            return self.catalog
        if "project" in self.__dict__:
            url = self.project.catalog_url
        else:
            url = catalog_url_of(find_project_file(self.project_path))
        reader = CatalogReader.open(url) if url is not None else None
        return reader if reader is not None else self.catalog

    @property
    def hooks(self):
        return self.registry.hook

    @cached_property
    def catalog(self):
        from monalia.catalog.database import Catalog
        from monalia.catalog.run_tracking import mark_interrupted_runs

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


GLOBAL_FLAGS = ("-q", "--quiet")
GLOBAL_VALUES = ("-p", "--project", "--task")


def hoist_global_options(args: list[str]) -> list[str]:
    """``--project PATH`` and ``-q`` anywhere on the line, as the command reference promises (``monalia
    harvest --project x``): moved in front of the command, where the root group reads them.
    Arguments after ``--`` are left alone."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg in GLOBAL_VALUES and index + 1 < len(args):
            front.extend(args[index : index + 2])
            index += 1
        elif arg.startswith(("--project=", "--task=")):
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


class MonaliaGroup(click.Group):
    """Turns unexpected exceptions into one line (the traceback with MONALIA_DEBUG=1), and
    imports a command's module only when the command is asked for (`lazy_commands`: command
    name -> the module that registers it), so a command loads what it uses and no other's."""

    lazy_commands: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy_commands:
            # the import statement's path (not importlib's): `-X importtime` reports it
            __import__(self.lazy_commands[name])
        return self.commands.get(name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def invoke(self, ctx: click.Context) -> Any:
        from monalia.net.url_policy import mask_urls_in_text

        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = mask_urls_in_text(exc.message)  # no URL's password on the terminal
            raise
        except (click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            raise  # the reader went away (`| head`): main() ends quietly
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            from monalia.catalog.database import database_error_line
            from monalia.errors import CatalogError

            line = database_error_line(exc)
            if line is not None:  # the catalog busy or gone: what happened, what to do
                raise CatalogError(mask_urls_in_text(line)) from exc
            raise MonaliaError(
                mask_urls_in_text(
                    f"{type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 to see the traceback)"
                )
            ) from exc


pass_app = click.make_pass_decorator(App)


def csv_value(value) -> str:
    """A JSON field as one CSV cell: lists joined with "; ", booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "; ".join(csv_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def write_csv(entries: list[dict], fields: list[str]) -> None:
    """Entries as CSV on stdout, one column per JSON field, in the JSON's names."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([csv_value(entry.get(name)) for name in fields] for entry in entries)


def terminate_gracefully() -> None:
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
@click.option(
    "--task",
    metavar="NAME",
    help="The learning task (a [tasks.NAME] table) that label, train, enrich, evaluate, report, "
    "search, serve and publish work on. Default: the project's only task.",
)
@click.version_option(__version__, prog_name="monalia")
@click.pass_context
def cli(ctx: click.Context, project_path: str | None, quiet: bool, task: str | None) -> None:
    """monalia: harvest museum collections, learn what their images show, publish it as RDF."""
    from monalia import masking

    masking.install_log_masking()  # configured secrets never reach a log line
    ctx.obj = App(project_path, quiet, task)


# -- stages -----------------------------------------------------------------------------------


def print_runs_summary(
    title: str, runs: list, app: App | None = None, to_stderr: bool = False
) -> None:
    """The runs' table and what each says; on stderr when stdout carries data (`--format
    json`), so that what a script reads is the data alone."""
    import sys

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
        sys.stderr if to_stderr else None,
    )
    for run in runs:
        if run.message:
            click.echo(f"run {run.id}: {run.message}", err=to_stderr)
        if getattr(run, "warnings", 0):
            click.echo(
                f"run {run.id}: {run.warnings} warning(s), nothing lost; "
                f"`monalia runs show {run.id}` lists them",
                err=to_stderr,
            )
        if run.counts["failed"] and app is not None:
            with app.catalog.session() as session:
                events = session.scalars(
                    select(RunEventRow)
                    .where(RunEventRow.run_id == run.id, RunEventRow.level == "error")
                    .order_by(RunEventRow.id)
                    .limit(3)
                ).all()
            for event in events:
                click.echo(
                    f"run {run.id}: failed {event.item or ''}: {event.message}", err=to_stderr
                )
            click.echo(
                f"run {run.id}: {run.counts['failed']} item(s) failed and were skipped; "
                f"all of them: `monalia runs show {run.id}`",
                err=to_stderr,
            )


def selected_instances(kind: str, configured: dict, names: tuple[str, ...]) -> list:
    if not configured:
        raise ConfigError(f"the project file configures no {kind}s")
    for name in names:
        if name not in configured:
            raise ConfigError(
                f"no {kind} named {name!r} in the project file (configured: {', '.join(configured)})"
            )
    return [configured[name] for name in (names or configured)]


# The runner of each declared stage (`monalia.stages.pipeline`), as `monalia run` calls it: the
# project's defaults, no command-line options. Each command module registers its own
# (`stage_runners` imports them).
STAGE_RUNNERS: dict[str, Callable[[App], list]] = {}
STAGE_MODULES = ("monalia.cli.images", "monalia.cli.train", "monalia.cli.enrich")


def stage_runners() -> dict[str, Callable[[App], list]]:
    """Every declared stage's runner, the command modules that register them imported."""
    import importlib

    for module in STAGE_MODULES:
        importlib.import_module(module)
    return STAGE_RUNNERS


def runs_stage(name: str) -> Callable[[Callable[[App], list]], Callable[[App], list]]:
    """Register the decorated function as the runner of the declared stage `name`."""
    from monalia.stages.pipeline import STAGE_NAMES

    if name not in STAGE_NAMES:
        raise ValueError(f"{name!r} is not a declared stage ({', '.join(STAGE_NAMES)})")

    def register(runner: Callable[[App], list]) -> Callable[[App], list]:
        STAGE_RUNNERS[name] = runner
        return runner

    return register


def run_harvest_stage(
    app: App, names: tuple[str, ...], limit: int | None, since: str | None, restart: bool
) -> list:
    from monalia.stages.harvest import HarvestOptions
    from monalia.stages.harvest.head_start import start_ahead

    selected = selected_instances("source", app.project.sources, names)
    section = app.project.file.harvest
    options = HarvestOptions(
        limit=limit,
        since=since,
        restart=restart,
        commit_records=section.commit_records,
        commit_seconds=section.commit_seconds,
        parse_in_worker=section.parse_in_worker,
        parse_processes=section.parse_processes,
    )
    # the first source is read from before the catalog is opened, which takes a fresh
    # command's first half second (see `head_start`)
    head = None
    if selected and "catalog" not in vars(app):
        head = start_ahead(app.project.catalog_url, selected[0], app.hooks, options)
    try:
        from monalia.catalog.run_tracking import CatalogBusy, exception_message
        from monalia.stages.harvest import harvest

        catalog = app.catalog
        runs = []
        # every source is harvested even when one fails: its run says why, and the command's
        # exit status (see `harvest_failed`) says that one did
        for index, configured in enumerate(selected):
            before = last_run_id(catalog)
            try:
                with app.progress(f"harvest {configured.instance}", "records") as progress:
                    started = head if index == 0 else None
                    runs.append(harvest(catalog, configured, app.hooks, options, progress, started))
            except CatalogBusy:
                raise  # the same source is being harvested: this command stops, in one line
            except Exception as exc:
                runs.append(failed_run(catalog, before, configured, exception_message(exc)))
        return runs
    finally:
        if head is not None:  # ended by its harvest already, unless that never ran
            head.end()


def last_run_id(catalog) -> int:
    from sqlalchemy import func, select

    from monalia.catalog.models import RunRow

    with catalog.session() as session:
        return session.scalar(select(func.max(RunRow.id))) or 0


def failed_run(catalog, after: int, configured, message: str):
    """The run a failed harvest recorded, or one recorded now when it failed before it could."""
    from sqlalchemy import select

    from monalia.catalog.models import RunRow
    from monalia.catalog.run_tracking import FAILED, RunTracker, load_run

    with catalog.session() as session:
        run_id = session.scalar(
            select(RunRow.id)
            .where(
                RunRow.id > after,
                RunRow.stage == "harvest",
                RunRow.target == configured.instance,
            )
            .order_by(RunRow.id.desc())
            .limit(1)
        )
    if run_id is not None:
        run = load_run(catalog, run_id)
        if run.status == "running":  # its end could not be recorded (the catalog failed)
            run.status, run.message = FAILED, message
        return run
    tracker = RunTracker(catalog, "harvest", configured.info.name, configured.instance).start()
    return tracker.finish(FAILED, message)


def harvest_failed(runs: list) -> None:
    """Exit non-zero, after every source ran, when one of them did not finish."""
    failed = [run for run in runs if run.status != "done"]
    if len(runs) == 1 and failed:
        raise MonaliaError(failed[0].message or f"the harvest {failed[0].status}")
    if failed:
        raise MonaliaError(
            f"{len(failed)} of {len(runs)} sources did not finish: "
            + "; ".join(f"{run.target} {run.status}: {run.message}" for run in failed)
        )


def run_publish_stage(app: App, sinks: tuple[str, ...], sources: tuple[str, ...]) -> list:
    from monalia.stages.publish import (
        catalog_sources,
        enriched_mentions,
        publish_records,
        queried_by_reports,
    )

    selected = selected_instances("sink", app.project.sinks, sinks)
    catalog = app.catalog
    available = catalog_sources(catalog)
    for name in sources:
        if name not in available:
            raise ConfigError(
                f"the catalog holds no records of source {name!r} (it has: {', '.join(available) or 'none'})"
            )
    runs = []
    mentions = None  # the mention index of each enriched model, rewritten with the records
    for configured in selected:
        if not configured.info.cls.takes_triples:  # annotations: not the records
            runs.extend(publish_annotations(app, configured))
            continue
        if mentions is None:
            mentions = enriched_mentions(catalog, app.project)
        with app.progress(f"publish to {configured.instance}", "triples") as progress:
            runs.append(
                publish_records(
                    catalog,
                    configured,
                    list(sources) or None,
                    app.hooks,
                    progress,
                    mentions if queried_by_reports(configured) else None,
                )
            )
    return runs


def publish_annotations(app: App, configured) -> list:
    """An annotation sink's share of `monalia publish`: the model's detections (the project's
    [enrich] model, when it has scores), the near duplicates and the curators' decisions."""
    from monalia.catalog.lookups import find_model
    from monalia.classes import project_mentions
    from monalia.stages.annotations import class_labels, publish_curation_annotations
    from monalia.stages.enrich.publishing import count_scored_images, publish_model

    runs = []
    catalog, project = app.catalog, app.project
    try:
        model = find_model(catalog, project.file.enrich.model, project.model_dataset)
    except MonaliaError:
        model = None  # no model yet: links and reviews only
    if model is not None and count_scored_images(catalog, model.id):
        from monalia.rdf.class_context import project_class_context

        context = project_class_context(project, [entry["uri"] for entry in model.classes])
        with app.progress(f"publish {model.name} to {configured.instance}", "images") as progress:
            runs.append(
                publish_model(
                    catalog,
                    configured,
                    model,
                    project.file.enrich.min_score,
                    app.hooks,
                    progress,
                    project_mentions(catalog, project, model),
                    class_labels(model, context),
                    context,
                )
            )
    runs.append(publish_curation_annotations(catalog, configured, app.hooks))
    return runs


@runs_stage("harvest")
def run_harvest_stage_defaults(app: App) -> list:
    """The harvest stage of `monalia run`: every source, where the last run stopped."""
    return run_harvest_stage(app, (), None, None, False)


@runs_stage("publish")
def run_publish_stage_defaults(app: App) -> list:
    """The publish stage of `monalia run`: every source's records to every sink."""
    return run_publish_stage(app, (), ())


@runs_stage("label")
def run_label_stage(app: App) -> list:
    from monalia.stages.label import label_records

    with app.progress("label", "records") as progress:
        outcome = label_records(app.catalog, app.project, app.hooks, progress)
    return [outcome.run]
