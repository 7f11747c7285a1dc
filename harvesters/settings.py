"""The Scrapy settings monalia's crawls run with, built from the project file."""

from __future__ import annotations

from typing import Any

from monalia.net.http import USER_AGENT

MIDDLEWARE = "monalia.harvesters.middlewares.PoliteRetryMiddleware"


def crawl_settings(
    *,
    concurrency: int,
    per_host: int,
    delay: float,
    autothrottle: bool,
    retries: int,
    timeout: float,
    backoff: float,
    max_retry_after: float,
    user_agent: str | None,
    robots: bool,
    max_bytes: int | None = None,
    pipeline: str,
    url_policy: dict[str, Any] | None = None,
    trusted_hosts: list[str] | None = None,
    start_url: str | None = None,
) -> dict[str, Any]:
    """Scrapy settings for one crawl; `pipeline` is the item pipeline that writes the catalog."""
    settings: dict[str, Any] = {
        "BOT_NAME": "monalia",
        "USER_AGENT": user_agent or USER_AGENT,
        "ROBOTSTXT_OBEY": robots,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_host,
        "DOWNLOAD_DELAY": delay,
        "DOWNLOAD_TIMEOUT": timeout,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,  # a cut answer is an error, never a short image
        # AutoThrottle aims at `per_host` requests in flight per host and backs off as a host's
        # answers slow down or it answers 429/503; it starts fast, the first answers set the
        # pace. monalia's reads the network's latency, not the crawl's own CPU time
        # (monalia.harvesters.throttle).
        "AUTOTHROTTLE_ENABLED": autothrottle,
        "EXTENSIONS": {
            "scrapy.extensions.throttle.AutoThrottle": None,
            "monalia.harvesters.throttle.NetworkPacing": 0,
        },
        # twice the cap: a healthy host is held by the cap (`per_host`), not by a delay that
        # paces it at exactly per_host / latency, which every other cost of a request would
        # push below the bound; a host that slows down still gets a longer delay
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(2 * per_host),
        "AUTOTHROTTLE_START_DELAY": max(delay, 0.01),
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "RETRY_ENABLED": retries > 0,
        "RETRY_TIMES": retries,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "RETRY_GIVE_UP_LOG_LEVEL": "DEBUG",  # the pipeline records every failure on its item
        "MONALIA_BACKOFF": backoff,
        "MONALIA_MAX_RETRY_AFTER": max_retry_after,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            MIDDLEWARE: 550,
            # after the redirect middleware (600 runs before it on the way out): every hop
            "monalia.harvesters.middlewares.UrlPolicyMiddleware": 650,
            # work per request that monalia's fetches have no use for
            "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
        },
        "SPIDER_MIDDLEWARES": {
            "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
            "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
        },
        "STATS_DUMP": False,
        "ITEM_PIPELINES": {pipeline: 300},
        # Scrapy starts this many tasks for each response's output whatever its size; a page
        # or an image gives one item, and 100 idle tasks per response cost more than the fetch
        "CONCURRENT_ITEMS": 4,
        "COOKIES_ENABLED": False,
        "MONALIA_URL_POLICY": dict(url_policy or {}),
        "MONALIA_TRUSTED_HOSTS": list(trusted_hosts or []),
        "MONALIA_START_URL": start_url,
        "REDIRECT_MAX_TIMES": (url_policy or {}).get("max_redirects", 5),
        # file: URLs read without trusting them (regular files, never past the size limit)
        "DOWNLOAD_HANDLERS": {"file": "monalia.harvesters.handlers.BoundedFileDownloadHandler"},
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
    }
    if max_bytes is not None:
        settings["DOWNLOAD_MAXSIZE"] = max_bytes
        settings["DOWNLOAD_WARNSIZE"] = 0
    return settings
