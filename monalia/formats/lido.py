"""LIDO (Lightweight Information Describing Objects), the museum harvest schema, 1.0 and 1.1.

One record per ``lido:lido``: its ``lidoRecID``; the titles, each with its language (the one in
the preferred language is the title); the work types and subjects as subject terms that keep
their concept IDs as URIs; the production event (its actors, date and place); the holding
repository; the rights of the work; the landing page (``recordInfoLink``); and one image per
``resourceSet``, the largest of its representations.
"""

from __future__ import annotations

import re
from typing import Any

from monalia.api.metadata_format import ReadOptions
from monalia.api.records import ImageRef, Record, Subject
from monalia.errors import RecordError
from monalia.formats.iiif_presentation import service_of_image_url
from monalia.formats.mapping import years_of
from monalia.formats.xml_records import (
    RDF_ABOUT,
    SKOS,
    clean,
    image_link,
    language_of,
    local_name,
    pick_language,
    repair_iri,
    web_link,
)

LIDO = "http://www.lido-schema.org"
L = f"{{{LIDO}}}"
LIDO_TYPE = f"{L}type"
LIDO_PREF = f"{L}pref"
RECORD_TAG = f"{L}lido"

# Events that made the object (LIDO terminology and the terms providers write).
PRODUCTION_CONCEPTS = frozenset(
    f"http://terminology.lido-schema.org/{code}"
    for code in ("lido00007", "lido00012", "lido00224", "lido01127", "lido00031")
)
PRODUCTION_TERMS = frozenset(
    {
        "production",
        "creation",
        "design",
        "herstellung",
        "hergestellt",
        "entwurf",
        "fotografische aufnahme",
        "création",
        "fabrication",
        "production event",
        "realizzazione",
        "vervaardiging",
    }
)
# Representation types, largest first, where a set does not give pixel sizes.
SIZE_RANK = {
    "image_master": 5,
    "masterfile": 5,
    "provided_image": 4,
    "http://terminology.lido-schema.org/lido00464": 4,  # provided image
    "image_preview": 3,
    "http://terminology.lido-schema.org/lido00465": 3,  # preview
    "image_thumb": 1,
    "http://terminology.lido-schema.org/lido00451": 1,  # thumbnail
}
NOT_PREFERRED = ("alternate", "http://terminology.lido-schema.org/lido00170")
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def find(element: Any, path: str) -> list[Any]:
    return element.findall(path.replace("lido:", L).replace("skos:", f"{{{SKOS}}}"))


def texts(element: Any, path: str) -> list[tuple[str | None, str]]:
    found = []
    for node in find(element, path):
        text = clean("".join(node.itertext()))
        if text:
            found.append((language_of(node), text))
    return found


def preferred(element: Any, path: str) -> list[tuple[str | None, str]]:
    """The values at `path` not marked as alternates (all of them when every one is)."""
    nodes = find(element, path)
    kept = [n for n in nodes if n.get(LIDO_PREF) not in NOT_PREFERRED] or nodes
    found = []
    for node in kept:
        text = clean("".join(node.itertext()))
        if text:
            found.append((language_of(node), text))
    return found


def concept_terms(element: Any) -> tuple[list[str], list[tuple[str | None, str]]]:
    """(concept URIs, labels) of a LIDO concept element: its conceptIDs and terms (1.0) or an
    embedded skos:Concept (1.1)."""
    uris = [text for _, text in texts(element, "lido:conceptID")]
    labels = texts(element, "lido:term")
    for concept in find(element, "skos:Concept"):
        if concept.get(RDF_ABOUT):
            uris.append(concept.get(RDF_ABOUT).strip())
        labels += texts(concept, "skos:prefLabel")
    return uris, labels


