"""One line for why a request failed, and whether trying again later can change it."""

from __future__ import annotations

import re

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost
from twisted.python.failure import Failure

from monalia.harvesters.handlers import FileTooLarge
from monalia.net.http import mask_url

# Error answers reach the spider (to be recorded with their reason); redirects do not: the
# redirect middleware follows them
ERROR_STATUSES = list(range(400, 600))


def describe_failure(failure: Failure) -> tuple[str, bool]:
    """(reason, transient) for a request that failed without an HTTP answer."""
    error = failure.value
    if isinstance(error, DownloadTimeoutError):
        return f"timed out ({error})", True
    if isinstance(error, ResponseDataLossError):
        return "the answer was cut short (fewer bytes than announced)", True
    if isinstance(error, CannotResolveHostError):
        return "host not found", True
    if isinstance(error, DownloadConnectionRefusedError):
        return "connection refused", True
    if isinstance(error, ConnectionDone | ConnectionLost | ConnectError):
        return f"connection lost ({type(error).__name__})", True
    if isinstance(error, DownloadCancelledError):
        sizes = re.findall(r"\d+", str(error))
        if "max size" in str(error) and len(sizes) >= 2:
            return f"refused: {sizes[0]} bytes is over the size limit of {sizes[1]}", False
        text = str(error).split(" in request <")[0].strip()
        return f"refused: {text or 'the answer is larger than max_bytes'}", False
    if isinstance(error, CancelledError):
        # Scrapy cancels a download whose size is over DOWNLOAD_MAXSIZE
        text = str(error).strip()
        return f"refused: {text or 'the answer is larger than max_bytes'}", False
    if isinstance(error, HttpError) and 300 <= error.response.status < 400:
        # a redirect Scrapy would not follow: to another scheme, or past the hop limit
        location = error.response.headers.get("Location", b"").decode("latin-1").strip()
        scheme = location.split(":", 1)[0].lower() if ":" in location else ""
        why = f"a {scheme}: URL" if scheme and scheme not in ("http", "https") else "not followed"
        return f"not fetched: a redirect to {mask_url(location)[:200]!r} ({why})", False
    if isinstance(error, IgnoreRequest):
        return f"not fetched: {str(error).strip() or 'forbidden by robots.txt'}", False
    if isinstance(error, FileTooLarge):
        return f"refused: {error}", False
    if isinstance(error, FileNotFoundError):
        return f"no such file {error.filename}", False
    if isinstance(error, OSError) and "not a regular file" in str(error):
        return f"refused: {error}", False
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error}", True
    return f"{type(error).__name__}: {error}", True


def status_reason(status: int, url: str) -> tuple[str, bool]:
    """(reason, transient) for an HTTP error answer that retries did not change."""
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    transient = status >= 500 or status in (408, 425, 429)
    return f"HTTP {status} {phrase}".strip() + f" from {mask_url(url)}", transient
