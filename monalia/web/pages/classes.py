"""The classes page (the front page), and search by a class's name."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from monalia.errors import ConfigError
from monalia.web.site import Site


async def classes_page(request: Request) -> Response:
    site = Site.of(request)
    rows = await run_in_threadpool(site.workbench.summary)
    return site.render(request, "classes.html", rows=rows, title="Classes")


async def search_page(request: Request) -> Response:
    site = Site.of(request)
    term = request.query_params.get("q", "").strip()
    if not term:
        return RedirectResponse("/", 303)
    try:
        cls = site.workbench.class_of(term)
    except ConfigError as exc:
        found = site.workbench.suggest(term)
        return site.render(
            request, "search.html", title="Search", term=term, error=str(exc), suggestions=found
        )
    index = site.workbench.classes.index(cls)
    return RedirectResponse(f"/findings?class={index}&kind=search&reviewed=all", 303)


async def suggest(request: Request) -> Response:
    site = Site.of(request)
    return JSONResponse(site.workbench.suggest(request.query_params.get("q", "")[:100]))


ROUTES = [
    Route("/", classes_page),
    Route("/search", search_page),
    Route("/suggest", suggest),
]
