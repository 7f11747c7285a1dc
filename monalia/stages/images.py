"""The image stage: every record's image fetched once, checked, stored by content hash.

The fetching is a Scrapy crawl in its own process (``monalia.harvesters``): concurrency,
AutoThrottle, retries that obey Retry-After, per-host politeness. Images whose record has a IIIF
Image service are asked for at the project's box size. A re-run takes what is pending and what
failed for a reason that may pass (network, 5xx, 429); images refused for their content or a
4xx answer are retried only when asked (`retry_failed`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import func, select

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow
from monalia.catalog.queries import image_filter
from monalia.catalog.run_tracking import DONE, RunInfo, RunTracker
from monalia.executors.crawl_process import run_sharded_crawl
from monalia.executors.jobs import CrawlSettings, ImageJob
from monalia.learning.image_check import ImageStore
from monalia.progress import Progress
from monalia.project import Project

IMAGES_PER_PROCESS = (
    500  # below this many images a run's extra crawl processes cost more than they give
)


def job_filter(job: ImageJob):
    """The images a job (or its shard) fetches, as an SQL condition."""
    return image_filter(job.retry_failed, job.sources, job.shards, job.shard)


def count_images(catalog: Catalog, job: ImageJob) -> int:
    with catalog.session() as session:
        total = session.scalar(select(func.count(ImageRow.id)).where(job_filter(job)))
    return total if job.limit is None else min(total, job.limit)


def share(total: int, parts: int, part: int) -> int:
    return total // parts + (1 if part < total % parts else 0)


@dataclass
class ImageOptions:
    limit: int | None = None  # fetch at most this many images
    retry_failed: bool = False  # also retry images refused for good (content, 4xx)
    executor: str | None = None  # local or ray; None: [executor] kind
    sources: tuple[str, ...] = ()  # only these sources' records; empty: all


def fetch_images(
    catalog: Catalog,
    project: Project,
    options: ImageOptions,
    progress: Progress | None = None,
    hooks=None,
) -> RunInfo:
    """Run the image stage over the catalog; return its run."""
    section = project.file.images
    data_dir = project.data_dir
    store = ImageStore(data_dir / section.folder, data_dir)
    store.remove_partial_files()  # what a killed run was writing
    job = image_job(catalog, project, options)
    crawl = job.crawl
    total = count_images(catalog, job)
    executor = options.executor or project.file.executor.kind
    job.settings["executor"] = executor
    ray, processes = crawl_processes(project, executor, total)
    job.settings["processes"] = processes
    with RunTracker(
        catalog, "images", None, job.target, job.settings, hooks, exclusive="stage"
    ) as tracker:
        if total == 0:
            if progress is not None:
                progress.close()
            return tracker.finish(DONE, "nothing to fetch")
        if progress is not None:
            progress.set_total(total)
        tracker.counted_elsewhere = True  # each crawl commits its counts with its images
        job = replace(job, run_id=tracker.id)
        jobs = []
        for shard in range(processes):
            # the politeness settings hold for the run: each process gets its share
            crawl_share = replace(
                crawl,
                concurrency=max(1, share(section.concurrency, processes, shard)),
                per_host=max(1, share(section.per_host, processes, shard)),
            )
            limit = None if options.limit is None else share(options.limit, processes, shard)
            jobs.append(job.for_shard(shard, processes, crawl_share, limit))
        if ray is not None:
            from monalia.executors.ray_executor import run_crawls_on_ray

            return run_crawls_on_ray(catalog, tracker, jobs, project.file.executor, progress)
        return run_sharded_crawl(catalog, tracker, jobs, progress)


def image_job(catalog: Catalog, project: Project, options: ImageOptions) -> ImageJob:
    """The crawl job of this run, from the ``[images]`` table and the command's options."""
    section = project.file.images
    crawl = CrawlSettings(
        concurrency=section.concurrency,
        per_host=section.per_host,
        delay=section.delay,
        autothrottle=section.autothrottle,
        retries=section.retries,
        timeout=section.timeout,
        backoff=section.backoff,
        max_retry_after=section.max_retry_after,
        user_agent=section.user_agent,
        robots=section.robots,
        max_bytes=section.max_bytes,
    )
    return ImageJob(
        catalog=catalog.url,
        data_dir=str(project.data_dir),
        folder=section.folder,
        width=section.width,
        height=section.height,
        limits={
            "max_bytes": section.max_bytes,
            "max_pixels": section.max_pixels,
            "min_side": section.min_side,
            "max_aspect": section.max_aspect,
        },
        limit=options.limit,
        retry_failed=options.retry_failed,
        sources=list(options.sources),
        target=", ".join(options.sources) or None,
        crawl=crawl,
        url_policy=asdict(project.url_policy),
        trusted_hosts=configured_hosts(project),
        settings={
            "box": [section.width, section.height],
            "limit": options.limit,
            "retry_failed": options.retry_failed,
            "sources": list(options.sources),
            "concurrency": section.concurrency,
            "per_host": section.per_host,
        },
    )


def configured_hosts(project: Project) -> list[str]:
    """The hosts the project's sources were pointed at (``url`` or ``endpoint``)."""
    hosts = set()
    for instance in project.sources.values():
        try:
            host = instance.create().configured_host()
        except Exception:  # a source that cannot be made here trusts nothing
            continue
        if host:
            hosts.add(host)
    return sorted(hosts)


def crawl_processes(project: Project, executor: str, total: int) -> tuple[Any, int]:
    """The Ray cluster (None when local) and how many crawl processes share the work."""
    section = project.file.images
    ray = None
    if executor == "ray":
        from monalia.executors import ray_executor as cluster

        ray = cluster.connect(project.file.executor)
        cpus, _ = cluster.cluster_resources(ray)
        processes = project.file.executor.shards or max(1, cpus)
    elif section.processes:
        processes = section.processes
    else:  # one per CPU, but no process for less than its share of work
        processes = min(os.cpu_count() or 1, 4, -(-total // IMAGES_PER_PROCESS))
    return ray, max(1, min(processes, total))
