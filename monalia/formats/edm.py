"""The Europeana Data Model (EDM) in RDF/XML: one record per ``edm:ProvidedCHO``.

What the object is (title, creator, dates, subjects) lives on the CHO itself in the provider's
("external") shape, or on its ``ore:Proxy`` resources in Europeana's ("internal") shape, where a
provider proxy and a Europeana proxy (its enrichments) both describe it: both are read. Where
its images are, where it is shown, who holds it and under which rights live on its
``ore:Aggregation`` (``edm:isShownBy``, ``edm:hasView``, ``edm:object``, ``edm:isShownAt``,
``edm:dataProvider``, ``edm:rights``). Links to contextual resources in the same document
(``edm:Agent``, ``skos:Concept``, ``edm:TimeSpan``, ``edm:Place``) are followed for their labels;
a subject keeps its concept's URI.

EDM files are read as XML (the EDM schema fixes their shape), so every link can be checked on
its own: one with a space in it is repaired, one that cannot be a link is dropped, each with a
warning, and the record is kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from monalia.api.metadata_format import ReadOptions
from monalia.api.records import ImageRef, Record, Subject
from monalia.errors import RecordError
from monalia.formats.iiif_presentation import service_of_image_url
from monalia.formats.mapping import years_of
from monalia.formats.xml_records import (
    RDF_ABOUT,
    RDF_RESOURCE,
    SKOS,
    clean,
    image_link,
    language_of,
    local_name,
    pick_language,
    repair_iri,
    web_link,
)

EDM = "http://www.europeana.eu/schemas/edm/"
ORE = "http://www.openarchives.org/ore/terms/"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
SVCS = "http://rdfs.org/sioc/services#"

CONTEXTUAL = ("Agent", "Concept", "TimeSpan", "Place", "Organization")
_YEAR = re.compile(r"^\s*(-?\d{1,4})")


class Document:
    """The resources of one RDF/XML document, by type and by the id written in rdf:about."""

    def __init__(self, root: Any):
        self.by_type: dict[str, list[Any]] = defaultdict(list)
        self.by_id: dict[str, Any] = {}
        for element in root:
            if not isinstance(element.tag, str):
                continue
            self.by_type[local_name(element)].append(element)
            about = element.get(RDF_ABOUT)
            if about is not None:
                self.by_id.setdefault(about.strip(), element)

    def resource(self, reference: str | None) -> Any:
        """The described resource a reference points at: by its id, or by a fragment
        ("#LIT_place2" for "LIT_place2")."""
        if not reference:
            return None
        reference = reference.strip()
        found = self.by_id.get(reference)
        if found is None and reference.startswith("#"):
            found = self.by_id.get(reference[1:])
        return found


def values(element: Any, namespace: str, name: str) -> list[Any]:
    return list(element.iterfind(f"{{{namespace}}}{name}"))


def literal_or_link(prop: Any) -> tuple[str | None, str | None, str | None]:
    """(text, language, linked id) of a property element."""
    link = prop.get(RDF_RESOURCE)
    if link is not None:
        return None, None, link.strip() or None
    nested = next((child for child in prop if isinstance(child.tag, str)), None)
    if nested is not None and nested.get(RDF_ABOUT):
        return None, None, nested.get(RDF_ABOUT).strip()
    return clean("".join(prop.itertext())), language_of(prop), None


def labels(resource: Any) -> list[tuple[str | None, str]]:
    found = []
    for name in ("prefLabel", "altLabel"):
        for label in resource.iterfind(f"{{{SKOS}}}{name}"):
            text = clean(label.text)
            if text:
                found.append((language_of(label), text))
        if found:
            return found
    return found


class EdmReader:
    """Reads the records of one EDM document."""

    def __init__(self, root: Any, options: ReadOptions):
        if local_name(root) != "RDF":
            root = next((e for e in root.iter() if local_name(e) == "RDF"), None)
            if root is None:
                raise RecordError("no rdf:RDF element: not an EDM record")
        self.doc = Document(root)
        self.options = options

    def records(self) -> list[Record]:
        chos = self.doc.by_type.get("ProvidedCHO", [])
        if not chos:
            raise RecordError("no edm:ProvidedCHO in the document")
        return [self.record(cho, single=len(chos) == 1) for cho in chos]

    def label(self, reference: str) -> tuple[str | None, str] | None:
        resource = self.doc.resource(reference)
        if resource is None:
            return None
        return pick_language(labels(resource), self.options.languages)

    def belongs(self, element: Any, link_name: str, namespace: str, about: str) -> bool:
        for prop in values(element, namespace, link_name):
            _, _, link = literal_or_link(prop)
            if link is not None and link.lstrip("#") == about.lstrip("#"):
                return True
        return False

    def record(self, cho: Any, single: bool) -> Record:
        about = (cho.get(RDF_ABOUT) or "").strip()
        if not about:
            raise RecordError("an edm:ProvidedCHO has no rdf:about")
        proxies = [
            p
            for p in self.doc.by_type.get("Proxy", [])
            if single or self.belongs(p, "proxyFor", ORE, about)
        ]
        # the provider's description first, Europeana's enrichments after it
        proxies.sort(key=lambda p: self.is_europeana_proxy(p))
        described = [cho, *proxies]
        aggregations = [
            a
            for a in self.doc.by_type.get("Aggregation", [])
            if single or self.belongs(a, "aggregatedCHO", EDM, about)
        ]
        title = self.pick(described, DC, "title") or self.pick(described, DCTERMS, "alternative")
        description = self.pick(described, DC, "description")
        creators = self.names(described, DC, "creator")
        date, start, end = self.date(described)
        subjects = self.subjects(described)
        images, landing_page, institution, rights = self.aggregation(aggregations)
        iri = repair_iri(about, "the record's rdf:about", lambda _: None, self.options.base)
        return Record(
            source_id=about,
            iri=iri if iri and iri.lower().startswith(("http://", "https://")) else None,
            title=title,
            description=description,
            creators=creators,
            date=date,
            date_start=start,
            date_end=end,
            institution=institution,
            rights=rights,
            landing_page=landing_page,
            images=images,
            subjects=subjects,
        )

    @staticmethod
    def is_europeana_proxy(proxy: Any) -> bool:
        flag = proxy.findtext(f"{{{EDM}}}europeanaProxy")
        return (flag or "").strip().lower() == "true"

    def pick(self, described: list[Any], namespace: str, name: str) -> str | None:
        found = []
        for element in described:
            for prop in values(element, namespace, name):
                text, lang, link = literal_or_link(prop)
                if text:
                    found.append((lang, text))
                elif link and (label := self.label(link)):
                    found.append(label)
        chosen = pick_language(found, self.options.languages)
        return chosen[1] if chosen else None

    def names(self, described: list[Any], namespace: str, name: str) -> list[str]:
        """One name per creator: an agent's label in the preferred language, a literal as
        written, a link to nothing in the document as its IRI."""
        names: list[str] = []
        literals: list[tuple[str | None, str]] = []
        for element in described:
            for prop in values(element, namespace, name):
                text, lang, link = literal_or_link(prop)
                if text:
                    literals.append((lang, text))
                elif link:
                    label = self.label(link)
                    names.append(label[1] if label else link)
        # literals in several languages name one creator: keep the preferred language's
        by_language: dict[str | None, list[str]] = defaultdict(list)
        for lang, text in literals:
            by_language[lang].append(text)
        if by_language:
            chosen = pick_language(
                [(lang, texts[0]) for lang, texts in by_language.items()], self.options.languages
            )
            names.extend(by_language[chosen[0]] if chosen else [])
        return list(dict.fromkeys(names))

    def date(self, described: list[Any]) -> tuple[str | None, int | None, int | None]:
        for namespace, name in (
            (DCTERMS, "created"),
            (DC, "date"),
            (DCTERMS, "issued"),
            (EDM, "year"),
            (DCTERMS, "temporal"),
        ):
            for element in described:
                for prop in values(element, namespace, name):
                    text, _, link = literal_or_link(prop)
                    if text:
                        start, end = years_of(text)
                        return text, start, end
                    span = self.doc.resource(link)
                    if span is not None and local_name(span) == "TimeSpan":
                        begin = _year(span.findtext(f"{{{EDM}}}begin"))
                        finish = _year(span.findtext(f"{{{EDM}}}end"))
                        label = pick_language(labels(span), self.options.languages)
                        shown = label[1] if label else (clean(span.findtext(f"{{{EDM}}}begin")))
                        if begin is not None or shown:
                            return shown, begin, finish if finish is not None else begin
        return None, None, None

    def subjects(self, described: list[Any]) -> list[Subject]:
        found: list[Subject] = []
        seen: set[tuple[Any, ...]] = set()
        for namespace, name, field in (
            (DC, "subject", "dc:subject"),
            (DC, "type", "dc:type"),
            (EDM, "hasType", "edm:hasType"),
        ):
            for element in described:
                for prop in values(element, namespace, name):
                    text, lang, link = literal_or_link(prop)
                    if text:
                        subject = Subject(label=text, lang=lang, field=field)
                    elif link:
                        uri = repair_iri(link, f"{field} link", self.options.warn)
                        label = self.label(link)
                        if uri is None and label is None:
                            continue
                        subject = Subject(
                            uri=uri,
                            label=label[1] if label else None,
                            lang=label[0] if label else None,
                            field=field,
                        )
                    else:
                        continue
                    key = (subject.uri, subject.label, subject.field)
                    if key not in seen:
                        seen.add(key)
                        found.append(subject)
        return found

    def aggregation(
        self, aggregations: list[Any]
    ) -> tuple[list[ImageRef], str | None, str | None, str | None]:
        warn = self.options.warn
        images: list[ImageRef] = []
        landing_page = institution = rights = None

        def link_of(prop: Any) -> str | None:
            return literal_or_link(prop)[2] or literal_or_link(prop)[0]

        for aggregation in aggregations:
            shown_by = [link_of(p) for p in values(aggregation, EDM, "isShownBy")]
            views = [link_of(p) for p in values(aggregation, EDM, "hasView")]
            thumbnails = [link_of(p) for p in values(aggregation, EDM, "object")]
            for candidate in shown_by + views or thumbnails:
                url = image_link(candidate, "image link", warn)
                if url and all(image.url != url for image in images):
                    images.append(
                        ImageRef(
                            url=url,
                            iiif_service=self.service(candidate) or service_of_image_url(url),
                            is_main=not images,
                        )
                    )
            for prop in values(aggregation, EDM, "isShownAt"):
                landing_page = landing_page or web_link(link_of(prop), "edm:isShownAt", warn)
            for prop in values(aggregation, EDM, "dataProvider"):
                text, _, link = literal_or_link(prop)
                label = self.label(link) if link else None
                institution = institution or text or (label[1] if label else link)
            for prop in values(aggregation, EDM, "rights"):
                rights = rights or repair_iri(link_of(prop), "edm:rights", warn)
        return images, landing_page, institution, rights

    def service(self, image_link: str | None) -> str | None:
        """The IIIF Image service an edm:WebResource declares for an image, if any."""
        resource = self.doc.resource(image_link)
        if resource is None:
            return None
        for prop in values(resource, SVCS, "has_service"):
            _, _, link = literal_or_link(prop)
            service = repair_iri(link, "svcs:has_service", self.options.warn)
            if service:
                return service.rstrip("/")
        return None


def _year(text: str | None) -> int | None:
    match = _YEAR.match(text or "")
    return int(match.group(1)) if match else None


def read_edm(root: Any, options: ReadOptions) -> list[Record]:
    """The records of an EDM document (its rdf:RDF element, or an element holding one)."""
    return EdmReader(root, options).records()