class LidoReader:
    def __init__(self, element: Any, options: ReadOptions):
        if element.tag != RECORD_TAG:
            found = element.find(f".//{RECORD_TAG}")
            if found is None:
                raise RecordError("no lido:lido element: not a LIDO record")
            element = found
        self.lido = element
        self.options = options

    def pick(self, values: list[tuple[str | None, str]]) -> str | None:
        chosen = pick_language(values, self.options.languages)
        return chosen[1] if chosen else None

    def link(self, value: str | None, what: str) -> str | None:
        return repair_iri(value, what, self.options.warn)

    def record(self) -> Record:
        lido = self.lido
        identifier = next((text for _, text in texts(lido, "lido:lidoRecID")), None)
        identifier = identifier or self.options.identifier
        if not identifier:
            raise RecordError("the LIDO record has no lidoRecID")
        descriptive = find(lido, "lido:descriptiveMetadata")
        administrative = find(lido, "lido:administrativeMetadata")
        titles: list[tuple[str | None, str]] = []
        subjects: list[Subject] = []
        description = None
        creators: list[str] = []
        date = None
        start = end = None
        place = None
        institution = None
        for section in descriptive:
            titles += preferred(
                section,
                "lido:objectIdentificationWrap/lido:titleWrap/lido:titleSet/lido:appellationValue",
            )
            description = description or self.pick(
                texts(
                    section,
                    "lido:objectIdentificationWrap/lido:objectDescriptionWrap/"
                    "lido:objectDescriptionSet/lido:descriptiveNoteValue",
                )
            )
            subjects += self.work_types(section)
            subjects += self.subjects(section)
            institution = institution or self.repository(section)
            event = self.production(section)
            if event is not None and not creators and date is None:
                creators, date, start, end, place = self.event_facts(event)
        rights = landing_page = None
        images: list[ImageRef] = []
        for section in administrative:
            rights = rights or self.rights(section)
            landing_page = landing_page or self.landing_page(section)
            images += self.images(section, len(images))
        title = self.pick(titles)
        return Record(
            source_id=identifier,
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
            raw={
                "titles": [[lang, text] for lang, text in titles],
                "production_place": place,
            },
        )

    def work_types(self, section: Any) -> list[Subject]:
        found = []
        for work_type in find(
            section, "lido:objectClassificationWrap/lido:objectWorkTypeWrap/lido:objectWorkType"
        ):
            found += self.concept_subjects(work_type, "objectWorkType")
        return found

    def subjects(self, section: Any) -> list[Subject]:
        found = []
        for concept in find(
            section,
            "lido:objectRelationWrap/lido:subjectWrap/lido:subjectSet/lido:subject/"
            "lido:subjectConcept",
        ):
            found += self.concept_subjects(concept, "subjectConcept")
        if not found:  # only display subjects: free text, one term per set
            for _, text in texts(
                section,
                "lido:objectRelationWrap/lido:subjectWrap/lido:subjectSet/lido:displaySubject",
            ):
                found.append(Subject(label=text, field="displaySubject"))
        return found

    def concept_subjects(self, element: Any, field: str) -> list[Subject]:
        uris, labels = concept_terms(element)
        uri = next(
            (
                u
                for u in (
                    self.link(u, f"{field} concept ID") if re.match(r"\w+:", u) else None
                    for u in uris
                )
                if u
            ),
            None,
        )
        label = pick_language(labels, self.options.languages)
        if uri is None and label is None:
            return []
        return [
            Subject(
                uri=uri,
                label=label[1] if label else None,
                lang=label[0] if label else None,
                field=field,
            )
        ]

    def production(self, section: Any) -> Any:
        events = find(section, "lido:eventWrap/lido:eventSet/lido:event")
        for event in events:
            for event_type in find(event, "lido:eventType"):
                uris, labels = concept_terms(event_type)
                if any(u in PRODUCTION_CONCEPTS for u in uris) or any(
                    text.lower() in PRODUCTION_TERMS for _, text in labels
                ):
                    return event
        return None

    def event_facts(
        self, event: Any
    ) -> tuple[list[str], str | None, int | None, int | None, str | None]:
        creators = []
        for actor in find(event, "lido:eventActor"):
            names = preferred(
                actor, "lido:actorInRole/lido:actor/lido:nameActorSet/lido:appellationValue"
            )
            name = self.pick(names) or self.pick(texts(actor, "lido:displayActorInRole"))
            if name and name not in creators:
                creators.append(name)
        date = self.pick(texts(event, "lido:eventDate/lido:displayDate"))
        start = _year(
            next((t for _, t in texts(event, "lido:eventDate/lido:date/lido:earliestDate")), None)
        )
        end = _year(
            next((t for _, t in texts(event, "lido:eventDate/lido:date/lido:latestDate")), None)
        )
        if start is None and date:
            start, end = years_of(date)
        place = self.pick(texts(event, "lido:eventPlace/lido:displayPlace")) or self.pick(
            preferred(event, "lido:eventPlace/lido:place/lido:namePlaceSet/lido:appellationValue")
        )
        return creators, date or (str(start) if start is not None else None), start, end, place

    def repository(self, section: Any) -> str | None:
        sets = find(section, "lido:objectIdentificationWrap/lido:repositoryWrap/lido:repositorySet")
        # the current repository first (LIDO 1.1 types it; 1.0 often leaves the type out)
        sets.sort(
            key=lambda s: (
                s.get(LIDO_TYPE)
                not in (None, "current", "http://terminology.lido-schema.org/lido01017")
            )
        )
        for repository in sets:
            name = self.pick(
                preferred(
                    repository, "lido:repositoryName/lido:legalBodyName/lido:appellationValue"
                )
            )
            if name:
                return name
        return None

    def rights(self, section: Any) -> str | None:
        for path in (
            "lido:rightsWorkWrap/lido:rightsWorkSet/lido:rightsType",
            "lido:resourceWrap/lido:resourceSet/lido:rightsResource/lido:rightsType",
        ):
            for rights_type in find(section, path):
                uris, labels = concept_terms(rights_type)
                for uri in uris:
                    if re.match(
                        r"https?://(creativecommons\.org|rightsstatements\.org)/", uri.strip()
                    ):
                        return self.link(uri, "rights")
                label = pick_language(labels, self.options.languages)
                if label:
                    return label[1]
        return None

    def landing_page(self, section: Any) -> str | None:
        for _, text in texts(section, "lido:recordWrap/lido:recordInfoSet/lido:recordInfoLink"):
            link = web_link(text, "recordInfoLink", self.options.warn)
            if link:
                return link
        return None

    def images(self, section: Any, already: int) -> list[ImageRef]:
        images: list[ImageRef] = []
        for resource_set in find(section, "lido:resourceWrap/lido:resourceSet"):
            best: tuple[float, int, str] | None = None
            for number, representation in enumerate(
                find(resource_set, "lido:resourceRepresentation")
            ):
                for link in find(representation, "lido:linkResource"):
                    if not image_format(link.get(f"{L}formatResource")):
                        continue
                    text = clean("".join(link.itertext()))
                    if not text:
                        continue
                    rank = self.size(representation)
                    candidate = (rank, number, text)
                    if best is None or candidate[:2] > best[:2]:
                        best = candidate
            if best is None:
                continue
            url = image_link(best[2], "image link", self.options.warn)
            if url and all(image.url != url for image in images):
                images.append(
                    ImageRef(
                        url=url,
                        iiif_service=service_of_image_url(url),
                        is_main=already + len(images) == 0,
                    )
                )
        return images

    @staticmethod
    def size(representation: Any) -> float:
        """How large a representation is: its largest pixel measurement, else its type's rank."""
        values = [
            float(m.group(1))
            for _, text in texts(
                representation, "lido:resourceMeasurementsSet/lido:measurementValue"
            )
            if (m := _NUMBER.match(text))
        ]
        if values:
            return 100 + max(values)
        return SIZE_RANK.get((representation.get(LIDO_TYPE) or "").strip(), 2)


def image_format(value: str | None) -> bool:
    """Whether a formatResource names an image: a media type (image/jpeg) or, as LIDO 1.0
    providers often write, a file extension (jpg); none given counts as one."""
    fmt = (value or "").strip().lower()
    if not fmt:
        return True
    if "/" in fmt:
        return fmt.startswith("image/")
    return fmt.lstrip(".") in {"jpg", "jpeg", "png", "gif", "tif", "tiff", "jp2", "webp", "bmp"}


def _year(text: str | None) -> int | None:
    if not text:
        return None
    match = re.match(r"^\s*(-?\d{1,4})", text)
    return int(match.group(1)) if match else None


def read_lido(element: Any, options: ReadOptions) -> list[Record]:
    """The records of a lido:lido element, or of each one a lido:lidoWrap holds (some
    repositories wrap even a single record)."""
    if local_name(element) == "lidoWrap":
        records = [LidoReader(e, options).record() for e in element.iterfind(RECORD_TAG)]
        if not records:
            raise RecordError("an empty lido:lidoWrap")
        return records
    return [LidoReader(element, options).record()]
