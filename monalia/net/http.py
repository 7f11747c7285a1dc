"""One HTTP layer for every source: timeouts, retries with backoff, Retry-After, politeness.

Every request a source makes goes through a `RetryPolicy`: connection errors, timeouts, 429 and
5xx answers, truncated bodies and bodies that do not parse are retried with exponential backoff and
full jitter; a `Retry-After` header is obeyed (never retried sooner); a per-host rate limit spaces
requests out; after the last try the error names the URL (secrets masked) and the status.
`HttpClient` wraps requests; `SparqlClient` speaks the SPARQL 1.1 Protocol through it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from pydantic import Field

from monalia import jsontext, masking
from monalia.api.plugin import PluginSettings
from monalia.errors import SourceUnavailable
from monalia.net.url_policy import UrlPolicy, UrlRefused
from monalia.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import requests

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = f"monalia/{__version__} (+https://github.com/monalia/monalia)"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Query parameters whose values are secrets: masked in every message and log line.
SECRET_PARAMS = frozenset(
    {"wskey", "apikey", "api_key", "key", "token", "access_token", "password"}
)
STATUS_HINTS = {
    401: "the service refused the credentials (check the API key)",
    403: "the service refused access",
    404: "no such resource",
}


class HttpSettings(PluginSettings):
    """How a source talks to its service: the ``[sources.X.settings.http]`` table."""

    timeout: float = Field(30.0, gt=0)  # seconds to connect, and between bytes of the answer
    retries: int = Field(5, ge=0)  # further tries after the first
    backoff: float = Field(1.0, ge=0)  # seconds; doubled each try, jittered
    max_backoff: float = Field(60.0, ge=0)  # the longest wait between two tries, in seconds
    max_retry_after: float = Field(600.0, ge=0)  # a longer Retry-After fails instead of waiting
    rate_limit: float | None = Field(None, gt=0)  # requests per second to one host; None: no limit
    user_agent: str = USER_AGENT  # the User-Agent header
    max_bytes: int = Field(256 * 1024 * 1024, ge=1)  # a longer answer is refused while reading
    max_redirects: int = Field(5, ge=0)  # each hop checked by the project's URL policy


class HttpError(SourceUnavailable):
    """A request failed for good: after every retry, or with an answer retrying cannot change."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryableError(Exception):
    """A failure worth trying again; `wait` is the server's Retry-After, when it sent one."""

    def __init__(self, reason: str, status: int | None = None, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait


def mask_url(url: str, secrets: Iterable[str] = ()) -> str:
    """The URL with secret query values and user info replaced by ***."""
    parts = urlsplit(url)
    query = urlencode(
        [
            (k, "***" if k.lower() in SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*:/,[]",
    )
    netloc = parts.netloc.rsplit("@", 1)[-1]
    masked = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return mask_text(masked, secrets)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with `secrets` and every secret the project configured replaced by ``***``."""
    return masking.mask(text, tuple(secret for secret in secrets if secret))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HostRateLimiter:
    """Spaces requests to one host at least 1/rate seconds apart, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, host: str, rate: float | None, sleep: Callable[[float], None]) -> None:
        if not rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + 1.0 / rate
        if start > now:
            sleep(start - now)


RATE_LIMITER = HostRateLimiter()


@dataclass
class RetryPolicy:
    """Retries one call with backoff; shared by every client so that all sources behave alike."""

    settings: HttpSettings = field(default_factory=HttpSettings)
    secrets: tuple[str, ...] = ()
    sleep: Callable[[float], None] = time.sleep
    limiter: HostRateLimiter = RATE_LIMITER
    waited: float = 0.0  # seconds spent waiting for retries (reported on the run)
    retried: int = 0

    def delay(self, attempt: int, server_wait: float | None) -> float:
        """Exponential backoff with full jitter, never shorter than the server asked."""
        ceiling = min(self.settings.max_backoff, self.settings.backoff * (2**attempt))
        jittered = random.uniform(ceiling / 2, ceiling) if ceiling else 0.0
        return max(jittered, server_wait or 0.0)

    def call(self, method: str, url: str, attempt_fn: Callable[[], T]) -> T:
        """Run `attempt_fn` until it returns; it raises `RetryableError` for a transient failure."""
        host = urlsplit(url).netloc
        shown = mask_url(url, self.secrets)
        tries = self.settings.retries + 1
        for attempt in range(tries):
            self.limiter.wait(host, self.settings.rate_limit, self.sleep)
            try:
                return attempt_fn()
            except RetryableError as exc:
                reason = mask_text(exc.reason, self.secrets)
                if exc.wait is not None and exc.wait > self.settings.max_retry_after:
                    raise HttpError(
                        f"{method} {shown}: {reason}; the server asks to wait {exc.wait:.0f} s, "
                        f"more than max_retry_after ({self.settings.max_retry_after:.0f} s)",
                        exc.status,
                    ) from None
                if attempt + 1 >= tries:
                    raise HttpError(
                        f"{method} {shown} failed after {tries} tries: {reason}", exc.status
                    ) from None
                pause = self.delay(attempt, exc.wait)
                log.warning(
                    "%s %s: %s; try %d of %d in %.1f s",
                    method,
                    shown,
                    reason,
                    attempt + 2,
                    tries,
                    pause,
                )
                self.retried += 1
                self.waited += pause
                self.sleep(pause)
        raise AssertionError("unreachable")


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _status_reason(status: int, reason: str | None) -> str:
    return f"HTTP {status} {reason or ''}".rstrip()


class HttpClient:
    """A requests session that follows the retry policy; answers are checked before returning."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        secrets: Iterable[str] = (),
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: UrlPolicy | None = None,
    ):
        self.settings = settings or HttpSettings()
        self.url_policy = policy or UrlPolicy()
        self.policy = RetryPolicy(self.settings, tuple(s for s in secrets if s), sleep)
        import requests  # here, not at the top: reading a project does not need it

        self.session = requests.Session()
        self.session.headers["User-Agent"] = self.settings.user_agent
        self.session.headers.update(headers or {})
        self.requests_made = 0
        self._proxies_by_origin: dict[tuple[str, str], dict[str, str]] = {}
        self._process = os.getpid()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        parse: Callable[[requests.Response], T] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> T | requests.Response:
        """One request with retries; `parse` turns the answer into a value and may raise
        `ValueError` for a malformed body, which is retried like a truncated one. A `data`
        body is sent again on each try, so it must be bytes or a dict, not a stream."""
        import requests

        if self._process != os.getpid():
            self._own_connections()
        prepared = self.session.prepare_request(
            requests.Request(method, url, params=params, data=data, headers=headers)
        )
        full_url = prepared.url or url

        def attempt() -> Any:
            self.requests_made += 1
            try:
                response = self._send(prepared, **kwargs)
            except requests.Timeout:
                raise RetryableError(f"no answer within {self.settings.timeout:g} s") from None
            except requests.exceptions.ChunkedEncodingError as exc:
                raise RetryableError(f"the answer was cut short ({_first_line(exc)})") from None
            except requests.ConnectionError as exc:
                raise RetryableError(f"connection failed ({_first_line(exc)})") from None
            status = response.status_code
            if status in RETRY_STATUSES:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                raise RetryableError(_status_reason(status, response.reason), status, wait)
            if status >= 400:
                hint = STATUS_HINTS.get(status)
                message = f"{method} {mask_url(full_url, self.policy.secrets)}: " + _status_reason(
                    status, response.reason
                )
                raise HttpError(f"{message} ({hint})" if hint else message, status)
            if parse is None:
                return response
            try:
                return parse(response)
            except ValueError as exc:
                raise RetryableError(f"malformed answer: {_first_line(exc)}", status) from None

        return self.policy.call(method, full_url, attempt)

    def _send(self, prepared: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send, following redirects by hand so that each hop is checked by the URL policy (the
        configured host is trusted; another host is not), and read the body in pieces, refusing
        it past `max_bytes`."""
        trusted = (urlsplit(prepared.url or "").hostname or "").lower()
        try:
            self.url_policy.check(prepared.url or "", trusted_host=trusted)
        except UrlRefused as exc:
            raise HttpError(f"{mask_url(prepared.url or '', self.policy.secrets)}: {exc}") from None
        hops = 0
        while True:
            response = self.session.send(
                prepared,
                timeout=self.settings.timeout,
                allow_redirects=False,
                stream=True,
                **({"proxies": self._proxies(prepared)} | kwargs),
            )
            if not response.is_redirect:
                break
            location = response.headers.get("Location", "")
            response.close()
            hops += 1
            if hops > self.settings.max_redirects:
                raise HttpError(
                    f"more than {self.settings.max_redirects} redirects "
                    f"(max_redirects) from {mask_url(prepared.url or '', self.policy.secrets)}"
                )
            target = urljoin(prepared.url or "", location)
            try:
                self.url_policy.check(target, trusted_host=trusted, resolve=True)
            except UrlRefused as exc:
                raise HttpError(
                    f"a redirect to {mask_url(target, self.policy.secrets)[:200]} is not "
                    f"followed: {exc}"
                ) from None
            moved = origin(target) != origin(prepared.url or "")
            prepared = prepared.copy()
            if moved:
                # credentials stay with their origin: another scheme (https to http), host or
                # port does not get them, and they are not sent again on later hops
                for header in ("Authorization", "Proxy-Authorization", "Cookie"):
                    prepared.headers.pop(header, None)
            prepared.prepare_url(target, None)
            if response.status_code == 303:
                prepared.method, prepared.body = "GET", None
        self._read_bounded(response)
        return response

    def _own_connections(self) -> None:
        """In a process forked from the one that made the client (a harvest's parsing
        processes): new connection pools, so that no two processes read answers from one
        connection. The old pools are left alone, not closed: their sockets are the other
        process's too."""
        self._process = os.getpid()
        for adapter in self.session.adapters.values():
            if hasattr(adapter, "init_poolmanager") and hasattr(adapter, "__getstate__"):
                adapter.__setstate__(adapter.__getstate__())  # what unpickling one does

    def _proxies(self, prepared: requests.PreparedRequest) -> dict[str, str]:
        """The proxies of the request's origin (the session's, and the environment's unless
        its ``no_proxy`` leaves the host out), found once per origin: requests looks for them
        in the environment on every request, a walk of every variable that costs more than
        reading a 100 KB answer."""
        from requests.utils import resolve_proxies

        parts = urlsplit(prepared.url or "")
        origin_key = (parts.scheme.lower(), parts.netloc.lower())
        found = self._proxies_by_origin.get(origin_key)
        if found is None:
            found = resolve_proxies(prepared, self.session.proxies, self.session.trust_env)
            self._proxies_by_origin[origin_key] = found
        return found

    def _read_bounded(self, response: requests.Response) -> None:
        limit = self.settings.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise HttpError(
                f"the answer announces {int(declared):,} bytes, more than max_bytes ({limit:,})"
            )
        parts, size = [], 0
        for chunk in response.iter_content(1 << 16):
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                response.close()
                raise HttpError(f"the answer is larger than max_bytes ({limit:,} bytes); cut off")
        response._content = b"".join(parts)
        response._content_consumed = True

    def get(self, url: str, params=None, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, params=params, **kwargs)

    def get_json(self, url: str, params=None, scrub_secrets: bool = False, **kwargs: Any) -> Any:
        """GET and decode JSON; a body that is not JSON is retried, then reported.

        `scrub_secrets`: the client's secrets are replaced by ``***`` in the body before it is
        decoded, for APIs that echo the key back in their answers (one pass over the bytes, where
        a walk of the decoded payload would cost more than the decoding). A secret that JSON
        would escape cannot be found that way: the caller scrubs the payload itself when
        `scrubs_bodies` is false."""
        parse = _json_body
        if scrub_secrets and self.policy.secrets:
            spellings = sorted(
                {
                    form.encode("utf-8")
                    for secret in self.policy.secrets
                    for form in masking.spellings(secret)
                },
                key=len,
                reverse=True,
            )

            def parse(response: requests.Response) -> Any:
                body = response.content
                for spelling in spellings:
                    body = body.replace(spelling, b"***")
                return _json_body(body)

        return self.request("GET", url, params=params, parse=parse, **kwargs)

    @property
    def scrubs_bodies(self) -> bool:
        """Whether every secret is found in a JSON body however an encoder writes it (plain
        ASCII with no control character: quotes, backslashes and slashes have known escapes),
        so that replacing its spellings in the bytes finds it; else the caller masks the
        decoded payload."""
        return all(_JSON_PLAIN.fullmatch(secret) for secret in self.policy.secrets)


_JSON_PLAIN = re.compile(r"[\x20-\x7e]*")


def _json_body(response: requests.Response | bytes) -> Any:
    body = response if isinstance(response, bytes) else response.content
    try:
        return jsontext.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at byte {exc.pos})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"<urllib3\.[^>]*>", "", text)
    incomplete = re.search(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)", text)
    if incomplete:
        return f"{incomplete.group(1)} bytes received, {incomplete.group(2)} more announced"
    return text.splitlines()[0][:200]


