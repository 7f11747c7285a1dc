"""Every configured secret, masked by its value wherever text leaves the process.

A secret is whatever the user configured as one (a password or API key read from the
environment, the catalog URL's password, the workbench token), whatever it looks like: a key
such as ``KEY/abc123xyz`` is masked as surely as one that looks random. Messages, log lines,
stored run errors and stored payloads pass through `mask` before they are shown or kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any
from urllib.parse import quote, quote_plus

SHORTEST = 4  # a shorter value would mask ordinary text: it is left unmasked
_lock = threading.Lock()
_secrets: set[str] = set()
_forms: tuple[str, ...] = ()


def remember(value: str | None) -> None:
    """Mask `value` from now on in this process (with its URL- and JSON-escaped spellings)."""
    global _forms
    if not value or len(value) < SHORTEST:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        forms = set(_forms) | spellings(value)
        # longest first, so that a spelling containing another is masked whole
        _forms = tuple(sorted(forms, key=len, reverse=True))


def spellings(secret: str) -> set[str]:
    """The ways `secret` may be written where it leaves the process: as is, URL-encoded, and
    inside a JSON string (escaped, ``/`` escaped as ``\\/`` or not, non-ASCII escaped or not)."""
    escaped = json.dumps(secret)[1:-1]
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    return {form for form in forms if form}


def forget_all() -> None:
    """Forget every secret (tests that set several in turn)."""
    global _forms
    with _lock:
        _secrets.clear()
        _forms = ()


def mask(text: str, extra: tuple[str, ...] | list[str] = ()) -> str:
    """`text` with every remembered secret (and each of `extra`) replaced by ``***``."""
    if not isinstance(text, str):
        return text
    for secret in (*_forms, *extra):
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def mask_json(body: bytes) -> bytes:
    """JSON text with every remembered secret replaced by ``***`` inside its strings."""
    if not _forms:
        return body
    for secret in _forms:
        encoded = secret.encode("utf-8")
        if encoded in body:
            body = body.replace(encoded, b"***")
    return body


def mask_value(value: Any) -> Any:
    """A JSON-like value with every string in it (keys too) masked."""
    if not _forms:
        return value
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_value(key): mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(item) for item in value]
    return value


def install_log_masking() -> None:
    """Mask secrets in every log record this process makes, whichever logger or handler."""
    make = logging.getLogRecordFactory()
    if getattr(make, "masks_secrets", False):
        return

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if _forms:
            # a record whose arguments do not format is left to logging to report
            with contextlib.suppress(Exception):
                record.msg, record.args = mask(record.getMessage()), None
        return record

    masked_record.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked_record)
