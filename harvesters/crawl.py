"""One crawl in its own process (Twisted's reactor starts once per process).

``python -m monalia.harvesters.crawl`` reads its job as JSON on stdin, runs the spider with the
catalog pipeline named in its settings, and writes progress as JSON lines on stdout.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

from scrapy.crawler import CrawlerProcess
from scrapy.utils.misc import load_object
from sqlalchemy import select

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, RecordRow
from monalia.executors.jobs import HarvestJob, ImageJob, Job
from monalia.harvesters.pipelines import job_source, open_catalog
from monalia.harvesters.settings import crawl_settings
from monalia.harvesters.spiders.images import ImageSpider, ImageTask
from monalia.stages.images import job_filter

PAGE = 1000


def image_tasks(catalog: Catalog, job: ImageJob) -> Iterator[ImageTask]:
    """The images to fetch, read a page at a time in id order; rows of one page that share a URL
    make one task (one request)."""
    last, left = 0, job.shard_limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        with catalog.session() as session:
            rows = session.execute(
                select(ImageRow.id, ImageRow.url, ImageRow.iiif_service)
                .where(
                    job_filter(job),
                    ImageRow.id > last,
                )
                .order_by(ImageRow.id)
                .limit(size)
            ).all()
        if not rows:
            return
        last = rows[-1][0]
        if left is not None:
            left -= len(rows)
        tasks: dict[str, ImageTask] = {}
        for image_id, url, service in rows:
            task = tasks.get(url)
            if task is None:
                tasks[url] = ImageTask([image_id], url, service)
            else:
                task.ids.append(image_id)
        yield from tasks.values()


def run_images(job: ImageJob) -> None:
    catalog = open_catalog(job.catalog)
    settings = crawl_settings(
        pipeline="monalia.harvesters.pipelines.ImagePipeline",
        url_policy=job.url_policy,
        trusted_hosts=job.trusted_hosts,
        **job.crawl.as_kwargs(),
    )
    settings["MONALIA_JOB"] = job.to_json()
    process = CrawlerProcess(settings, install_root_handler=True)
    process.crawl(ImageSpider, tasks=image_tasks(catalog, job), width=job.width, height=job.height)
    process.start()


def run_harvest(job: HarvestJob) -> None:
    catalog = open_catalog(job.catalog)
    skip: set[str] = set()
    if job.since_run:
        # the items (e.g. manifest URLs) whose records the unfinished runs stored
        source = job_source(job)
        with catalog.session() as session:
            skip = {
                source.item_key(source_id)
                for source_id in session.scalars(
                    select(RecordRow.source_id).where(
                        RecordRow.source == job.source, RecordRow.last_run_id >= job.since_run
                    )
                )
            }
    pipeline = "DryRunPipeline" if job.dry_run else "RecordPipeline"
    settings = crawl_settings(
        pipeline=f"monalia.harvesters.pipelines.{pipeline}",
        url_policy=job.url_policy,
        # the start URL is the user's own: its host may be a private address
        trusted_hosts=[urlsplit(job.start_url).hostname or ""] if job.start_url else [],
        start_url=job.start_url,
        **job.crawl.as_kwargs(),
    )
    settings["MONALIA_JOB"] = job.to_json()
    if job.limit:
        settings["CLOSESPIDER_ITEMCOUNT"] = job.limit
    process = CrawlerProcess(settings, install_root_handler=True)
    # whatever spider the source names: the crawl process knows none of them
    process.crawl(load_object(job.spider), **job.spider_arguments, skip=skip)
    process.start()


def stop_with_parent(how: int = signal.SIGTERM) -> None:
    """Ask Linux to send `how` when the process that started this one dies, so a crawl never
    outlives its command (elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, how)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    job = Job.from_json(json.load(sys.stdin))
    # Under a Ray task the parent is a worker: if it dies, what this crawl commits after could
    # no longer be reported, so it stops at once and the retried task fetches the rest.
    stop_with_parent(signal.SIGKILL if job.parent_dies_hard else signal.SIGTERM)
    if isinstance(job, HarvestJob):
        run_harvest(job)
    else:
        run_images(job)


if __name__ == "__main__":
    main()
