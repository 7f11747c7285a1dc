"""The workbench's guard: a login for every page but the login page when one is required, and
security headers on every answer (a Content-Security-Policy that allows only this site's own
scripts, no framing, no sniffing)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse

from monalia.web.site import Site

OPEN_PATHS = ("/login", "/static/")
CSP = (
    "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class Guard:
    """ASGI middleware: login first where it is required; security headers always."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        site = Site.of(request)
        needs_login = site.settings.login_required and not scope["path"].startswith(OPEN_PATHS)
        if needs_login and site.user_of(request) is None:
            if request.method == "GET":
                response = RedirectResponse("/login", 303)
            else:
                response = JSONResponse({"ok": False, "error": "log in first"}, 401)
            return await response(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(HEADERS)
            await send(message)

        return await self.app(scope, receive, with_headers)
