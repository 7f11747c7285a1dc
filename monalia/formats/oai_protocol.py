"""The OAI-PMH protocol through Sickle, its HTTP on monalia's client.

Apart from the oai-pmh source so that loading the plugin (`monalia plugins`, reading a project)
does not import Sickle and what it brings (requests, lxml).
"""

from __future__ import annotations

from typing import Any

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


class SafeSickle(Sickle):
    """Sickle whose requests go through monalia's HTTP client; a page that is not well-formed
    XML (a truncated body) is retried like a failed request, then reported."""

    def __init__(self, endpoint: str, client: HttpClient):
        super().__init__(endpoint, max_retries=0)
        self.client = client

    def _request(self, kwargs: dict[str, Any]):
        return self.client.request("GET", self.endpoint, params=kwargs, parse=_parsed)


def _parsed(response: Any) -> Any:
    try:
        response.parsed = etree.fromstring(response.content, parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    return response
