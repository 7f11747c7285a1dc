"""Retries that are polite: a Retry-After header is obeyed, other retries back off."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet import reactor, task

from monalia.net.http import parse_retry_after


class PoliteRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, waiting before each: as long as the server's ``Retry-After`` says, or
    an exponential backoff with full jitter. A Retry-After longer than
    ``MONALIA_MAX_RETRY_AFTER`` is not waited for: the request fails with that reason."""

    def __init__(self, settings):
        super().__init__(settings)
        self.backoff = settings.getfloat("MONALIA_BACKOFF", 1.0)
        self.max_backoff = settings.getfloat("MONALIA_MAX_BACKOFF", 60.0)
        self.max_retry_after = settings.getfloat("MONALIA_MAX_RETRY_AFTER", 600.0)

    @staticmethod
    async def _sleep(seconds: float) -> None:
        # a Twisted timer: works under any reactor Scrapy runs
        await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))

    def _pause(self, request: Request) -> float:
        tries = request.meta.get("retry_times", 1)
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (tries - 1)))

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        wait = parse_retry_after(response.headers.get("Retry-After", b"").decode("latin-1"))
        if wait is not None and wait > self.max_retry_after:
            request.meta["monalia_gave_up"] = f"the server asked to wait {wait:.0f} s"
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._sleep(wait if wait is not None else self._pause(retry))
        return retry

    async def process_exception(self, request: Request, exception: Exception):
        if request.meta.get("dont_retry", False) or not isinstance(
            exception, self.exceptions_to_retry
        ):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await self._sleep(self._pause(retry))
        return retry


class UrlPolicyMiddleware:
    """Every request a crawl makes, redirects included, checked against the project's URL
    policy (`monalia.net.url_policy`) before it leaves: a refused one fails its item with the
    reason. Host names are resolved (once per host) so that a name pointing at a private or
    metadata address is refused like the address itself."""

    def __init__(self, settings, crawler=None):
        from monalia.net.url_policy import UrlPolicy

        self.policy = UrlPolicy(**settings.getdict("MONALIA_URL_POLICY"))
        # the hosts the user configured (a source's url or endpoint): they may be private
        self.trusted_hosts = frozenset(settings.getlist("MONALIA_TRUSTED_HOSTS"))
        self.start_url = settings.get("MONALIA_START_URL") or None
        # refusals of requests no errback will report: the item pipeline counts them as failed
        self.unreported: list[tuple[str, str]] = []
        if crawler is not None:
            crawler.monalia_refused = self.unreported

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings, crawler)

    def process_request(self, request: Request):
        from scrapy.exceptions import IgnoreRequest

        from monalia.net.url_policy import UrlRefused

        if self.start_url is not None and request.url == self.start_url:
            return None  # the URL the user configured: their own choice, a local file included
        try:
            host = urlsplit(request.url).hostname
        except ValueError:
            host = None  # not a URL: the policy's check says so
        try:
            self.policy.check(
                request.url,
                local_source=True,
                trusted_host=host if host in self.trusted_hosts else None,
                resolve=True,
            )
        except UrlRefused as exc:
            hops = request.meta.get("redirect_times", 0)
            where = f" (after {hops} redirect{'s' if hops > 1 else ''})" if hops else ""
            reason = f"not fetched: {exc}{where}"
            if request.errback is None:
                self.unreported.append((request.url, reason))
            raise IgnoreRequest(reason.removeprefix("not fetched: ")) from None
        return None
