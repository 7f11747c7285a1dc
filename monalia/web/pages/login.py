"""Logging in (a user of the users file, or the token) and out."""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monalia.web.passwords import check_password, check_token, read_users
from monalia.web.site import Site

log = logging.getLogger("monalia.web")


async def login_page(request: Request) -> Response:
    site = Site.of(request)
    if request.method == "GET":
        return site.render(request, "login.html", title="Log in", error=None)
    form = await request.form()
    await site.check_csrf(request, form)
    name, password = str(form.get("user") or ""), str(form.get("password") or "")
    token = str(form.get("token") or "")
    users = await run_in_threadpool(read_users, site.settings.users_file)
    if token and check_token(token):
        user = "token"
    elif name in users and await run_in_threadpool(check_password, password, users[name]):
        user = name
    else:
        log.warning("failed login for %r", name[:64])
        return site.render(
            request, "login.html", 401, title="Log in", error="Wrong name or password."
        )
    request.session.clear()
    request.session["user"] = user
    request.session["csrf"] = secrets.token_urlsafe(32)  # a new session, a new token
    return RedirectResponse("/", 303)


async def logout(request: Request) -> Response:
    site = Site.of(request)
    form = await request.form()
    await site.check_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/login" if site.settings.login_required else "/", 303)


ROUTES = [
    Route("/login", login_page, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
