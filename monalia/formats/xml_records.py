"""Reading museum XML (EDM, LIDO, Dublin Core) safely: a parser that never fetches or expands
anything, text picked by language, and links repaired or dropped one by one.

Everything in such a file is hostile: entities (billion laughs, external files), DTDs that point
at the network, IRIs with spaces. The parser refuses the first two; `repair_iri` decides, link
by link, whether a value can be kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urljoin, urlsplit

from lxml import etree

from monalia.api.records import IRI_FORBIDDEN
from monalia.errors import RecordError

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDF_ABOUT = f"{{{RDF}}}about"
RDF_RESOURCE = f"{{{RDF}}}resource"
SKOS = "http://www.w3.org/2004/02/skos/core#"

# Characters RFC 3987 forbids in an IRI; quoted when a link holds them.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# an http(s) URL with a host and nothing an IRI cannot hold: needs no repair
_PLAIN_WEB_LINK = re.compile(
    r'https?://[^\x00-\x20<>"{}|^`\\/?#]+(?:[/?#][^\x00-\x20<>"{}|^`\\]*)?\Z', re.I
)

Warn = Callable[[str], None]


def parser(**options: Any) -> etree.XMLParser:
    """An XML parser that resolves no entities, reads no DTD and touches no network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        **options,
    )


def parse_bytes(data: bytes) -> etree._Element:
    """The root element of an XML document; `RecordError` with the parser's line if malformed."""
    try:
        return etree.fromstring(data, parser())
    except etree.XMLSyntaxError as exc:
        raise RecordError(f"not well-formed XML: {exc}") from None


def iter_elements(source: str | Path | IO[bytes], tags: Iterable[str]) -> Iterator[Any]:
    """Each element with one of `tags` (Clark names), in document order, streamed: a file of
    any size takes the memory of one record. Raises `RecordError` where the XML breaks."""
    context = etree.iterparse(
        source,
        events=("end",),
        tag=list(tags),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        for _, element in context:
            yield element
            # what was read is let go: the element, and the siblings before it
            element.clear(keep_tail=False)
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise RecordError(f"not well-formed XML: {exc}") from None


def local_name(element: Any) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def clean(text: str | None) -> str | None:
    """Text with runs of white space folded (values padded with newlines are common)."""
    if text is None:
        return None
    folded = " ".join(text.split())
    return folded or None


def text_of(element: Any) -> str | None:
    """An element's whole text content, folded."""
    return clean("".join(element.itertext())) if element is not None else None


def language_of(element: Any) -> str | None:
    """The element's xml:lang, inherited from its ancestors as XML says."""
    while element is not None:
        lang = element.get(XML_LANG)
        if lang is not None:
            return lang.strip() or None
        element = element.getparent()
    return None


def pick_language(
    values: Iterable[tuple[str | None, str]], languages: tuple[str, ...]
) -> tuple[str | None, str] | None:
    """The (language, text) to show: the first preferred language (``en`` matches ``en-GB``),
    else a value without language, else the first."""
    values = [(lang, text) for lang, text in values if text]
    if not values:
        return None
    for wanted in languages:
        for lang, text in values:
            if lang and (lang == wanted or lang.split("-")[0].lower() == wanted.lower()):
                return lang, text
    for lang, text in values:
        if not lang:
            return lang, text
    return values[0]


def repair_iri(value: str | None, what: str, warn: Warn, base: str | None = None) -> str | None:
    """A link as an absolute IRI, or None (with a warning) when it cannot be one.

    Surrounding white space is dropped silently (common and harmless); characters an IRI cannot
    hold are percent-encoded, with a warning; a relative link is resolved against `base` when
    there is one, otherwise dropped with a warning.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _PLAIN_WEB_LINK.match(text):
        return text  # the common case, checked in one step
    if not _SCHEME.match(text):
        if base is None:
            warn(f"{what} {text[:200]!r} is not an absolute IRI; dropped")
            return None
        text = urljoin(base, text)
    if IRI_FORBIDDEN.search(text):
        repaired = IRI_FORBIDDEN.sub(lambda m: quote(m.group(), safe=""), text)
        warn(f"{what} {text[:200]!r} holds characters an IRI cannot; kept as {repaired[:200]!r}")
        text = repaired
    if not _SCHEME.match(text) or (
        text.split(":", 1)[0].lower() in ("http", "https") and not urlsplit(text).netloc
    ):
        warn(f"{what} {value.strip()[:200]!r} is not a usable IRI; dropped")
        return None
    return text


def web_link(value: str | None, what: str, warn: Warn) -> str | None:
    """An http(s) link (a landing page, an image), or None with a warning."""
    if value is not None and _PLAIN_WEB_LINK.match(value):
        return value
    link = repair_iri(value, what, warn)
    if link is None:
        return None
    if urlsplit(link).scheme.lower() not in ("http", "https"):
        warn(f"{what} {link[:200]!r} is not an http(s) URL; dropped")
        return None
    return link


def image_link(value: str | None, what: str, warn: Warn) -> str | None:
    """An image's link: http(s), or a ``file:`` URL that the URL policy then judges (kept
    from a local file with ``allow_file_urls``, dropped with its reason otherwise)."""
    if value is not None and _PLAIN_WEB_LINK.match(value):
        return value
    link = repair_iri(value, what, warn)
    if link is None:
        return None
    if urlsplit(link).scheme.lower() not in ("http", "https", "file"):
        warn(f"{what} {link[:200]!r} is not an http(s) or file URL; dropped")
        return None
    return link


def as_xml_text(element: Any) -> str:
    """The element as XML text (what the catalog keeps as the raw payload)."""
    return etree.tostring(element, encoding="unicode")
