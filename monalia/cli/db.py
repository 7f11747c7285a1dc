"""``monalia db``: the catalog's schema."""

from __future__ import annotations

import click

from monalia.cli.app import (
    App,
    cli,
    pass_app,
)


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
