"""Logging in (a user of the users file, or the token) and out.

A wrong password and an unknown name take the same time (an unknown name is checked against a
stand-in hash), say the same thing, and count against the name and the address alike: after a
few failures in a row the next try waits, longer each time (429 with Retry-After), without
computing any hash. Password checks run one or two at a time, so a flood of logins cannot take
the server's memory (each scrypt check takes 16 MiB).
"""

from __future__ import annotations

import functools
import logging
import math
import threading

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monalia.web.passwords import check_password, check_token, hash_password
from monalia.web.sessions import credential_digest, token_credential
from monalia.web.site import Site

log = logging.getLogger("monalia.web")
CHECKS_AT_ONCE = threading.BoundedSemaphore(2)


@functools.cache
def stand_in_hash() -> str:
    """A hash no password matches, with the cost of a real one: an unknown name costs the same
    time as a known one."""
    return hash_password("not a password: stands in for an unknown user")


def verify(name: str, password: str, users: dict[str, str]) -> bool:
    stored = users.get(name)
    with CHECKS_AT_ONCE:
        matches = check_password(password, stored if stored is not None else stand_in_hash())
    return stored is not None and matches


async def login_page(request: Request) -> Response:
    site = Site.of(request)
    if request.method == "GET":
        return site.render(request, "login.html", title="Log in", error=None)
    form = await request.form()
    await site.check_csrf(request, form)
    name, password = str(form.get("user") or "")[:200], str(form.get("password") or "")[:1024]
    token = str(form.get("token") or "")
    address = request.client.host if request.client else None
    who = "token" if token else name
    wait = site.throttle.wait(who, address)
    if wait > 0:
        log.warning("login for %r refused for %.0f s: too many failures", who[:64], wait)
        response = site.render(
            request,
            "login.html",
            429,
            title="Log in",
            error=f"Too many failed logins: try again in {math.ceil(wait)} s.",
        )
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    if token:
        user, credential = ("token", token_credential()) if check_token(token) else (None, None)
    else:
        users = site.users.read()
        ok = await run_in_threadpool(verify, name, password, users)
        user, credential = (name, credential_digest(users[name])) if ok else (None, None)
    if user is None:
        site.throttle.failed(who, address)
        log.warning("failed login for %r", who[:64])
        return site.render(
            request, "login.html", 401, title="Log in", error="Wrong name or password."
        )
    site.throttle.succeeded(who, address)
    site.start_session(request, user, credential)  # a new session id and CSRF token
    return site.with_cookie(request, RedirectResponse("/", 303))


async def logout(request: Request) -> Response:
    site = Site.of(request)
    form = await request.form()
    await site.check_csrf(request, form)
    site.end_session(request)  # the old cookie names nothing now, even replayed
    response = RedirectResponse("/login" if site.settings.login_required else "/", 303)
    return site.with_cookie(request, response)


ROUTES = [
    Route("/login", login_page, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
