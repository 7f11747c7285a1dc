"""The curators' workbench: a Starlette application over a `Workbench` (`monalia serve`).

Pages are Jinja templates (``monalia/templates/workbench``) with autoescaping and one script file
(no inline script, so the Content-Security-Policy allows only this site's own). Every write is a
POST carrying the session's CSRF token; bound to another address than loopback, every page needs
a login (users file or $MONALIA_SERVE_TOKEN); read-only, there are no writes at all. Errors reach
the browser as a short page, never as a stack trace: the server's log has the details.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from monalia.curation.html_report import report_environment
from monalia.errors import ConfigError, MonaliaError
from monalia.web.passwords import check_password, check_token, read_users
from monalia.web.workbench import LARGE_SIDE, REVIEWED, THUMBNAIL_SIDE, Workbench

log = logging.getLogger("monalia.web")
STATIC = ("workbench.js", "workbench.css")
OPEN_PATHS = ("/login", "/static/")
CSP = (
    "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
KEYS = [
    ("a", "accept: the model is right"),
    ("r", "reject: the metadata is right"),
    ("s", "skip"),
    ("u", "undo"),
    ("j / ↓", "next"),
    ("k / ↑", "previous"),
    ("c", "comment"),
    ("Enter", "open the record"),
]


class Settings:
    def __init__(
        self,
        reviewer: str,
        login_required: bool,
        read_only: bool,
        users_file: Path,
    ):
        self.reviewer = reviewer
        self.login_required = login_required
        self.read_only = read_only
        self.users_file = users_file


def _number(value: str | None, low: float | None = None, high: float | None = None):
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise HTTPException(400, f"not a number: {value[:40]!r}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise HTTPException(400, f"out of range: {number}")
    return number


def create_app(workbench: Workbench, settings: Settings, secret: str | None = None) -> Starlette:
    """The workbench's web application."""
    templates = Jinja2Templates(env=report_environment("templates/workbench"))

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def user_of(request: Request) -> str | None:
        if not settings.login_required:
            return settings.reviewer
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and check_token(header[7:].strip()):
            return "token"
        return request.session.get("user")

    def render(request: Request, name: str, status: int = 200, **values: Any) -> Response:
        context = {
            "csrf": csrf_token(request),
            "user": user_of(request),
            "login_required": settings.login_required,
            "read_only": settings.read_only,
            "model": workbench.model,
            "method": workbench.setup.method,
            "classes": workbench.classes,
            **values,
        }
        return templates.TemplateResponse(request, name, context, status_code=status)

    async def check_csrf(request: Request, form: Any) -> None:
        expected = request.session.get("csrf")
        given = request.headers.get("x-csrf-token") or (form.get("csrf") if form else None)
        if not expected or not given or not hmac.compare_digest(str(given), str(expected)):
            raise HTTPException(403, "the form is stale or did not come from this site: reload")

    # -- pages ----------------------------------------------------------------------------

    async def classes_page(request: Request) -> Response:
        rows = await run_in_threadpool(workbench.summary)
        return render(request, "classes.html", rows=rows, title="Classes")

    async def findings_page(request: Request) -> Response:
        query = request.query_params
        try:
            index = int(query.get("class", "0"))
            cls = workbench.classes[index]
        except (ValueError, IndexError):
            raise HTTPException(404, "no such class") from None
        kind = query.get("kind", "noise")
        if kind not in ("noise", "silence", "search"):
            raise HTTPException(400, "kind is noise, silence or search")
        reviewed = query.get("reviewed", "open")
        if reviewed not in REVIEWED:
            raise HTTPException(400, f"reviewed is one of {', '.join(REVIEWED)}")
        try:
            number = max(1, int(query.get("page", "1")))
        except ValueError:
            raise HTTPException(400, "page is a number") from None
        source = query.get("source") or None
        low, high = _number(query.get("min"), 0, 1), _number(query.get("max"), 0, 1)
        page = await run_in_threadpool(
            workbench.page, cls.uri, kind, number, None, source, low, high, reviewed
        )
        filters = {
            "class": index,
            "kind": kind,
            "reviewed": reviewed,
            "source": source or "",
            "min": query.get("min", ""),
            "max": query.get("max", ""),
        }

        def link(**changes: Any) -> str:
            values = {**filters, **changes}
            return "/findings?" + urlencode({k: v for k, v in values.items() if v != ""})

        return render(
            request,
            "findings.html",
            title=f"{kind.capitalize()}: {cls.label}",
            cls=cls,
            index=index,
            kind=kind,
            page=page,
            filters=filters,
            link=link,
            reviewed_values=REVIEWED,
            sources=workbench.sources(),
            keys=KEYS,
        )

    async def record_page(request: Request) -> Response:
        iri = request.query_params.get("iri", "")
        record = await run_in_threadpool(workbench.record, iri)
        if record is None:
            raise HTTPException(404, "the catalog has no such record")
        focus, kind = None, request.query_params.get("kind")
        if request.query_params.get("class", "").isdigit():
            position = int(request.query_params["class"])
            if 0 <= position < len(workbench.classes):
                focus = position
        if kind not in ("noise", "silence", "search"):
            kind = None
        explains = await run_in_threadpool(workbench.can_explain)
        similar = await run_in_threadpool(workbench.more_like_this, record)
        return render(
            request,
            "record.html",
            similar=similar,
            title=record["title"] or record["iri"],
            record=record,
            focus=focus,
            kind=kind,
            explains=explains,
            keys=KEYS,
        )

    async def duplicates_page(request: Request) -> Response:
        groups = await run_in_threadpool(workbench.duplicate_groups)
        return render(request, "duplicates.html", title="Near duplicates", groups=groups, keys=KEYS)

    async def search_page(request: Request) -> Response:
        term = request.query_params.get("q", "").strip()
        if not term:
            return RedirectResponse("/", 303)
        try:
            cls = workbench.class_of(term)
        except ConfigError as exc:
            found = workbench.suggest(term)
            return render(
                request, "search.html", title="Search", term=term, error=str(exc), suggestions=found
            )
        index = workbench.classes.index(cls)
        return RedirectResponse(f"/findings?class={index}&kind=search&reviewed=all", 303)

    async def suggest(request: Request) -> Response:
        return JSONResponse(workbench.suggest(request.query_params.get("q", "")[:100]))

    # -- images ---------------------------------------------------------------------------

    async def image(request: Request) -> Response:
        image_id = request.path_params["image_id"]
        side = THUMBNAIL_SIDE if request.path_params["size"] == "thumb" else LARGE_SIDE
        data = await run_in_threadpool(workbench.picture, image_id, side)
        if data is None:
            raise HTTPException(404, "no local copy of this image")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def explanation(request: Request) -> Response:
        image_id, index = request.path_params["image_id"], request.path_params["class_index"]
        try:
            made = await run_in_threadpool(workbench.explanation, image_id, index)
        except ConfigError as exc:
            raise HTTPException(404, str(exc)) from None
        if made is None:
            raise HTTPException(404, "no local copy of this image")
        view, heat = made
        wanted = request.path_params["part"]
        data, media = (view, "image/jpeg") if wanted == "view" else (heat, "image/png")
        return Response(data, media_type=media, headers={"Cache-Control": "max-age=3600"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPException(404, "not found")
        path = Path(str(files("monalia") / "templates" / "workbench" / name))
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    # -- writes ---------------------------------------------------------------------------

    async def decide(request: Request) -> Response:
        if settings.read_only:
            raise HTTPException(403, "the workbench is read-only")
        form = await request.form()
        await check_csrf(request, form)
        reviewer = user_of(request)
        values = {key: str(form.get(key) or "") for key in ("record", "class", "kind", "decision")}
        try:
            review = await run_in_threadpool(
                workbench.decide,
                values["record"],
                values["class"],
                values["kind"],
                values["decision"],
                reviewer,
                str(form.get("comment") or ""),
            )
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from None
        latest = review.latest
        answer = {
            "ok": True,
            "decision": latest.decision if latest else None,
            "reviewers": {name: d.decision for name, d in review.by_reviewer.items()},
            "disputed": review.disputed,
        }
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(answer)
        back = str(form.get("next") or "/")
        return RedirectResponse(
            back if back.startswith("/") and not back.startswith("//") else "/", 303
        )

    async def login_page(request: Request) -> Response:
        if request.method == "GET":
            return render(request, "login.html", title="Log in", error=None)
        form = await request.form()
        await check_csrf(request, form)
        name, password = str(form.get("user") or ""), str(form.get("password") or "")
        token = str(form.get("token") or "")
        users = await run_in_threadpool(read_users, settings.users_file)
        if token and check_token(token):
            user = "token"
        elif name in users and await run_in_threadpool(check_password, password, users[name]):
            user = name
        else:
            log.warning("failed login for %r", name[:64])
            return render(
                request, "login.html", 401, title="Log in", error="Wrong name or password."
            )
        request.session.clear()
        request.session["user"] = user
        request.session["csrf"] = secrets.token_urlsafe(32)  # a new session, a new token
        return RedirectResponse("/", 303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        await check_csrf(request, form)
        request.session.clear()
        return RedirectResponse("/login" if settings.login_required else "/", 303)

    # -- guards ---------------------------------------------------------------------------

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(("/decide", "/suggest")) or "application/json" in (
            request.headers.get("accept", "")
        ):
            return JSONResponse({"ok": False, "error": exc.detail}, status_code=exc.status_code)
        return render(request, "error.html", exc.status_code, title="Error", message=exc.detail)

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
        )

    class Guard:
        """Login for every page but the login page, when required; security headers always."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.app(scope, receive, send)
            request = Request(scope, receive)
            path = scope["path"]
            needs_login = settings.login_required and not path.startswith(OPEN_PATHS)
            if needs_login and user_of(request) is None:
                if request.method == "GET":
                    response = RedirectResponse("/login", 303)
                else:
                    response = JSONResponse({"ok": False, "error": "log in first"}, 401)
                return await response(scope, receive, send)

            async def with_headers(message):
                if message["type"] == "http.response.start":
                    headers = message.setdefault("headers", [])
                    headers.extend(
                        [
                            (b"content-security-policy", CSP.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"same-origin"),
                        ]
                    )
                await send(message)

            return await self.app(scope, receive, with_headers)

    routes = [
        Route("/", classes_page),
        Route("/findings", findings_page),
        Route("/record", record_page),
        Route("/search", search_page),
        Route("/duplicates", duplicates_page),
        Route("/suggest", suggest),
        Route("/image/{image_id:int}/{size:str}", image),
        Route("/explain/{image_id:int}/{class_index:int}/{part:str}", explanation),
        Route("/static/{name:str}", static),
        Route("/decide", decide, methods=["POST"]),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=secret or secrets.token_urlsafe(32),
                session_cookie="monalia_workbench",
                max_age=12 * 3600,
                same_site="strict",
            ),
            Middleware(Guard),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        max_body_size=1_000_000,
    )
