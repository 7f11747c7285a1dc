"""Reading ``file:`` URLs for a crawl without trusting them: only regular files, and never more
than the size limit in memory (Scrapy's own handler reads the whole file, so ``/dev/zero``
would grow the process until the kernel killed it)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.http import Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.asyncio import run_in_thread
from w3lib.url import file_uri_to_path

CHUNK = 1 << 20


class FileTooLarge(OSError):
    """A local file over the size limit: refused, not read."""


class BoundedFileDownloadHandler(BaseDownloadHandler):
    """Scrapy download handler for ``file:`` URLs that reads at most ``DOWNLOAD_MAXSIZE``."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.max_bytes = crawler.settings.getint("DOWNLOAD_MAXSIZE") or None

    async def download_request(self, request) -> Response:
        return await run_in_thread(self._read, request)

    def _read(self, request) -> Response:
        path = Path(file_uri_to_path(request.url))
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise (
                    IsADirectoryError(f"{path} is not a regular file")
                    if stat.S_ISDIR(mode)
                    else OSError(f"{path} is not a regular file (a device, a pipe or a socket)")
                )
            limit = self.max_bytes
            parts, size = [], 0
            while chunk := handle.read(CHUNK):
                parts.append(chunk)
                size += len(chunk)
                if limit is not None and size > limit:
                    raise FileTooLarge(
                        f"{path} is larger than max_bytes ({limit:,} bytes); not read"
                    )
        body = b"".join(parts)
        cls = responsetypes.from_args(filename=str(path), body=body)
        return cls(url=request.url, body=body)
