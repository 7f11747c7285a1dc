"""The jobs a crawl process runs, typed: what the parent sends on the child's stdin as JSON.

A job names everything the child needs to work alone (the catalog's URL, the plugin and its
settings, the crawl's politeness), so that a crawl runs the same in a local process and in a
Ray task on another machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar


@dataclass(frozen=True)
class CrawlSettings:
    """How a crawl fetches: the keyword arguments of `monalia.harvesters.settings.crawl_settings`."""

    concurrency: int = 8
    per_host: int = 4
    delay: float = 0.0
    autothrottle: bool = True
    retries: int = 3
    timeout: float = 30.0
    backoff: float = 1.0
    max_retry_after: float = 300.0
    user_agent: str | None = None
    robots: bool = False
    max_bytes: int | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Job:
    """What every crawl job has: its kind, the catalog, the run's recorded settings."""

    kind: ClassVar[str] = ""
    catalog: str
    crawl: CrawlSettings
    settings: dict[str, Any]  # as the run records them
    parent_dies_hard: bool = False  # under a Ray task: stop at once when the parent dies
    # what the crawl may fetch: `monalia.net.url_policy.UrlPolicy` fields
    url_policy: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Job:
        cls = {job.kind: job for job in (HarvestJob, ImageJob)}[data["kind"]]
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["crawl"] = CrawlSettings(**data["crawl"])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class HarvestJob(Job):
    """Harvest a crawled source: its spider fetches, the source's `parse` reads each item."""

    kind: ClassVar[str] = "harvest"
    source: str = ""  # the source's instance name in the project file
    plugin: str = ""
    plugin_settings: dict[str, Any] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)  # project_dir, data_dir, base_iri
    spider: str = ""  # "package.module.SpiderClass"
    spider_arguments: dict[str, Any] = field(default_factory=dict)
    start_url: str | None = None  # a failure to read it fails the run
    since_run: int | None = None  # the unfinished run this one resumes
    limit: int | None = None
    dry_run: bool = False  # read, check and count against the catalog; write nothing


@dataclass(frozen=True, kw_only=True)
class ImageJob(Job):
    """Fetch images (one shard of them) into the image store."""

    kind: ClassVar[str] = "images"
    data_dir: str = ""
    folder: str = "images"
    width: int = 0
    height: int = 0
    limits: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    retry_failed: bool = False
    sources: list[str] = field(default_factory=list)
    target: str | None = None
    shards: int = 1
    shard: int = 0
    shard_limit: int | None = None
    # the run the crawl processes add their counts to, in the transactions that store the work
    run_id: int | None = None
    # the hosts of the project's sources (their url or endpoint): images there may be private,
    # as the user chose those hosts
    trusted_hosts: list[str] = field(default_factory=list)

    def for_shard(self, shard: int, shards: int, crawl: CrawlSettings, limit: int | None):
        return replace(self, shard=shard, shards=shards, crawl=crawl, shard_limit=limit)
