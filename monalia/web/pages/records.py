"""A record with its images, scores, heat maps and the records that look like it; the groups of
near duplicates."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monalia.web.pages.findings import KINDS
from monalia.web.site import KEYS, Site


async def record_page(request: Request) -> Response:
    site = Site.of(request)
    workbench = site.workbench
    iri = request.query_params.get("iri", "")
    record = await run_in_threadpool(workbench.record, iri)
    if record is None:
        raise HTTPException(404, "the catalog has no such record")
    focus, kind = None, request.query_params.get("kind")
    if request.query_params.get("class", "").isdigit():
        position = int(request.query_params["class"])
        if 0 <= position < len(workbench.classes):
            focus = position
    if kind not in KINDS:
        kind = None
    explains = await run_in_threadpool(workbench.can_explain)
    similar = await run_in_threadpool(workbench.more_like_this, record)
    return site.render(
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
    site = Site.of(request)
    groups = await run_in_threadpool(site.workbench.duplicate_groups)
    return site.render(
        request, "duplicates.html", title="Near duplicates", groups=groups, keys=KEYS
    )


ROUTES = [
    Route("/record", record_page),
    Route("/duplicates", duplicates_page),
]
