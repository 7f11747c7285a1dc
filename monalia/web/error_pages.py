"""Errors as the browser sees them: a short page (or JSON for scripts), never a stack trace;
the server's log has the details."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from monalia.errors import MonaliaError
from monalia.web.security import header_dict
from monalia.web.site import Site

log = logging.getLogger("monalia.web")


async def http_error(request: Request, exc: HTTPException) -> Response:
    if request.url.path.startswith(("/decide", "/suggest")) or "application/json" in (
        request.headers.get("accept", "")
    ):
        return JSONResponse({"ok": False, "error": exc.detail}, status_code=exc.status_code)
    return Site.of(request).render(
        request, "error.html", exc.status_code, title="Error", message=exc.detail
    )


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("error on %s", request.url.path)
    message = (
        str(exc)
        if isinstance(exc, MonaliaError)
        else ("Something went wrong on the server; its log says what.")
    )
    return HTMLResponse(
        "<!doctype html><title>Error</title><h1>Error</h1><p>"
        + message.replace("&", "&amp;").replace("<", "&lt;")
        + '</p><p><a href="/">Back to the classes</a></p>',
        status_code=500,
        headers=header_dict(),  # this answer is made outside the guard
    )
