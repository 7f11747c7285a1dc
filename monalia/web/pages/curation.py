"""The pages beyond findings: the collection's map, the audit's problems, precision as
reviewed, and teaching a class from a few examples."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from monalia.errors import ConfigError
from monalia.web.pages.decisions import _answer, _writable_form
from monalia.web.site import Site

TEACH_ASKS = 12
TEACH_RANKED = 24


async def map_page(request: Request) -> Response:
    site = Site.of(request)
    return site.render(request, "map.html", title="Map of the collection")


async def map_points(request: Request) -> Response:
    site = Site.of(request)
    try:
        payload = await run_in_threadpool(site.workbench.map_payload)
    except ConfigError as exc:
        raise HTTPException(503, str(exc)) from None
    return Response(
        orjson.dumps(payload), media_type="application/json", headers={"Cache-Control": "no-cache"}
    )


async def map_selection(request: Request) -> Response:
    """The records of a selection on the map (ids in the form's `records`, comma-separated)."""
    site = Site.of(request)
    form = await request.form()
    await site.check_csrf(request, form)
    try:
        ids = [int(part) for part in str(form.get("records") or "").split(",") if part.strip()]
    except ValueError:
        raise HTTPException(400, "records are numbers, comma-separated") from None
    records = await run_in_threadpool(site.workbench.map_records, ids)
    return JSONResponse({"records": records, "selected": len(ids)})


async def map_open(request: Request) -> Response:
    site = Site.of(request)
    found = await run_in_threadpool(site.workbench.map_records, [request.path_params["record"]])
    if not found:
        raise HTTPException(404, "the catalog has no such record")
    from urllib.parse import urlencode

    return RedirectResponse("/record?" + urlencode({"iri": found[0]["iri"]}), 303)


async def audit_page(request: Request) -> Response:
    site = Site.of(request)
    kind = request.query_params.get("kind") or None
    from monalia.curation.problem_kinds import KINDS, MEANING

    if kind is not None and kind not in KINDS:
        raise HTTPException(400, f"kind is one of {', '.join(KINDS)}")
    problems, counts = await run_in_threadpool(site.workbench.audit_problems, kind)
    return site.render(
        request,
        "audit.html",
        title="Audit: image and dataset problems",
        problems=problems,
        counts=counts,
        kind=kind,
        meaning=MEANING,
    )


async def stats_page(request: Request) -> Response:
    site = Site.of(request)
    stats = await run_in_threadpool(site.workbench.review_stats)
    return site.render(request, "stats.html", title="Precision as reviewed", stats=stats)


async def teach_page(request: Request) -> Response:
    site = Site.of(request)
    taught = await run_in_threadpool(site.workbench.taught_summary)
    return site.render(request, "teach.html", title="Teach a class", taught=taught)


async def teach_new(request: Request) -> Response:
    site, form, reviewer = await _writable_form(request)
    examples = [
        line.strip() for line in str(form.get("examples") or "").splitlines() if line.strip()
    ]
    try:
        cls = await run_in_threadpool(
            site.workbench.teach_new,
            str(form.get("label") or ""),
            str(form.get("uri") or "").strip() or None,
            examples,
            reviewer,
        )
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(f"/teach/{cls.id}", 303)


async def teach_class(request: Request) -> Response:
    site = Site.of(request)
    try:
        lesson = await run_in_threadpool(
            site.workbench.teach_lesson, str(request.path_params["number"]), TEACH_ASKS
        )
    except ConfigError as exc:
        raise HTTPException(404, str(exc)) from None
    asks = await run_in_threadpool(site.workbench.lesson_rows, lesson, lesson.asks)
    ranked = await run_in_threadpool(
        site.workbench.lesson_rows, lesson, lesson.ranking(TEACH_RANKED, answered=False)
    )
    return site.render(
        request,
        "teach_class.html",
        title=f"Teach: {lesson.cls.label}",
        lesson=lesson,
        asks=asks,
        ranked=ranked,
    )


async def teach_answer(request: Request) -> Response:
    site, form, reviewer = await _writable_form(request)
    value = str(form.get("shows") or "")
    shows = {"yes": True, "no": False, "undo": None}.get(value, "bad")
    if shows == "bad":
        raise HTTPException(400, "shows is yes, no or undo")
    try:
        review = await run_in_threadpool(
            site.workbench.teach_answer,
            str(form.get("class") or ""),
            str(form.get("record") or ""),
            shows,
            reviewer,
        )
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from None
    verdict = review.verdict
    return _answer(
        request, form, {"ok": True, "shows": None if verdict is None else verdict.present}
    )


ROUTES = [
    Route("/map", map_page),
    Route("/map/points", map_points),
    Route("/map/selection", map_selection, methods=["POST"]),
    Route("/map/open/{record:int}", map_open),
    Route("/audit", audit_page),
    Route("/stats", stats_page),
    Route("/teach", teach_page),
    Route("/teach/new", teach_new, methods=["POST"]),
    Route("/teach/answer", teach_answer, methods=["POST"]),
    Route("/teach/{number:int}", teach_class),
]
