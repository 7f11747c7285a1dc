"""``monalia users``: who may log in to the workbench off loopback."""

from __future__ import annotations

import sys

import click

from monalia.cli.app import App, cli, pass_app
from monalia.cli.serve import users_file
from monalia.errors import ConfigError


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


@users.command("remove")
@click.argument("name")
@pass_app
def users_remove(app: App, name: str) -> None:
    """Remove NAME: a running workbench ends their sessions at their next request."""
    from monalia.web.passwords import remove_user

    path = users_file(app)
    if not remove_user(path, name):
        raise ConfigError(f"no user {name!r} in {path}")
    click.echo(f"removed {name} from {path}")
