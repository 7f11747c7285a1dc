"""The workbench's guard: only the Host names it serves (no DNS rebinding), writes only from
its own pages (Origin checked), a login for every page but the login page when one is
required, and security headers on every answer, errors and redirects included (a
Content-Security-Policy that allows only this site's own scripts, no framing, no sniffing)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse

from monalia.web.site import Site, host_name

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
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def header_dict() -> dict[str, str]:
    """The security headers, for answers made outside the guard (the 500 page)."""
    return {name.decode(): value.decode() for name, value in HEADERS}


def same_origin(request: Request) -> bool:
    """Whether a write comes from this site's own pages: its Origin (or, without one, its
    Referer) names the host the request was sent to. A request with neither is a script's
    (curl, a bearer token); it still needs the session's CSRF token."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    if source == "null":
        return False
    scheme, _, rest = source.partition("://")
    if scheme not in ("http", "https") or not rest:
        return False
    netloc = rest.split("/", 1)[0].rsplit("@", 1)[-1].lower()
    return netloc == request.headers.get("host", "").lower() and bool(host_name(netloc))


class Guard:
    """ASGI middleware: Host and Origin first, then login where it is required; security
    headers always."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(HEADERS)
            await send(message)

        request = Request(scope, receive)
        site = Site.of(request)
        response = None
        if not site.hosts.allows(request.headers.get("host")):
            response = PlainTextResponse(
                "this workbench does not answer to that host name (see --allowed-host)", 400
            )
        elif request.method not in SAFE_METHODS and not same_origin(request):
            response = JSONResponse({"ok": False, "error": "a write from another site"}, 403)
        elif (
            site.settings.login_required
            and not scope["path"].startswith(OPEN_PATHS)
            and site.user_of(request) is None
        ):
            if request.method == "GET":
                response = RedirectResponse("/login", 303)
            else:
                response = JSONResponse({"ok": False, "error": "log in first"}, 401)
            site.with_cookie(request, response)  # a session that ended on the way is cleared
        if response is not None:
            return await response(scope, receive, with_headers)
        return await self.app(scope, receive, with_headers)
