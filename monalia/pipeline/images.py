"""The image stage: every record's image fetched once, checked, stored by content hash.

The fetching is a Scrapy crawl in its own process (``monalia.harvesters``): concurrency,
AutoThrottle, retries that obey Retry-After, per-host politeness. Images whose record has a IIIF
Image service are asked for at the project's box size. A re-run takes what is pending and what
failed for a reason that may pass (network, 5xx, 429); images refused for their content or a
4xx answer are retried only when asked (`retry_failed`).
"""

from __future__ import annotations

from dataclasses import dataclass

from monalia.catalog import Catalog
from monalia.config import Project
from monalia.images import ImageStore
from monalia.pipeline.crawl import run_crawl
from monalia.pipeline.runs import RunInfo
from monalia.progress import Progress

PENDING, FETCHED, FAILED, REJECTED = "pending", "fetched", "failed", "rejected"


@dataclass
class ImageOptions:
    limit: int | None = None  # fetch at most this many images
    retry_failed: bool = False  # also retry images refused for good (content, 4xx)
    sources: tuple[str, ...] = ()  # only these sources' records; empty: all


def fetch_images(
    catalog: Catalog, project: Project, options: ImageOptions, progress: Progress | None = None
) -> RunInfo:
    """Run the image stage over the catalog; return its run."""
    section = project.model.images
    data_dir = project.data_dir
    store = ImageStore(data_dir / section.folder, data_dir)
    store.remove_partial_files()  # what a killed run was writing
    crawl = {
        "concurrency": section.concurrency,
        "per_host": section.per_host,
        "delay": section.delay,
        "autothrottle": section.autothrottle,
        "retries": section.retries,
        "timeout": section.timeout,
        "backoff": section.backoff,
        "max_retry_after": section.max_retry_after,
        "user_agent": section.user_agent,
        "robots": section.robots,
        "max_bytes": section.max_bytes,
    }
    job = {
        "kind": "images",
        "catalog": catalog.url,
        "data_dir": str(data_dir),
        "folder": section.folder,
        "width": section.width,
        "height": section.height,
        "limits": {
            "max_bytes": section.max_bytes,
            "max_pixels": section.max_pixels,
            "min_side": section.min_side,
            "max_aspect": section.max_aspect,
        },
        "limit": options.limit,
        "retry_failed": options.retry_failed,
        "sources": list(options.sources),
        "target": ", ".join(options.sources) or None,
        "crawl": crawl,
        "settings": {
            "box": [section.width, section.height],
            "limit": options.limit,
            "retry_failed": options.retry_failed,
            "sources": list(options.sources),
            "concurrency": section.concurrency,
            "per_host": section.per_host,
        },
    }
    return run_crawl(catalog, job, progress)
