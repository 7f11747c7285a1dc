"""The OAI-PMH protocol through Sickle, its HTTP on monalia's client.

Apart from the oai-pmh source so that loading the plugin (`monalia plugins`, reading a project)
does not import Sickle and what it brings (requests, lxml).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from lxml import etree
from sickle import Sickle, oaiexceptions

from monalia.formats.xml_records import parser
from monalia.net.http import HttpClient

# every error code Sickle knows (each its own exception class)
OAI_ERRORS = tuple(
    value
    for value in vars(oaiexceptions).values()
    if isinstance(value, type) and issubclass(value, Exception)
)


class PageFacts(NamedTuple):
    """What reading the next page needs from a ListRecords page: its resumption token (None
    on the last page) and its response date."""

    token: str | None
    response_date: str


_NAME = rb"(?:[A-Za-z_][\w.-]*:)?"  # an element name's prefix, if any
# an ordinary page begins with the response date and ends with its last record, the token of
# the next page (or an empty one, or none) and the closing tags, with nothing else between:
# read from these two ends, the page needs no parsing to know what to read next
_HEAD = re.compile(
    rb"\A(?:<\?xml[^>]*\?>)?\s*<"
    + _NAME
    + rb"OAI-PMH\b[^<>]*>\s*<"
    + _NAME
    + rb"responseDate\s*>([^<&]*)</"
    + _NAME
    + rb"responseDate\s*>"
)
_TAIL = re.compile(
    rb"</"
    + _NAME
    + rb"record\s*>\s*(?:<"
    + _NAME
    + rb"resumptionToken\b[^<>]*?(?:/>|>([^<&]*)</"
    + _NAME
    + rb"resumptionToken\s*>)\s*)?</"
    + _NAME
    + rb"ListRecords\s*>\s*</"
    + _NAME
    + rb"OAI-PMH\s*>\s*\Z"
)
_DECLARED = re.compile(rb"<\?xml[^>]*encoding\s*=\s*[\"']([^\"']*)", re.IGNORECASE)
_TAIL_BYTES = 8192  # the tail searched: the token and the closing tags, with room to spare


def page_facts(content: bytes) -> PageFacts | None:
    """The token and date of an ordinary ListRecords page read from its two ends, without
    parsing it: the page is parsed once, in the process that reads its records, which checks
    that it says the same. None for any other answer (an error, an empty list, a token with an
    entity, another encoding, anything between the last record and the closing tags): parsed
    whole."""
    head = content[:_TAIL_BYTES]
    declared = _DECLARED.match(head)
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"us-ascii"):
        return None
    date = _HEAD.match(head)
    if date is None:
        return None
    tail = _TAIL.search(content, max(0, len(content) - _TAIL_BYTES))
    if tail is None:
        return None
    token = (tail.group(1) or b"").strip() or None
    try:
        return PageFacts(
            token.decode("utf-8") if token is not None else None,
            date.group(1).decode("utf-8").strip(),
        )
    except UnicodeDecodeError:
        return None


class SafeSickle(Sickle):
    """Sickle whose requests go through monalia's HTTP client; a page that is not well-formed
    XML (a truncated body) is retried like a failed request, then reported."""

    def __init__(self, endpoint: str, client: HttpClient):
        super().__init__(endpoint, max_retries=0)
        self.client = client

    def _request(self, kwargs: dict[str, Any]):
        return self.client.request("GET", self.endpoint, params=kwargs, parse=_parsed)

    def list_page(self, params: dict[str, str]) -> Any:
        """A ListRecords answer with `facts` (`page_facts`) when its text tells them, else
        `parsed` (its root element, as every other answer has it)."""
        return self.client.request(
            "GET", self.endpoint, params={"verb": "ListRecords", **params}, parse=_list_page
        )


def _list_page(response: Any) -> Any:
    response.facts = page_facts(response.content)
    return _parsed(response) if response.facts is None else response


def _parsed(response: Any) -> Any:
    try:
        response.parsed = etree.fromstring(response.content, parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    return response
