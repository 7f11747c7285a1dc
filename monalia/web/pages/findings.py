"""A class's findings (noise, silence or search results), a page at a time, with filters."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monalia.web.site import KEYS, Site
from monalia.web.workbench import REVIEWED

KINDS = ("noise", "silence", "search", "sample")
MAX_PAGE = 10**9  # a larger page number is past any collection's end


def number_in(value: str | None, low: float | None = None, high: float | None = None):
    """A query parameter as a number within bounds, None when empty; 400 otherwise."""
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise HTTPException(400, f"not a number: {value[:40]!r}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise HTTPException(400, f"out of range: {number}")
    return number


def read_filters(site: Site, query: Any) -> dict[str, Any]:
    """The page's class, kind, review state, page number, source and score range, checked."""
    try:
        index = int(query.get("class", "0"))
        if index < 0:
            raise IndexError(index)  # -1 is not the last class
        cls = site.workbench.classes[index]
    except (ValueError, IndexError):
        raise HTTPException(404, "no such class") from None
    kind = query.get("kind", "noise")
    if kind not in KINDS:
        raise HTTPException(400, "kind is noise, silence, search or sample")
    reviewed = query.get("reviewed", "open")
    if reviewed not in REVIEWED:
        raise HTTPException(400, f"reviewed is one of {', '.join(REVIEWED)}")
    try:
        number = min(max(1, int(query.get("page", "1"))), MAX_PAGE)
    except ValueError:
        raise HTTPException(400, "page is a number") from None
    return {
        "index": index,
        "cls": cls,
        "kind": kind,
        "reviewed": reviewed,
        "number": number,
        "source": query.get("source") or None,
        "low": number_in(query.get("min"), 0, 1),
        "high": number_in(query.get("max"), 0, 1),
    }


async def findings_page(request: Request) -> Response:
    site = Site.of(request)
    query = request.query_params
    wanted = read_filters(site, query)
    cls, kind = wanted["cls"], wanted["kind"]
    page = await run_in_threadpool(
        site.workbench.page,
        cls.uri,
        kind,
        wanted["number"],
        None,
        wanted["source"],
        wanted["low"],
        wanted["high"],
        wanted["reviewed"],
    )
    filters = {
        "class": wanted["index"],
        "kind": kind,
        "reviewed": wanted["reviewed"],
        "source": wanted["source"] or "",
        "min": query.get("min", ""),
        "max": query.get("max", ""),
    }

    def link(**changes: Any) -> str:
        values = {**filters, **changes}
        return "/findings?" + urlencode({k: v for k, v in values.items() if v != ""})

    return site.render(
        request,
        "findings.html",
        title=f"{kind.capitalize()}: {cls.label}",
        cls=cls,
        index=wanted["index"],
        kind=kind,
        page=page,
        filters=filters,
        link=link,
        reviewed_values=REVIEWED,
        sources=site.workbench.sources(),
        keys=KEYS,
    )


ROUTES = [Route("/findings", findings_page)]
