"""The one write of the workbench: a curator's decision on a finding."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from monalia.errors import ConfigError
from monalia.web.site import Site


async def decide(request: Request) -> Response:
    site = Site.of(request)
    if site.settings.read_only:
        raise HTTPException(403, "the workbench is read-only")
    form = await request.form()
    await site.check_csrf(request, form)
    reviewer = site.user_of(request)
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
    answer = {
        "ok": True,
        "decision": latest.decision if latest else None,
        "reviewers": {name: d.decision for name, d in review.by_reviewer.items()},
        "disputed": review.disputed,
    }
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(answer)
    back = str(form.get("next") or "/")
    # only a path on this site: never an open redirect
    return RedirectResponse(
        back if back.startswith("/") and not back.startswith("//") else "/", 303
    )


async def correct_region(request: Request) -> Response:
    """A box a curator drew where a class is seen: stored as a "region" decision."""
    site = Site.of(request)
    if site.settings.read_only:
        raise HTTPException(403, "the workbench is read-only")
    form = await request.form()
    await site.check_csrf(request, form)
    reviewer = site.user_of(request)
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
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"ok": True, "region": list(box)})
    back = str(form.get("next") or "/")
    return RedirectResponse(
        back if back.startswith("/") and not back.startswith("//") else "/", 303
    )


ROUTES = [
    Route("/decide", decide, methods=["POST"]),
    Route("/region", correct_region, methods=["POST"]),
]
