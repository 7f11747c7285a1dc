"""The ``serve``, ``users`` and ``review`` commands: the curators' workbench and its decisions.

It registers on the ``monalia`` group when `monalia.cli` is imported.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import sys
import threading

import click

from monalia.cli.app import App, cli, pass_app
from monalia.errors import ConfigError

SECRET_ENV = "MONALIA_SERVE_SECRET"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def users_file(app: App):
    from monalia.project_toml import resolve_path

    return resolve_path(app.project.dir, app.project.file.serve.users_file)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--read-only", is_flag=True, help="Serve the pages without any writes.")
@click.option("--model", "model_ref", help="Model name or its start (default: as the reports).")
@click.option(
    "--store", help="Sink, endpoint, folder or RDF file to query (default: as the reports)."
)
@click.option(
    "--method",
    type=click.Choice(["confident", "threshold"]),
    help="How noise and silence are found (default: [report] method).",
)
@click.option(
    "--reviewer",
    help="Who the decisions are from, on loopback without login (default: the system user).",
)
@pass_app
def serve(app: App, host, port, read_only, model_ref, store, method, reviewer) -> None:
    """The curators' workbench: findings to review in a browser, records with heat maps.

    Binds to 127.0.0.1 by default, where no login is asked. Bound to any other address, every
    page needs a login: users from `monalia users add`, or the token in $MONALIA_SERVE_TOKEN.
    """
    import logging

    import uvicorn

    from monalia.web.app import Settings, create_app
    from monalia.web.passwords import TOKEN_ENV, read_users
    from monalia.web.workbench import Workbench

    login = not is_loopback(host)
    users = users_file(app)
    if login and not read_users(users) and not os.environ.get(TOKEN_ENV):
        raise ConfigError(
            f"bound to {host}, the workbench needs a login: add a user with "
            f"`monalia users add NAME` (into {users}) or set ${TOKEN_ENV}"
        )
    workbench = Workbench(app.catalog, app.project, model_ref, store, method)
    if workbench.setup.note:
        app.say(workbench.setup.note)
    settings = Settings(
        reviewer=reviewer or getpass.getuser(),
        login_required=login,
        read_only=read_only,
        users_file=users,
    )
    application = create_app(workbench, settings, os.environ.get(SECRET_ENV))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app.say(f"findings of model {workbench.model.name} ({workbench.setup.method})…")
    workbench.warm()
    # the model loads while the curator opens the first page, not when the first heat map is
    # asked for
    threading.Thread(target=workbench.can_explain, name="load-model", daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"workbench on http://{shown}:{port}/"
        + (" (read-only)" if read_only else "")
        + (" (login required)" if login else f" (reviewer {settings.reviewer})")
        + "; Ctrl-C stops it",
        err=True,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


@cli.group()
def users() -> None:
    """Who may log in to the workbench when it is bound to another address than loopback."""


@users.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_app
def users_add(app: App, name: str, password_stdin: bool) -> None:
    """Add NAME (or set a new password): the file keeps only a scrypt hash."""
    from monalia.web.passwords import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    path = users_file(app)
    try:
        new = add_user(path, name, password)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    click.echo(f"{'added' if new else 'changed the password of'} {name} in {path}")


@users.command("list")
@pass_app
def users_list(app: App) -> None:
    """The workbench's users (names only)."""
    from monalia.web.passwords import read_users

    for name in sorted(read_users(users_file(app))):
        click.echo(name)


@cli.group()
def review() -> None:
    """The curators' decisions as data: changes to apply, a PROV-O curation graph."""


@review.command("export")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "json", "rdf"]),
    default="csv",
    show_default=True,
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@pass_app
def review_export(app: App, output_format: str, out: str | None) -> None:
    """The changes the decisions call for, per record: field, add or remove, term URI and
    label. As RDF, the curation graph (decisions as prov:Activity, reviewers as prov:Agent)."""
    from monalia.curation.review_export import (
        accepted_changes,
        changes_csv,
        changes_json,
        curation_turtle,
    )

    export = accepted_changes(app.catalog, app.project)
    if output_format == "csv":
        text = changes_csv(export)
    elif output_format == "json":
        text = changes_json(export)
    else:
        text = curation_turtle(export, app.project.file.project.base_iri)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)
    app.say(
        f"{len(export.changes)} changes from {len(export.decisions)} decisions "
        f"({export.confirmed} confirm the metadata as it is)"
    )


@review.command("publish")
@click.option("--sink", "sinks", multiple=True, help="A sink of the project (default: all).")
@pass_app
def review_publish(app: App, sinks: tuple[str, ...]) -> None:
    """Publish the curation graph to the project's sinks, replacing the earlier one."""
    from monalia.curation.review_export import curation_graph_iri, publish_curation

    written = publish_curation(app.catalog, app.project, list(sinks) or None)
    graph = curation_graph_iri(app.project.file.project.base_iri)
    for name, count in written.items():
        click.echo(f"{name}: {count:,} triples in {graph}")
