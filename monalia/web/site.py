"""What every page of the workbench shares: its model, its settings, its templates, its
sessions, and the session's user and CSRF token. The application keeps one `Site` in ``app.state.site``."""

from __future__ import annotations

import hmac
import ipaddress
import socket
import threading
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from monalia.curation.html_report import report_environment
from monalia.web.passwords import check_token, read_users
from monalia.web.sessions import (
    COOKIE,
    TOKEN_CREDENTIAL,
    LoginThrottle,
    Session,
    Sessions,
    credential_digest,
    token_credential,
)
from monalia.web.workbench import Workbench

# The keyboard, as the pages list it.
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
    """How the workbench serves: who decides when nobody logs in, whether a login is needed,
    whether writes are allowed, where the users are, which Host names it answers to, and
    whether its cookie is marked Secure (behind a TLS proxy)."""

    def __init__(
        self,
        reviewer: str,
        login_required: bool,
        read_only: bool,
        users_file: Path,
        bound_host: str = "127.0.0.1",
        allowed_hosts: tuple[str, ...] = (),
        secure_cookie: bool = False,
    ):
        self.reviewer = reviewer
        self.login_required = login_required
        self.read_only = read_only
        self.users_file = users_file
        self.bound_host = bound_host
        self.allowed_hosts = allowed_hosts
        self.secure_cookie = secure_cookie


LANGUAGE_COOKIE = "monalia_lang"  # the language a curator chose for the class labels


class Site:
    """The workbench, its settings, its templates and its sessions, as the pages use them."""

    def __init__(self, workbench: Workbench, settings: Settings):
        self.workbench = workbench
        self.settings = settings
        self.templates = Jinja2Templates(env=report_environment("templates/workbench"))
        self.sessions = Sessions()
        self.throttle = LoginThrottle()
        self.users = UsersFile(settings.users_file)
        self.hosts = AllowedHosts(settings.bound_host, settings.allowed_hosts)

    @staticmethod
    def of(request: Request) -> Site:
        return request.app.state.site

    # -- sessions ----------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        """The request's session, if its cookie names a live one (cached on the request)."""
        if not hasattr(request.state, "session"):
            session = self.sessions.get(request.cookies.get(COOKIE))
            if session is not None and session.user is not None and not self._current(session):
                # the user left the users file, has a new password, or the token changed
                self.sessions.end(session.id)
                request.state.ended_session = True
                session = None
            request.state.session = session
        return request.state.session

    def _current(self, session: Session) -> bool:
        """Whether what the session's user logged in with is still what the server accepts."""
        if session.credential and session.credential.startswith(TOKEN_CREDENTIAL):
            return session.credential == token_credential()
        stored = self.users.read().get(session.user or "")
        return stored is not None and credential_digest(stored) == session.credential

    def start_session(self, request: Request, user: str | None, credential: str | None = None):
        """A new session (a new id and CSRF token) for this request; its cookie is set on the
        answer by `with_cookie`."""
        old = self.session_of(request)
        if old is not None:
            self.sessions.end(old.id)
        session = self.sessions.start(user, credential)
        request.state.session = session
        request.state.new_session = session
        return session

    def end_session(self, request: Request) -> None:
        session = self.session_of(request)
        if session is not None:
            self.sessions.end(session.id)
        request.state.session = None
        request.state.ended_session = True

    def with_cookie(self, request: Request, response: Response) -> Response:
        """Set the cookie of a session this request started (its lifetime counted from now,
        once: it does not slide), or clear the cookie of one it ended."""
        session = getattr(request.state, "new_session", None)
        if session is not None:
            response.set_cookie(
                COOKIE,
                session.id,
                max_age=session.remaining(),
                path="/",
                httponly=True,
                samesite="strict",
                secure=self.settings.secure_cookie,
            )
        elif getattr(request.state, "ended_session", False):
            response.delete_cookie(
                COOKIE,
                path="/",
                httponly=True,
                samesite="strict",
                secure=self.settings.secure_cookie,
            )
        return response

    def csrf_token(self, request: Request) -> str:
        session = self.session_of(request)
        if session is None:
            session = self.start_session(request, None)
        return session.csrf

    def user_of(self, request: Request) -> str | None:
        """Who is asking: the reviewer when no login is needed, else the session's user (or
        "token" for a bearer token), None when nobody has logged in."""
        if not self.settings.login_required:
            return self.settings.reviewer
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and check_token(header[7:].strip()):
            return "token"
        session = self.session_of(request)
        return session.user if session is not None else None

    def language_of(self, request: Request) -> str | None:
        """The language the classes are labelled in: `?lang=` (kept in a cookie), else the
        cookie's, else the project's."""
        languages = self.workbench.languages
        asked = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
        if asked in languages:
            return asked
        return languages[0] if languages else None

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        language = self.language_of(request)
        context = {
            "languages": self.workbench.languages,
            "language": language,
            "label": lambda uri, fallback: self.workbench.label_in(uri, language, fallback),
            "path": request.url.path,
            "csrf": self.csrf_token(request),
            "user": self.user_of(request),
            "login_required": self.settings.login_required,
            "read_only": self.settings.read_only,
            "model": self.workbench.model,
            "method": self.workbench.setup.method,
            "classes": self.workbench.classes,
            **values,
        }
        response = self.templates.TemplateResponse(request, name, context, status_code=status)
        if request.query_params.get("lang") == language and language:
            response.set_cookie(
                LANGUAGE_COOKIE,
                language,
                max_age=365 * 24 * 3600,
                path="/",
                httponly=True,
                samesite="strict",
                secure=self.settings.secure_cookie,
            )
        return self.with_cookie(request, response)

    async def check_csrf(self, request: Request, form: Any) -> None:
        """Refuse a write whose token is not the session's."""
        session = self.session_of(request)
        expected = session.csrf if session is not None else None
        given = request.headers.get("x-csrf-token") or (form.get("csrf") if form else None)
        if not expected or not given or not hmac.compare_digest(str(given), str(expected)):
            raise HTTPException(403, "the form is stale or did not come from this site: reload")


class UsersFile:
    """The users file, read again when it changes (a removed user's sessions end at once)."""

    def __init__(self, path: Path):
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}
        self._lock = threading.Lock()

    def read(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
            mark = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            mark = None
        with self._lock:
            if mark != self._seen or mark is None:
                self._users = read_users(self.path)
                self._seen = mark
            return self._users


class AllowedHosts:
    """The Host names the workbench answers to: the address it is bound to (and, on loopback,
    localhost's names), any given with ``--allowed-host``; bound to every interface, also the
    machine's own names and any address literal (a literal cannot be rebound by DNS). Another
    name is a page that had a name rebound to this server: it gets 400."""

    LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

    def __init__(self, bound: str, extra: tuple[str, ...] = ()):
        bound = bound.strip("[]").lower()
        names = {bound, *(name.strip("[]").lower() for name in extra)}
        self.wildcard = bound in ("0.0.0.0", "::", "")
        if is_loopback(bound):
            names.update(self.LOOPBACK_NAMES)
        if self.wildcard:
            names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
            names.update(self.LOOPBACK_NAMES)
        self.names = frozenset(names)

    def allows(self, host_header: str | None) -> bool:
        name = host_name(host_header)
        if not name:
            return False
        if name in self.names:
            return True
        return self.wildcard and _is_address(name)


def host_name(value: str | None) -> str:
    """The name in a Host header (or an Origin's netloc), lowercased, without port or brackets."""
    value = (value or "").strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, brackets allowed) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
