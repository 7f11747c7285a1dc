"""Source: an OAI-PMH repository, the protocol most libraries, archives and museums publish
their catalogues through.

Sickle speaks the protocol (the requests, resumption tokens, error codes, headers); its HTTP
goes through monalia's shared client (retries, Retry-After, per-host rate limits), and every
page is parsed once, by a parser that expands no entity and touches no network. Each record's
metadata is read by the metadata format named by ``metadata_prefix`` (``oai_dc``, ``edm``,
``lido``, or one a package registers).

- A run resumes inside the list: the checkpoint holds the resumption token of the page being
  read and how many of its records are stored. An expired token starts the list again.
- Incremental harvests: a complete run keeps the repository's response date as the bookmark;
  the next run asks only for what changed ``from`` it (``--since DATE`` overrides it).
- Deleted records (``status="deleted"``) are marked deleted in the catalog, not dropped.
- ``noRecordsMatch`` is an empty harvest; any other OAI-PMH error fails the run with its code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

from lxml import etree
from pydantic import Field

from monalia import hookimpl
from monalia.api.metadata_format import MetadataFormat, ReadOptions
from monalia.api.plugin import PluginSettings
from monalia.api.records import Record
from monalia.api.registry import default_registry
from monalia.api.source import RawItem, Source, SourceState
from monalia.errors import ConfigError, PluginError, RecordError, SourceUnavailable
from monalia.formats.xml_records import as_xml_text, parser
from monalia.net.http import HttpClient, HttpSettings

OAI = "{http://www.openarchives.org/OAI/2.0/}"
log = logging.getLogger(__name__)


class OaiPmhSettings(PluginSettings):
    url: str  # the repository's base URL
    metadata_prefix: str = "oai_dc"  # also picks the metadata format that reads the records
    set: str | None = None  # only this set (setSpec)
    until: str | None = None  # only records changed up to this date
    # how `from` dates are written: "auto" asks the repository (Identify) when one is needed
    granularity: Literal["auto", "day", "seconds"] = "auto"
    languages: list[str] = Field(default_factory=lambda: ["en"])  # preferred label languages
    base: str | None = None  # resolves relative IRIs in the metadata (EDM rdf:about)
    http: HttpSettings = Field(default_factory=HttpSettings)


@dataclass(slots=True)
class RecordHeader:
    """An OAI-PMH record header: identifier, datestamp, sets, and whether it is a deletion."""

    identifier: str | None
    datestamp: str | None
    setSpecs: list[str]
    deleted: bool


_IDENTIFIER, _DATESTAMP, _SET_SPEC = f"{OAI}identifier", f"{OAI}datestamp", f"{OAI}setSpec"


def read_header(element: Any) -> RecordHeader | None:
    """The header's fields (the first identifier and datestamp), in one pass over it."""
    if element is None:
        return None
    identifier = datestamp = None
    sets = []
    for child in element.iterchildren(_IDENTIFIER, _DATESTAMP, _SET_SPEC):
        tag = child.tag
        if tag == _SET_SPEC:
            sets.append((child.text or "").strip())
        elif tag == _IDENTIFIER:
            if identifier is None:
                identifier = child.text or ""
        elif datestamp is None:
            datestamp = child.text or ""
    return RecordHeader(
        identifier.strip() or None if identifier else None,
        datestamp.strip() or None if datestamp else None,
        sets,
        element.get("status") == "deleted",
    )


def read_list(root: Any) -> tuple[Any, str | None, str | None]:
    """A parsed ListRecords answer's ``ListRecords`` element (None for ``noRecordsMatch``),
    the token of the next page and the response date; another OAI-PMH error is raised as
    Sickle's exception for its code."""
    from sickle import oaiexceptions

    date = (root.findtext(f"{OAI}responseDate") or "").strip() or None
    error = root.find(f"{OAI}error")
    if error is not None:
        code = error.get("code", "unknown")
        exception = getattr(oaiexceptions, code[:1].upper() + code[1:], oaiexceptions.OAIError)
        if exception is oaiexceptions.NoRecordsMatch:
            return None, None, date
        message = " ".join((error.text or "").split())
        raise exception(f"OAI-PMH error {code}" + (f": {message}" if message else ""))
    listed = root.find(f"{OAI}ListRecords")
    token_element = None if listed is None else listed.find(f"{OAI}resumptionToken")
    token = (token_element.text or "").strip() if token_element is not None else ""
    return listed, token or None, date


