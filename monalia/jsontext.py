"""JSON read and written with orjson, several times faster than the standard library on the
kilobyte-sized payloads sources return. What orjson refuses (integers beyond 64 bits, keys that
are not strings, NaN in input text) goes through the standard library, so that the results and
the errors stay those of `json`."""

from __future__ import annotations

import json
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
# JSON text placed as it is inside a value that `canonical` writes (it must itself be canonical)
Fragment = orjson.Fragment


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON text; raises `json.JSONDecodeError` (or `UnicodeDecodeError`) as `json` does."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII characters kept as they are; NaN and infinities become null."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def canonical(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no spaces: the same text for the same value, as
    ``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))`` writes it (floats
    in exponent form aside). Raises `TypeError` or `ValueError` for what JSON cannot hold."""
    try:
        return orjson.dumps(value, option=_SORTED)
    except TypeError:
        return json.dumps(
            value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
