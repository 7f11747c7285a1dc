"""`monalia runs`: what ran, how it ended, what failed."""

from __future__ import annotations

import json

import click

from monalia.cli.app import (
    App,
    cli,
    pass_app,
)
from monalia.errors import MonaliaError

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
    from monalia.catalog.reader import CatalogReader
    from monalia.progress import summary_table

    app: App = ctx.obj
    reader = app.reader
    if isinstance(reader, CatalogReader):
        found = reader.runs(stage, status, limit)
    else:
        found = _runs_of_catalog(reader, stage, status, limit)
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
        for r in found
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


def _runs_of_catalog(catalog, stage: str | None, status: str | None, limit: int) -> list:
    from sqlalchemy import select

    from monalia.catalog.models import RunRow

    query = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
    if stage:
        query = query.where(RunRow.stage == stage)
    if status:
        query = query.where(RunRow.status == status)
    with catalog.session() as session:
        rows = session.scalars(query).all()
        session.expunge_all()
        return rows


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
