"""Pictures (thumbnails and large views of the local copies), heat maps, and the static files."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from monalia.errors import ConfigError
from monalia.web.record_views import LARGE_SIDE, THUMBNAIL_SIDE
from monalia.web.site import Site

STATIC = ("workbench.js", "workbench.css")


# an id the catalog's integer columns cannot hold names no image (and would overflow the driver)
LARGEST_ID = 2**63 - 1


def known_id(value: int) -> int:
    if not 0 < value <= LARGEST_ID:
        raise HTTPException(404, "no such image")
    return value


async def image(request: Request) -> Response:
    image_id = known_id(request.path_params["image_id"])
    side = THUMBNAIL_SIDE if request.path_params["size"] == "thumb" else LARGE_SIDE
    data = await run_in_threadpool(Site.of(request).workbench.picture, image_id, side)
    if data is None:
        raise HTTPException(404, "no local copy of this image")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


async def explanation(request: Request) -> Response:
    image_id = known_id(request.path_params["image_id"])
    index = request.path_params["class_index"]
    try:
        made = await run_in_threadpool(Site.of(request).workbench.explanation, image_id, index)
    except ConfigError as exc:
        raise HTTPException(404, str(exc)) from None
    if made is None:
        raise HTTPException(404, "no local copy of this image")
    view, heat = made
    wanted = request.path_params["part"]
    data, media = (view, "image/jpeg") if wanted == "view" else (heat, "image/png")
    return Response(data, media_type=media, headers={"Cache-Control": "max-age=3600"})


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise HTTPException(404, "not found")
    path = Path(str(files("monalia") / "templates" / "workbench" / name))
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


ROUTES = [
    Route("/image/{image_id:int}/{size:str}", image),
    Route("/explain/{image_id:int}/{class_index:int}/{part:str}", explanation),
    Route("/static/{name:str}", static),
]