class ListPage:
    """One ListRecords page as read: its bytes and its ``ListRecords`` element (None for an
    empty list), the token of the next page, the response date, and `asked`: the request's
    settings, token, page number and records already stored, which each record's checkpoint
    repeats. Pickled (to be parsed in another process), it keeps its bytes, not the element."""

    def __init__(self, content: bytes, listed: Any, next_token: str | None, date: str | None):
        self.content = content
        self.listed = listed
        self.next_token = next_token
        self.response_date = date
        self.asked: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "listed": None}


class OaiPmhSource(Source):
    """Records from an OAI-PMH repository (ListRecords), read by a metadata format plugin."""

    name = "oai-pmh"
    Settings = OaiPmhSettings

    def open(self) -> None:
        self.format = self._metadata_format()
        self.languages = tuple(self.settings.languages)
        self.client = HttpClient(self.settings.http, policy=self.context.url_policy)
        from monalia.formats.oai_protocol import SafeSickle

        self.sickle = SafeSickle(self.settings.url, self.client)
        self.started: str | None = None  # the response date of this run's first page

    def close(self) -> None:
        self.client.close()

    def _metadata_format(self) -> MetadataFormat:
        prefix = self.settings.metadata_prefix
        try:
            info = default_registry().get("metadata-format", prefix)
        except PluginError:
            known = ", ".join(p.name for p in default_registry().all("metadata-format"))
            raise ConfigError(
                f"{self.context.instance}: no metadata format reads metadata_prefix "
                f"{prefix!r} (installed: {known}); a package adds one with the "
                "register_metadata_formats hook"
            ) from None
        return info.cls(context=self.context)

    # -- reading ---------------------------------------------------------------------------

    def list_params(self, state: SourceState) -> dict[str, str]:
        params = {"metadataPrefix": self.settings.metadata_prefix}
        if self.settings.set:
            params["set"] = self.settings.set
        since = state.changed_after
        if since:
            params["from"] = self.date_param(str(since))
        if self.settings.until:
            params["until"] = self.date_param(self.settings.until)
        return params

    def date_param(self, value: str) -> str:
        granularity = self.settings.granularity
        if granularity == "auto":
            granularity = self.repository_granularity()
        if granularity == "day" or len(value) <= 10:
            return value[:10]
        return value if value.endswith("Z") else value.split("+")[0] + "Z"

    def repository_granularity(self) -> str:
        """What the repository's Identify says (``YYYY-MM-DD`` is day granularity)."""
        if not hasattr(self, "_granularity"):
            try:
                identify = self.sickle.Identify()
                declared = getattr(identify, "granularity", "") or ""
            except Exception as exc:
                log.warning("%s: Identify failed (%s); dates sent as days", self.settings.url, exc)
                declared = "YYYY-MM-DD"
            self._granularity = "seconds" if "hh" in declared else "day"
        return self._granularity

    def page(self, params: dict[str, str]) -> ListPage:
        """One ListRecords page, read and checked: the token of the next page, the response
        date. `noRecordsMatch` is an empty page; other errors fail the run. An ordinary page
        is not parsed here (`page_facts` reads the token and date from its text): it is parsed
        where its records are read, which checks that it says the same."""
        response = self.sickle.list_page(params)
        facts = response.facts
        if facts is not None:
            return ListPage(response.content, None, facts.token, facts.response_date)
        listed, token, date = read_list(response.parsed)
        return ListPage(response.content if listed is not None else b"", listed, token, date)

    def page_cursor(self, state: SourceState) -> dict[str, Any]:
        """The first page to read: the one the checkpoint names, when it is of the same list
        (the same settings and --since), else the list's first."""
        params = self.list_params(state)
        checkpoint = state.checkpoint if isinstance(state.checkpoint, dict) else {}
        if checkpoint.get("params") != params:
            checkpoint = {}  # another list (other settings, another --since): read it all
        return {
            "params": params,
            "token": checkpoint.get("token"),
            "page": checkpoint.get("page", 1),
            "done": checkpoint.get("done", 0),  # its records already stored
            "started": checkpoint.get("started"),
            "restarted": False,
        }

    def read_page(self, cursor: dict[str, Any]) -> tuple[ListPage, dict[str, Any] | None]:
        """The page asked for with the cursor's token, and the cursor of the next one."""
        from sickle import oaiexceptions

        from monalia.formats.oai_protocol import OAI_ERRORS

        params, token = cursor["params"], cursor["token"]
        self.started = cursor["started"]
        try:
            page = self.page({"resumptionToken": token} if token else params)
        except oaiexceptions.BadResumptionToken as exc:
            if not token or cursor["restarted"]:
                # a token the repository itself just gave is refused: starting again would
                # only meet it again
                raise SourceUnavailable(f"{self.context.instance}: {exc}") from None
            # the saved token expired: the list starts again, what is stored is unchanged
            log.warning(
                "%s: resumption token no longer valid (%s); reading the list again",
                self.settings.url,
                exc,
            )
            again = {"token": None, "page": 1, "done": 0, "started": None, "restarted": True}
            return self.read_page({**cursor, **again})
        except OAI_ERRORS as exc:
            raise SourceUnavailable(f"{self.context.instance}: {exc}") from None
        if self.started is None:
            self.started = page.response_date
        # what naming its records and their checkpoints needs
        page.asked = {
            "params": params,
            "token": token,
            "page": cursor["page"],
            "done": cursor["done"],
            "started": self.started,
        }
        if not page.next_token:
            return page, None
        following = {
            **cursor,
            "token": page.next_token,
            "page": cursor["page"] + 1,
            "done": 0,
            "started": self.started,
        }
        return page, following

    def page_items(self, page: ListPage) -> Iterator[RawItem]:
        """The records of one page after those already stored, each with its checkpoint."""
        listed = page.listed
        if listed is None and page.content:
            listed = self.parsed_list(page)
        if listed is None:
            return
        asked = page.asked
        done, page_number = asked["done"], asked["page"]
        header_tag, metadata_tag = f"{OAI}header", f"{OAI}metadata"
        for index, element in enumerate(
            islice(listed.iterchildren(f"{OAI}record"), done, None), start=done + 1
        ):
            header = metadata = None
            for child in element.iterchildren(header_tag, metadata_tag):  # the first of each
                if child.tag == header_tag:
                    if header is None:
                        header = child
                elif metadata is None:
                    metadata = child
            read = read_header(header)
            key = (read.identifier if read is not None else None) or (
                f"page {page_number} record {index}"
            )
            yield RawItem(key, (read, metadata), {**asked, "done": index})

    def parsed_list(self, page: ListPage) -> Any:
        """The ListRecords element of a page read without parsing; an error unless the parsed
        page says what was read from its text (the next pages were asked for with it)."""
        try:
            root = etree.fromstring(page.content, parser())
        except etree.XMLSyntaxError as exc:
            raise SourceUnavailable(
                f"{self.context.instance}: page {page.asked['page']} is not well-formed XML ({exc})"
            ) from None
        from monalia.formats.oai_protocol import OAI_ERRORS

        try:
            listed, token, date = read_list(root)
        except OAI_ERRORS as exc:
            raise SourceUnavailable(f"{self.context.instance}: {exc}") from None
        if listed is None or (token, date) != (page.next_token, page.response_date):
            raise SourceUnavailable(
                f"{self.context.instance}: page {page.asked['page']} parsed does not say what "
                f"its text did (token {token!r}, date {date!r}; read as {page.next_token!r}, "
                f"{page.response_date!r}); the list cannot go on from it"
            )
        return listed

    def parse(self, item: RawItem) -> list[Record]:
        header, metadata = item.payload
        if header is None:
            raise RecordError("the record has no header")
        identifier = (header.identifier or "").strip()
        if not identifier:
            raise RecordError(
                "the record's header has no identifier"
                + (" (a deleted record)" if header.deleted else "")
            )
        described = {
            "identifier": identifier,
            "datestamp": header.datestamp,
            "sets": header.setSpecs,
        }
        if header.deleted:
            return [
                Record(
                    source_id=identifier,
                    deleted=True,
                    modified=header.datestamp,
                    raw={"header": {**described, "status": "deleted"}},
                )
            ]
        # the first element in it (not a comment or a processing instruction)
        element = None if metadata is None else next(metadata.iterchildren(etree.Element), None)
        if element is None:
            raise RecordError("the record has no metadata")
        options = ReadOptions(self.languages, identifier, self.settings.base, self.warn)
        records = self.format.read(element, options)
        if not records:
            raise RecordError(f"the {self.settings.metadata_prefix} metadata holds no record")
        xml = as_xml_text(element)
        for number, record in enumerate(records):
            # the OAI identifier is the key: deletions and updates name the record by it
            own_id = record.source_id
            record.source_id = identifier if number == 0 else f"{identifier}#{number + 1}"
            record.modified = record.modified or header.datestamp
            record.raw = {
                "header": described,
                "id": own_id,
                "metadata": xml,
                **(record.raw if isinstance(record.raw, dict) else {}),
            }
        return records

    def new_bookmark(self) -> Any:
        """The response date of this run's first page: the next run reads what changed since."""
        return self.started


@hookimpl
def register_sources():
    return [OaiPmhSource]
