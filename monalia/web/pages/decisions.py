"""The workbench's writes: a curator's decision on a finding, and a box drawn where a class is
seen (a "region" decision)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from monalia.errors import ConfigError
from monalia.web.site import Site


async def _writable_form(request: Request) -> tuple[Site, Any, str]:
    """The site, the posted form and the reviewer, once the workbench may be written to and
    the request's CSRF token is right."""
    site = Site.of(request)
    if site.settings.read_only:
        raise HTTPException(403, "the workbench is read-only")
    form = await request.form()
    await site.check_csrf(request, form)
    return site, form, site.user_of(request)


def _answer(request: Request, form: Any, answer: dict[str, Any]) -> Response:
    """JSON to a script; to a plain form, a redirect to its `next` page on this site."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(answer)
    back = str(form.get("next") or "/")
    # only a path on this site: never an open redirect
    return RedirectResponse(
        back if back.startswith("/") and not back.startswith("//") else "/", 303
    )


async def decide(request: Request) -> Response:
    site, form, reviewer = await _writable_form(request)
    values = {key: str(form.get(key) or "") for key in ("record", "class", "kind", "decision")}
    try:
        review = await run_in_threadpool(
            site.workbench.decide,
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
    return _answer(
        request,
        form,
        {
            "ok": True,
            "decision": latest.decision if latest else None,
            "reviewers": {name: d.decision for name, d in review.by_reviewer.items()},
            "disputed": review.disputed,
        },
    )


async def correct_region(request: Request) -> Response:
    """A box a curator drew where a class is seen: stored as a "region" decision."""
    site, form, reviewer = await _writable_form(request)
    try:
        image_id = int(str(form.get("image") or ""))
        box = tuple(int(str(form.get(key) or "")) for key in ("x", "y", "w", "h"))
        await run_in_threadpool(
            site.workbench.correct_region,
            str(form.get("record") or ""),
            str(form.get("class") or ""),
            image_id,
            box,
            reviewer,
            str(form.get("comment") or ""),
        )
    except ValueError:
        raise HTTPException(400, "a region is four whole numbers and an image") from None
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from None
    return _answer(request, form, {"ok": True, "region": list(box)})


ROUTES = [
    Route("/decide", decide, methods=["POST"]),
    Route("/region", correct_region, methods=["POST"]),
]
