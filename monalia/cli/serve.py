"""``monalia serve``: the curators' workbench in a browser."""

from __future__ import annotations

import getpass
import os
import threading

import click

from monalia.cli.app import App, cli, pass_app
from monalia.errors import ConfigError


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
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Another Host name to answer to (a proxy's public name); repeatable.",
)
@click.option(
    "--secure-cookie",
    is_flag=True,
    help="Mark the session cookie Secure (behind a proxy that serves HTTPS).",
)
@pass_app
def serve(
    app: App,
    host,
    port,
    read_only,
    model_ref,
    store,
    method,
    reviewer,
    allowed_hosts,
    secure_cookie,
) -> None:
    """The curators' workbench: findings to review in a browser, records with heat maps.

    Binds to 127.0.0.1 by default, where no login is asked. Bound to any other address, every
    page needs a login: users from `monalia users add`, or the token in $MONALIA_SERVE_TOKEN
    (at least 32 characters). Only requests naming the bound address (or an --allowed-host) in
    their Host header are answered, so a web page cannot reach the workbench by rebinding a name.
    """
    import logging

    import uvicorn

    from monalia import masking
    from monalia.web.app import Settings, create_app
    from monalia.web.passwords import MIN_TOKEN, TOKEN_ENV, read_users
    from monalia.web.site import is_loopback
    from monalia.web.workbench import Workbench

    login = not is_loopback(host)
    users = users_file(app)
    token = os.environ.get(TOKEN_ENV)
    if token is not None and len(token) < MIN_TOKEN:
        raise ConfigError(
            f"${TOKEN_ENV} has {len(token)} characters; a token has at least {MIN_TOKEN} "
            '(make one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    masking.remember(token)
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
        bound_host=host,
        allowed_hosts=tuple(allowed_hosts),
        secure_cookie=secure_cookie,
    )
    application = create_app(workbench, settings)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app.say(f"findings of model {workbench.model.name} ({workbench.setup.method})…")
    workbench.warm()
    # the model loads while the curator opens the first page, not when the first heat map is
    # asked for
    threading.Thread(target=workbench.can_explain, name="load-model", daemon=True).start()
    # likewise the Map page's data, when the map was computed before (`monalia map`)
    threading.Thread(target=workbench.warm_map, name="warm-map", daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"workbench on http://{shown}:{port}/"
        + (" (read-only)" if read_only else "")
        + (" (login required)" if login else f" (reviewer {settings.reviewer})")
        + "; Ctrl-C stops it",
        err=True,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
