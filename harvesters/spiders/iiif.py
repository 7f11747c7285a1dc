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

from monalia.formats import iiif_presentation as iiif
from monalia.harvesters.failures import ERROR_STATUSES, describe_failure, status_reason

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

    `skip` holds the manifest URLs (as collections list them) already stored by an unfinished
    earlier run: not fetched again.
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
            meta={"expect": expect, "handle_httpstatus_list": ERROR_STATUSES},
        )

    def parse_document(self, response: Response):
        # the URL as listed (before redirects): what the record is keyed and resumed by
        url = (response.meta.get("redirect_urls") or [response.url])[0]
        if response.status >= 400:
            reason, transient = status_reason(response.status, response.url)
            yield failed_item(url, reason, transient)
            return
        try:
            doc = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            yield failed_item(url, f"not JSON ({exc}); {len(response.body)} bytes", False)
            return
        if not isinstance(doc, dict):
            yield failed_item(url, f"not a IIIF document: a JSON {type(doc).__name__}", False)
            return
        kind = iiif.document_type(doc)
        if kind == "Collection":
            yield from self.follow_collection(url, doc)
        elif kind == "Manifest":
            yield manifest_item(url, doc)
        else:
            yield failed_item(
                url, f"not a IIIF collection or manifest (type {kind or 'missing'})", False
            )

    def follow_collection(self, url: str, doc: dict[str, Any]):
        """Requests for a collection's members; one failure item for each member that cannot
        be fetched, so the members listed after it are still harvested."""
        try:
            listed = iiif.listed_members(doc)
        except Exception as exc:  # a collection this malformed loses its members, loudly
            yield failed_item(url, f"cannot read the collection's members: {exc}", False)
            return
        for member, reason in listed.problems:
            yield failed_item(f"{url} {member}", reason, False)
        for member_url in listed.collections:
            yield self._request(member_url, "Collection")
        for member_url in listed.manifests:
            if member_url in self.skip:
                self.skipped += 1
                continue
            yield self._request(member_url, "Manifest")
        for key in ("next", "first"):  # v2 paged collections
            following = doc.get(key)
            if isinstance(following, dict):
                following = iiif.document_id(following)
            if following is None:
                continue
            if iiif.fetchable_url(following):
                yield self._request(following, "Collection")
            else:
                yield failed_item(
                    f"{url} {key}", f"the {key} page {str(following)[:200]!r} is not a URL", False
                )

    def failed(self, failure):
        request = failure.request
        reason, transient = describe_failure(failure)
        yield failed_item(
            (request.meta.get("redirect_urls") or [request.url])[0], reason, transient
        )