class SparqlClient:
    """SELECT queries over the SPARQL 1.1 Protocol (a form POST, JSON results), through
    `HttpClient`: the URL policy checks the endpoint and every redirect hop (http and https
    only), credentials stay with the endpoint's origin, answers are bounded by ``max_bytes``,
    and failures are retried like any other request."""

    ACCEPT = "application/sparql-results+json, application/json;q=0.5"

    def __init__(
        self,
        endpoint: str,
        settings: HttpSettings | None = None,
        user: str | None = None,
        password: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: UrlPolicy | None = None,
    ):
        self.endpoint = endpoint
        self.settings = settings or HttpSettings()
        self.http = HttpClient(
            self.settings,
            secrets=[password or ""],
            headers={"Accept": self.ACCEPT},
            sleep=sleep,
            policy=policy,
        )
        if user is not None:
            self.http.session.auth = (user, password or "")
        self.policy = self.http.policy

    @property
    def queries_made(self) -> int:
        return self.http.requests_made

    def close(self) -> None:
        self.http.close()

    def select(self, query: str) -> list[dict[str, Any]]:
        """The result bindings of a SELECT query, as SPARQL JSON term objects."""
        try:
            return self.http.request(
                "POST",
                self.endpoint,
                data={"query": query},  # a form: long VALUES blocks do not fit in a URL
                parse=_bindings,
            )
        except HttpError as exc:
            if exc.status == 400:
                raise HttpError(
                    f"SPARQL {mask_url(self.endpoint)}: the endpoint rejected the query ({exc})",
                    400,
                ) from None
            raise


def _bindings(response: requests.Response) -> list[dict[str, Any]]:
    try:
        bindings = jsontext.loads(response.content)["results"]["bindings"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed SPARQL results ({_first_line(exc)})") from None
    if not isinstance(bindings, list):
        raise ValueError("malformed SPARQL results (bindings is not a list)")
    return bindings
