"""The image spider: one request per image, at the size training needs.

Where an image has a IIIF Image service, the spider asks the service for the whole image scaled
to fit the box (``/full/!W,H/0/default.jpg``); a level 0 service (static files) serves only the
sizes its ``info.json`` lists, so that is read first and the nearest listed size asked for. When
the service refuses the sized request, the spider negotiates through ``info.json``, then falls
back to the image's own URL. Each outcome is one item for the pipeline; the spider never
decides what is a good image, only what the server answered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Request, Response

from monalia.formats import iiif_presentation as iiif
from monalia.harvesters.failures import ERROR_STATUSES, describe_failure, status_reason

# statuses a IIIF service answers when it does not do the size asked for
REFUSED_SIZE = frozenset({400, 403, 404, 405, 406, 415, 422, 501})


@dataclass
class ImageTask:
    """Catalog images that share one URL, and the service that can scale it."""

    ids: list[int]
    url: str
    service: str | None = None


class ImageSpider(scrapy.Spider):
    name = "monalia-images"

    def __init__(self, tasks: Iterable[ImageTask], width: int, height: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.tasks = tasks
        self.width = width
        self.height = height
        # hosts whose services refused a sized request but had an info.json (level 0, static
        # files): their next images go to info.json first, saving a refused request each
        self.static_hosts: set[str] = set()

    async def start(self):
        for task in self.tasks:
            try:
                yield self.first_request(task)
            except ValueError as exc:  # not a URL Scrapy can request (no scheme, "urn:...")
                yield self.failure_item(task, task.url, f"not fetched: {exc}", False)

    def first_request(self, task: ImageTask) -> Request:
        if not task.service:
            return self._request(task, task.url, "plain")
        if urlsplit(task.service).netloc in self.static_hosts:
            return self._request(task, iiif.info_url(task.service), "info")
        return self._request(
            task, iiif.image_request(task.service, self.width, self.height), "sized"
        )

    def _request(self, task: ImageTask, url: str, step: str) -> Request:
        return Request(
            url,
            callback=self.parse_image if step != "info" else self.parse_info,
            errback=self.failed,
            meta={"task": task, "step": step, "handle_httpstatus_list": ERROR_STATUSES},
            dont_filter=True,  # each task once by construction; a retry must not be filtered
        )

    # The callbacks return lists, not generators: Scrapy reads the source of a generator
    # callback (inspect and ast) to warn about a `return` with a value, and its cache of that
    # answer misses for bound methods, made anew for each request: a millisecond per image.

    def parse_image(self, response: Response) -> list:
        task: ImageTask = response.meta["task"]
        step = response.meta["step"]
        if response.status in REFUSED_SIZE and step == "sized":
            return [self._request(task, iiif.info_url(task.service), "info")]
        if response.status in REFUSED_SIZE and step == "negotiated":
            return [self._request(task, task.url, "plain")]
        return [self._item(task, response)]

    def parse_info(self, response: Response) -> list:
        task: ImageTask = response.meta["task"]
        try:
            if response.status >= 400:
                raise ValueError(f"HTTP {response.status}")
            url = iiif.size_from_info(json.loads(response.body), self.width, self.height)
        except (ValueError, UnicodeDecodeError, TypeError, KeyError):
            # no usable info.json: the image's own URL, scaled down locally
            return [self._request(task, task.url, "plain")]
        self.static_hosts.add(urlsplit(task.service).netloc)
        try:
            return [self._request(task, url, "negotiated")]
        except ValueError:  # an info.json naming something that is not a URL
            return [self._request(task, task.url, "plain")]

    def _item(self, task: ImageTask, response: Response) -> dict[str, Any]:
        item: dict[str, Any] = {
            "ids": task.ids,
            "url": response.url,
            "status": response.status,
            "body": None,
            "content_type": response.headers.get("Content-Type", b"").decode("latin-1") or None,
            "error": None,
            "transient": False,
        }
        if response.status >= 300:
            reason, transient = status_reason(response.status, response.url)
            gave_up = response.meta.get("monalia_gave_up")
            item.update(error=f"{reason}: {gave_up}" if gave_up else reason, transient=transient)
        else:
            item["body"] = response.body
        return item

    def failed(self, failure) -> list:
        request = failure.request
        reason, transient = describe_failure(failure)
        return [self.failure_item(request.meta["task"], request.url, reason, transient)]

    @staticmethod
    def failure_item(task: ImageTask, url: str, reason: str, transient: bool) -> dict[str, Any]:
        return {
            "ids": task.ids,
            "url": url,
            "status": None,
            "body": None,
            "content_type": None,
            "error": reason,
            "transient": transient,
        }
