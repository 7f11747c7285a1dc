"""Helpers for sources that read loosely shaped input (JSON, RDF): values to strings, years, terms."""

from __future__ import annotations

import re
from typing import Any

from monalia.api.records import ImageRef, Subject
from monalia.errors import RecordError

_YEAR = re.compile(r"(?<!\d)(-?\d{3,4})(?!\d)")
_IRI_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$|^urn:\S+$")


def text(value: Any, what: str) -> str | None:
    """A single text value: strings kept, numbers turned to text, the first of a list."""
    if type(value) is str:  # the common case first: called for every field of every record
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, list):
        values = [v for v in value if v not in (None, "")]
        return text(values[0], what) if values else None
    if isinstance(value, bool | dict):
        raise RecordError(f"{what} must be text, not {type(value).__name__}")
    value = str(value).strip()
    return value or None


def texts(value: Any, what: str) -> list[str]:
    """A list of text values from a string, a number or a list of them."""
    if type(value) is str:
        value = value.strip()
        return [value] if value else []
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        item_text = text(item, what)
        if item_text:
            out.append(item_text)
    return out


def year(value: Any, what: str) -> int | None:
    """A year from an integer or the first 3-4 digit number of a text ("vers 1503" -> 1503)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{what} must be a year, not {value!r}")
    if isinstance(value, int):
        return value
    if type(value) is str and 3 <= len(value) <= 4 and value.isdecimal():
        return int(value)  # a bare year, as most are: what the pattern would find
    match = _YEAR.search(str(value))
    if match is None:
        raise RecordError(f"{what} {value!r} holds no year")
    return int(match.group(1))


def years_of(date_text: str | None) -> tuple[int | None, int | None]:
    """The first and last year mentioned in a free-text date, if any."""
    if not date_text:
        return None, None
    if 3 <= len(date_text) <= 4 and date_text.isdecimal():
        return int(date_text), int(date_text)  # a bare year, as most are
    found = [int(y) for y in _YEAR.findall(date_text)]
    if not found:
        return None, None
    return min(found), max(found)


def looks_like_iri(value: str) -> bool:
    return bool(_IRI_LIKE.match(value))


def images(value: Any, what: str = "images") -> list[ImageRef]:
    """Image references from URLs or objects {url, iiif_service, is_main}; the first is main."""
    out: list[ImageRef] = []
    for i, item in enumerate(value if isinstance(value, list) else [value] if value else []):
        if isinstance(item, str):
            out.append(ImageRef(url=item.strip(), is_main=i == 0))
        elif isinstance(item, dict) and item.get("url"):
            out.append(
                ImageRef(
                    url=str(item["url"]).strip(),
                    iiif_service=text(item.get("iiif_service"), f"{what}.iiif_service"),
                    is_main=bool(item.get("is_main", i == 0)),
                )
            )
        else:
            raise RecordError(f"{what}[{i}] is neither a URL nor an object with a url")
    return out


def subjects(value: Any, field: str | None = None, lang: str | None = None) -> list[Subject]:
    """Subject terms from strings (an IRI is a URI, anything else a label) or objects."""
    out: list[Subject] = []
    for i, item in enumerate(value if isinstance(value, list) else [value] if value else []):
        if isinstance(item, str):
            item = item.strip()
            if not item:
                continue
            if looks_like_iri(item):
                out.append(Subject(uri=item, field=field))
            else:
                out.append(Subject(label=item, lang=lang, field=field))
        elif isinstance(item, dict):
            out.append(
                Subject(
                    uri=text(item.get("uri"), f"subjects[{i}].uri"),
                    label=text(item.get("label"), f"subjects[{i}].label"),
                    lang=text(item.get("lang"), f"subjects[{i}].lang") or lang,
                    field=text(item.get("field"), f"subjects[{i}].field") or field,
                )
            )
        else:
            raise RecordError(f"subjects[{i}] is neither text nor an object")
    return out
