"""Simple Dublin Core (OAI-PMH ``oai_dc``): the format every OAI-PMH repository must offer.

``dc:identifier`` values that are web pages become the landing page and those that look like
images become the record's images; ``dc:publisher`` is taken as the holding institution (what
museum and library repositories put there); ``dc:subject`` and ``dc:type`` are subject terms.
"""

from __future__ import annotations

import re
from typing import Any

from monalia.api.metadata_format import ReadOptions
from monalia.api.records import ImageRef, Record, Subject
from monalia.errors import RecordError
from monalia.formats.iiif_presentation import service_of_image_url
from monalia.formats.mapping import years_of
from monalia.formats.xml_records import XML_LANG, language_of, pick_language, web_link

DC = "http://purl.org/dc/elements/1.1/"
_DC_PREFIX = f"{{{DC}}}"
_DC_ANY = f"{_DC_PREFIX}*"
IMAGE_LINK = re.compile(r"\.(jpe?g|png|gif|tiff?|webp|jp2)(\?|$)|/iiif/.+/full/", re.IGNORECASE)


def fields(element: Any) -> dict[str, list[tuple[str | None, str]]]:
    """(language, text) of every dc:* child by element name, folded, empty ones left out; one
    pass over the children (the hot path of a large harvest)."""
    found: dict[str, list[tuple[str | None, str]]] = {}
    inherited = language_of(element)
    skip = len(_DC_PREFIX)
    for child in element.iterchildren(_DC_ANY):  # lxml picks the dc:* elements itself
        raw = child.text if len(child) == 0 else "".join(child.itertext())
        if not raw:
            continue
        text = " ".join(raw.split())  # `clean`, inline: eleven times a record
        if text:
            value = (child.get(XML_LANG) or inherited, text)
            name = child.tag[skip:]
            values = found.get(name)
            if values is None:
                found[name] = [value]
            else:
                values.append(value)
    return found


def read_dc(element: Any, options: ReadOptions) -> list[Record]:
    """The record of one ``oai_dc:dc`` element."""
    identifier = options.identifier
    if not identifier:
        raise RecordError("the record has no identifier")
    dc = fields(element)
    title = pick_language(dc.get("title", ()), options.languages)
    description = pick_language(dc.get("description", ()), options.languages)
    dates = [text for _, text in dc.get("date", ())]
    start, end = years_of(dates[0]) if dates else (None, None)
    landing_page = None
    images: list[ImageRef] = []
    for _, text in [*dc.get("identifier", ()), *dc.get("relation", ())]:
        if not text[:8].lower().startswith(("http://", "https://")):
            continue  # an ISBN, a call number: kept in the raw payload
        link = web_link(text, "link", options.warn)
        if link is None:
            continue
        if IMAGE_LINK.search(link):
            images.append(
                ImageRef(url=link, iiif_service=service_of_image_url(link), is_main=not images)
            )
        elif landing_page is None:
            landing_page = link
    subjects = [
        Subject(label=text, lang=lang, field=f"dc:{name}")
        for name in ("subject", "type")
        for lang, text in dc.get(name, ())
    ]
    rights = [text for _, text in dc.get("rights", ())]
    publishers = [text for _, text in dc.get("publisher", ())]
    return [
        Record(
            source_id=identifier,
            title=title[1] if title else None,
            description=description[1] if description else None,
            creators=list(dict.fromkeys(text for _, text in dc.get("creator", ()))),
            date=dates[0] if dates else None,
            date_start=start,
            date_end=end,
            institution=publishers[0] if publishers else None,
            rights=rights[0] if rights else None,
            landing_page=landing_page,
            images=images,
            subjects=subjects,
        )
    ]
