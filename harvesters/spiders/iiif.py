"""The IIIF spider: from a collection or a manifest, every manifest, nested collections followed.

It yields one item per manifest document (the record is made from it by the source's ``parse``),
and one failure item per document it could not read, so every problem reaches the run's counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import scrapy
from scrapy.http import Request, Response

from monalia.harvesters.failures import describe_failure, status_reason
from monalia.lib import iiif_presentation as iiif

ACCEPT = (
    'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json", '
    "application/ld+json, application/json;q=0.9, */*;q=0.1"
)


def manifest_item(key: str, payload: Any) -> dict[str, Any]:
    return {"kind": "manifest", "key": key, "payload": payload}


def failed_item(key: str, message: str, transient: bool = True) -> dict[str, Any]:
    return {"kind": "failed", "key": key, "message": message, "transient": transient}


class IiifSpider(scrapy.Spider):
    """Crawl IIIF Presentation collections and manifests (v2 and v3) from `start_url`.

    `skip` holds manifest ids already stored by an unfinished earlier run: not fetched again.
    """

    name = "monalia-iiif"

    def __init__(self, start_url: str, skip: Iterable[str] = (), **kwargs: Any):
        super().__init__(**kwargs)
        self.start_url = start_url
        self.skip = set(skip)
        self.skipped = 0

    async def start(self):
        yield self._request(self.start_url, "any")

    def _request(self, url: str, expect: str) -> Request:
        return Request(
            url,
            callback=self.parse_document,
            errback=self.failed,
            headers={"Accept": ACCEPT},
            meta={"expect": expect, "handle_httpstatus_all": True},
        )

    def parse_document(self, response: Response):
        if response.status >= 400:
            reason, transient = status_reason(response.status, response.url)
            yield failed_item(response.url, reason, transient)
            return
        try:
            doc = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            yield failed_item(response.url, f"not JSON ({exc}); {len(response.body)} bytes")
            return
        if not isinstance(doc, dict):
            yield failed_item(response.url, f"not a IIIF document: a JSON {type(doc).__name__}")
            return
        kind = iiif.document_type(doc)
        if kind == "Collection":
            collections, manifests = iiif.members(doc)
            for url in collections:
                yield self._request(url, "Collection")
            for url in manifests:
                if url in self.skip:
                    self.skipped += 1
                    continue
                yield self._request(url, "Manifest")
            for key in ("next", "first"):  # v2 paged collections
                following = doc.get(key)
                if isinstance(following, str):
                    yield self._request(following, "Collection")
                elif isinstance(following, dict) and iiif.document_id(following):
                    yield self._request(iiif.document_id(following), "Collection")
        elif kind == "Manifest":
            yield manifest_item(response.url, doc)
        else:
            yield failed_item(
                response.url, f"not a IIIF collection or manifest (type {kind or 'missing'})"
            )

    def failed(self, failure):
        request = failure.request
        reason, transient = describe_failure(failure)
        yield failed_item(request.url, reason, transient)
