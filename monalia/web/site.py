"""What every page of the workbench shares: its model, its settings, its templates, and the
session's user and CSRF token. The application keeps one `Site` in ``app.state.site``."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from monalia.curation.html_report import report_environment
from monalia.web.passwords import check_token
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
    whether writes are allowed, where the users are."""

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


class Site:
    """The workbench, its settings and its templates, as the pages use them."""

    def __init__(self, workbench: Workbench, settings: Settings):
        self.workbench = workbench
        self.settings = settings
        self.templates = Jinja2Templates(env=report_environment("templates/workbench"))

    @staticmethod
    def of(request: Request) -> Site:
        return request.app.state.site

    def csrf_token(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def user_of(self, request: Request) -> str | None:
        """Who is asking: the reviewer when no login is needed, else the session's user (or
        "token" for a bearer token), None when nobody has logged in."""
        if not self.settings.login_required:
            return self.settings.reviewer
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and check_token(header[7:].strip()):
            return "token"
        return request.session.get("user")

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        context = {
            "csrf": self.csrf_token(request),
            "user": self.user_of(request),
            "login_required": self.settings.login_required,
            "read_only": self.settings.read_only,
            "model": self.workbench.model,
            "method": self.workbench.setup.method,
            "classes": self.workbench.classes,
            **values,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    @staticmethod
    async def check_csrf(request: Request, form: Any) -> None:
        """Refuse a write whose token is not the session's."""
        expected = request.session.get("csrf")
        given = request.headers.get("x-csrf-token") or (form.get("csrf") if form else None)
        if not expected or not given or not hmac.compare_digest(str(given), str(expected)):
            raise HTTPException(403, "the form is stale or did not come from this site: reload")
