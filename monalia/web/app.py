"""The curators' workbench: a Starlette application over a `Workbench` (`monalia serve`).

Pages are Jinja templates (``monalia/templates/workbench``) with autoescaping and one script file
(no inline script, so the Content-Security-Policy allows only this site's own). Every write is a
POST carrying the session's CSRF token from one of its own pages (Origin checked); only the Host
names it was bound to are answered (DNS rebinding); sessions are the server's, ended by logout,
by the user's removal and at a fixed time after login (`web.sessions`); bound to another address
than loopback, every page needs a login (users file or $MONALIA_SERVE_TOKEN); read-only, there
are no writes at all. Errors reach the browser as a short page, never as a stack trace: the
server's log has the details.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from monalia.web.error_pages import http_error, server_error
from monalia.web.pages import classes, curation, decisions, findings, images, login, records
from monalia.web.security import Guard
from monalia.web.site import Settings, Site
from monalia.web.workbench import Workbench

__all__ = ["Settings", "create_app"]

MAX_BODY_BYTES = 1_000_000  # decisions and comments are small


def create_app(workbench: Workbench, settings: Settings) -> Starlette:
    """The workbench's web application."""
    routes = [
        *classes.ROUTES,
        *findings.ROUTES,
        *records.ROUTES,
        *images.ROUTES,
        *decisions.ROUTES,
        *curation.ROUTES,
        *login.ROUTES,
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.site = Site(workbench, settings)
    return app
