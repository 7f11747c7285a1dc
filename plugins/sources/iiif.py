"""Source: IIIF collections and manifests (Presentation 2 and 3), crawled with Scrapy.

The crawl runs in its own process (``monalia.harvesters``): it follows nested collections from
`url`, fetches every manifest concurrently and politely, and hands each manifest to `parse`, which
makes one record per manifest (or per canvas with ``records = "canvas"``) keeping each image's
IIIF Image service, so the image stage can ask for the size training needs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.records import Record
from monalia.api.source import CrawlSpec, RawItem, Source, SourceState
from monalia.errors import SourceUnavailable
from monalia.formats import iiif_presentation as iiif
from monalia.net.http import HttpSettings


class IiifSettings(PluginSettings):
    url: str  # a collection (nested collections are followed) or a single manifest
    records: Literal["manifest", "canvas"] = "manifest"  # one record per manifest, or per canvas
    languages: list[str] = Field(default_factory=lambda: ["en"])  # preferred label languages
    # metadata labels (any case) whose values are subject terms; others stay in the raw payload
    subject_fields: list[str] = Field(default_factory=lambda: sorted(iiif.SUBJECT_LABELS))
    # metadata labels (any case) whose first value is the record's date / holding institution
    date_labels: list[str] = Field(default_factory=lambda: sorted(iiif.DATE_LABELS))
    # metadata labels whose value is the holding institution
    institution_labels: list[str] = Field(default_factory=lambda: sorted(iiif.INSTITUTION_LABELS))
    concurrency: int = Field(8, ge=1)  # manifests fetched at once
    max_bytes: int = Field(64 * 1024 * 1024, ge=1)  # a larger document is refused while read
    per_host: int = Field(4, ge=1)  # requests in flight to one host
    autothrottle: bool = True  # slow down for a host whose answers slow down
    robots: bool = False  # obey robots.txt
    http: HttpSettings = Field(default_factory=HttpSettings)


class IiifSource(Source):
    """IIIF Presentation 2 and 3: collections followed, one record per manifest or canvas."""

    name = "iiif"
    Settings = IiifSettings

    def items(self, state: SourceState):
        raise SourceUnavailable(
            f"{self.context.instance}: IIIF is read by its crawler; run `monalia harvest "
            f"{self.context.instance}`"
        )

    def parse(self, item: RawItem) -> list[Record]:
        """Records keyed by the URL the manifest was fetched from (`item.key`): two documents
        claiming one id stay two records, and the clash is a warning on the run."""
        settings = self.settings
        records = iiif.to_records(
            item.payload,
            per=settings.records,
            languages=tuple(settings.languages),
            subject_fields=frozenset(f.lower() for f in settings.subject_fields),
            url=item.key,
            date_labels=frozenset(f.lower() for f in settings.date_labels),
            institution_labels=frozenset(f.lower() for f in settings.institution_labels),
        )
        claimed = iiif.document_id(item.payload) if isinstance(item.payload, dict) else None
        if claimed is not None:
            claims = self.__dict__.setdefault("_claims", {})
            earlier = claims.setdefault(claimed, item.key)
            if earlier != item.key:
                self.warn(
                    f"the manifest claims id {claimed}, which the manifest fetched from "
                    f"{earlier} also claims; both are kept, each under the URL it came from"
                )
        return records

    def item_key(self, source_id: str) -> str:
        """The manifest URL a record came from (canvas records add the canvas after it)."""
        return source_id.split(iiif.CANVAS_KEY, 1)[0]

    def crawl(self) -> CrawlSpec:
        """Nested collections followed from `url` by the IIIF spider, manifests fetched politely."""
        http = self.settings.http
        settings = {
            "concurrency": self.settings.concurrency,
            "per_host": self.settings.per_host,
            "delay": 1.0 / http.rate_limit if http.rate_limit else 0.0,
            "autothrottle": self.settings.autothrottle,
            "retries": http.retries,
            "timeout": http.timeout,
            "backoff": http.backoff,
            "max_retry_after": http.max_retry_after,
            "user_agent": http.user_agent,
            "robots": self.settings.robots,
            "max_bytes": self.settings.max_bytes,
        }
        return CrawlSpec(
            spider="monalia.harvesters.spiders.iiif.IiifSpider",
            arguments={"start_url": self.settings.url},
            settings=settings,
            start_url=self.settings.url,
        )


@hookimpl
def register_sources():
    return [IiifSource]
