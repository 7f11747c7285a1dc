"""A local OAI-PMH repository serving real responses (tests/fixtures/oai) page by page."""

from __future__ import annotations

import re
from pathlib import Path

from support.servers import ApiServer, Reply

FIXTURES = Path(__file__).parent.parent / "fixtures" / "oai"
XML = {"Content-Type": "text/xml; charset=utf-8"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sickle_chain() -> dict[str | None, bytes]:
    """Sickle's four-page ListRecords chain, by the resumption token that asks for each page
    (None: the first request). Its sanitised identifiers repeat on every page; each page gets
    its own, so the chain is a list of eight distinct records as a repository serves it."""
    pages: dict[str | None, bytes] = {}
    for number, token in enumerate(
        [None, "ListRecords2.xml", "ListRecords3.xml", "ListRecords4.xml"]
    ):
        body = fixture(f"sickle_ListRecords_oai_dc_page{number + 1}.xml")
        body = body.replace(
            b"oai:test.example.com:", f"oai:test.example.com:p{number + 1}-".encode()
        )
        pages[token] = body
    return pages


def list_records(
    records: list[bytes], token: str | None = None, date: str = "2026-11-30T12:00:00Z"
) -> bytes:
    """A ListRecords page holding `records` (each a <record> element's XML)."""
    resumption = f"<resumptionToken>{token}</resumptionToken>" if token else "<resumptionToken/>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        f"<responseDate>{date}</responseDate>"
        '<request verb="ListRecords">http://localhost/oai</request>'
        "<ListRecords>" + "".join(r.decode() for r in records) + resumption + "</ListRecords>"
        "</OAI-PMH>"
    ).encode()


def record_elements(body: bytes) -> list[bytes]:
    """The <record> elements of a response, as XML, with their namespace declarations."""
    text = body.decode()
    found = re.findall(r"<record>.*?</record>", text, flags=re.S)
    return [f.encode() for f in found]


class OaiServer(ApiServer):
    """Answers ListRecords from `pages` (by resumption token; None for the first request),
    Identify from the Riksantikvarieämbetet fixture, and records every request's arguments."""

    def __init__(self, pages: dict[str | None, bytes] | None = None):
        self.pages = pages if pages is not None else sickle_chain()
        self.requests: list[dict[str, str]] = []
        super().__init__(self.answer)

    @property
    def endpoint(self) -> str:
        return self.url + "/oai"

    def answer(self, path: str, params: dict[str, str]) -> Reply:
        self.requests.append(params)
        verb = params.get("verb")
        if verb == "Identify":
            return Reply(
                body=fixture("europeana-cloud_raa_Identify_day_granularity.xml"), headers=XML
            )
        if verb != "ListRecords":
            return Reply(status=400, body="unknown verb")
        token = params.get("resumptionToken")
        if token is not None and token not in self.pages:
            return Reply(body=fixture("sickle_error_badResumptionToken.xml"), headers=XML)
        return Reply(body=self.pages[token], headers=XML)
