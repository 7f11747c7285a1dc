"""Source: records from a local RDF file (Turtle, N-Triples, RDF/XML, JSON-LD, TriG, N-Quads).

Every resource of one of the configured types is a record, named by its own IRI. Which
predicates give the title, creators, date, images and subjects is configurable; the defaults
read Dublin Core, schema.org, Europeana EDM and the JocondeLab vocabulary. The file is parsed
whole with rdflib, so this source suits files of up to a few hundred thousand triples; larger
collections belong in a SPARQL store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.records import ImageRef, Record, Subject
from monalia.api.source import RawItem, Source, SourceState, file_fingerprint
from monalia.errors import RecordError, SourceUnavailable
from monalia.formats import mapping
from monalia.rdf.terms import DCTERMS, EDM, FOAF, JCL, SCHEMA, parse_error_line

DC = "http://purl.org/dc/elements/1.1/"
CRM = "http://www.cidoc-crm.org/cidoc-crm/"

FORMATS = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".nt": "nt",
    ".ntriples": "nt",
    ".n3": "n3",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".jsonld": "json-ld",
    ".json": "json-ld",
    ".trig": "trig",
    ".nq": "nquads",
}


def iris(*values: str):
    """A settings field holding a list of IRIs, with these as its default."""
    return Field(default_factory=lambda: list(values))


class RdfFileSettings(PluginSettings):
    path: str  # the RDF file (Turtle, N-Triples, RDF/XML, JSON-LD...; gzipped too)
    format: str | None = None  # rdflib format name; guessed from the file name when unset
    # JSON-LD: fetch the @context documents the file names by URL (through the URL policy);
    # off, such a file is refused with the context's URL, and nothing is fetched
    remote_contexts: bool = False
    # classes whose instances are the records
    types: list[str] = iris(
        JCL + "Notice", SCHEMA + "VisualArtwork", EDM + "ProvidedCHO", CRM + "E22_Man-Made_Object"
    )
    # predicates read for the identifier
    identifier: list[str] = iris(
        JCL + "noticeRef", DCTERMS + "identifier", DC + "identifier", SCHEMA + "identifier"
    )
    # predicates read for the title
    title: list[str] = iris(JCL + "noticeTitr", DCTERMS + "title", DC + "title", SCHEMA + "name")
    # predicates read for the creators
    creator: list[str] = iris(
        JCL + "noticeAutr", DCTERMS + "creator", DC + "creator", SCHEMA + "creator"
    )
    # predicates read for the date
    date: list[str] = iris(
        JCL + "noticeMillcrea",
        DCTERMS + "date",
        DC + "date",
        DCTERMS + "created",
        SCHEMA + "dateCreated",
    )
    # predicates read for the institution
    institution: list[str] = iris(
        JCL + "noticeLoca", EDM + "dataProvider", SCHEMA + "holdingArchive"
    )
    # predicates read for the rights
    rights: list[str] = iris(DCTERMS + "rights", DC + "rights", EDM + "rights", SCHEMA + "license")
    # predicates read for the landing page
    landing_page: list[str] = iris(FOAF + "page", EDM + "isShownAt", SCHEMA + "url")
    # predicates read for the images
    image: list[str] = iris(SCHEMA + "image", EDM + "isShownBy", FOAF + "depiction")
    # predicates whose values are subject concepts (IRIs)
    subject: list[str] = iris(
        JCL + "noticeReprTerm", DCTERMS + "subject", DC + "subject", SCHEMA + "about"
    )
    subject_text: list[str] = iris(JCL + "noticeRepr")  # predicates whose values are subject texts
    language: str | None = None  # preferred language of titles; others are used when it is missing


class RdfFileSource(Source):
    """Records from a local RDF file (Turtle, N-Triples, RDF/XML, JSON-LD, ...)."""

    name = "rdf-file"
    Settings = RdfFileSettings

    def reads_local_input(self) -> bool:
        return True  # a local file: it may name local image files (allow_file_urls)

    def open(self) -> None:
        import rdflib

        path = self.context.path(self.settings.path)
        if not path.is_file():
            raise SourceUnavailable(f"{self.context.instance}: no such file {path}")
        fmt = self.settings.format or FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise SourceUnavailable(
                f"{self.context.instance}: cannot tell the RDF format of {path.name}; set format"
            )
        graph = rdflib.Dataset(default_union=True) if fmt in ("trig", "nquads") else rdflib.Graph()
        try:
            if fmt == "json-ld":
                # read here, contexts inlined by monalia: rdflib would fetch them itself
                graph.parse(data=self._json_ld(path), format=fmt, publicID=path.as_uri())
            else:
                graph.parse(path, format=fmt)
        except SourceUnavailable:
            raise
        except Exception as exc:  # rdflib raises many parser-specific types
            raise SourceUnavailable(
                f"{self.context.instance}: {path} is not valid {fmt}: {parse_error_line(exc)}"
            ) from None
        self.graph = graph
        self.fingerprint = file_fingerprint(path)
        rdf_type = rdflib.RDF.type
        found = set()
        for type_iri in self.settings.types:
            found.update(
                s
                for s in graph.subjects(rdf_type, rdflib.URIRef(type_iri))
                if isinstance(s, rdflib.URIRef)
            )
        self.subjects_in_order = sorted(str(s) for s in found)  # a stable order to resume in

    def _json_ld(self, path) -> str:
        from monalia import jsontext
        from monalia.formats.jsonld_contexts import inline_contexts, policy_fetcher

        try:
            document = jsontext.loads(path.read_bytes())
        except ValueError as exc:
            raise SourceUnavailable(
                f"{self.context.instance}: {path} is not valid json-ld: {exc}"
            ) from None
        fetch = policy_fetcher(self.context.url_policy) if self.settings.remote_contexts else None
        try:
            document = inline_contexts(document, path.as_uri(), fetch)
        except SourceUnavailable as exc:
            raise SourceUnavailable(f"{self.context.instance}: {path}: {exc}") from None
        return jsontext.dumps(document)

    def _first_index(self, state: SourceState) -> int:
        checkpoint = state.checkpoint or {}
        if checkpoint.get("file") == self.fingerprint:
            return checkpoint["index"]
        return 0

    def estimate_total(self, state: SourceState) -> int | None:
        return len(self.subjects_in_order) - self._first_index(state)

    def items(self, state: SourceState) -> Iterator[RawItem]:
        start = self._first_index(state)
        for index in range(start, len(self.subjects_in_order)):
            iri = self.subjects_in_order[index]
            yield RawItem(
                key=iri, payload=iri, checkpoint={"file": self.fingerprint, "index": index + 1}
            )

    def close(self) -> None:
        self.graph = None

    # -- parsing ----------------------------------------------------------------------------

    def _values(self, node: Any, predicates: list[str]) -> list[Any]:
        import rdflib

        out: list[Any] = []
        for predicate in predicates:
            out.extend(self.graph.objects(node, rdflib.URIRef(predicate)))
        return out

    def _literal_texts(self, node: Any, predicates: list[str]) -> list[str]:
        import rdflib

        values = [v for v in self._values(node, predicates) if isinstance(v, rdflib.Literal)]
        preferred = [v for v in values if v.language == self.settings.language]
        ordered = preferred + [v for v in values if v not in preferred]
        return [str(v).strip() for v in ordered if str(v).strip()]

    def _first_text(self, node: Any, predicates: list[str]) -> str | None:
        found = self._literal_texts(node, predicates)
        return found[0] if found else None

    def parse(self, item: RawItem) -> Record:
        import rdflib

        node = rdflib.URIRef(item.payload)
        identifier = self._first_text(node, self.settings.identifier) or item.payload
        date = self._first_text(node, self.settings.date)
        start, end = mapping.years_of(date)
        rights_values = self._values(node, self.settings.rights)
        landing = [
            str(v)
            for v in self._values(node, self.settings.landing_page)
            if isinstance(v, rdflib.URIRef)
        ]
        return Record(
            source_id=identifier,
            iri=item.payload,
            title=self._first_text(node, self.settings.title),
            creators=self._literal_texts(node, self.settings.creator),
            date=date,
            date_start=start,
            date_end=end,
            institution=self._first_text(node, self.settings.institution),
            rights=str(rights_values[0]).strip() if rights_values else None,
            landing_page=landing[0] if landing else None,
            images=self._images(node),
            subjects=self._subjects(node),
            raw=self._raw(node),
        )

    def _images(self, node: Any) -> list[ImageRef]:
        import rdflib

        images: list[ImageRef] = []
        for value in self._values(node, self.settings.image):
            if isinstance(value, rdflib.URIRef):
                images.append(ImageRef(url=str(value)))
        # JocondeLab: jcl:noticeImage -> a node with the URL and whether it is the main image
        for image_node in self._values(node, [JCL + "noticeImage"]):
            urls = self._values(image_node, [JCL + "noticeImageUrl"])
            if not urls:
                continue
            main = [str(v).lower() for v in self._values(image_node, [JCL + "noticeImageIsMain"])]
            images.append(ImageRef(url=str(urls[0]).strip(), is_main="true" in main or "1" in main))
        images.sort(key=lambda image: (not image.is_main, image.url))
        if images and not any(image.is_main for image in images):
            images[0].is_main = True
        return images

    def _subjects(self, node: Any) -> list[Subject]:
        import rdflib

        subjects: list[Subject] = []
        for value in self._values(node, self.settings.subject):
            if isinstance(value, rdflib.URIRef):
                subjects.append(Subject(uri=str(value), field="subject"))
            elif isinstance(value, rdflib.Literal) and str(value).strip():
                subjects.append(
                    Subject(label=str(value).strip(), lang=value.language, field="subject")
                )
        for value in self._values(node, self.settings.subject_text):
            if isinstance(value, rdflib.Literal) and str(value).strip():
                subjects.append(
                    Subject(label=str(value).strip(), lang=value.language, field="subject_text")
                )
        subjects.sort(key=lambda s: (s.field or "", s.uri or "", s.label or ""))
        return subjects

    def _raw(self, node: Any) -> list[str]:
        """The resource's own triples as sorted N-Triples-like lines; blank nodes are written
        inline as ``[ p o ; ... ]`` so that the payload (and its hash) is the same every parse."""
        lines = sorted(
            f"{node.n3()} {p.n3()} {self._object_text(o, 0)} ."
            for _, p, o in self.graph.triples((node, None, None))
        )
        if not lines:
            raise RecordError("the resource has no triples")
        return lines

    def _object_text(self, value: Any, depth: int) -> str:
        import rdflib

        if not isinstance(value, rdflib.BNode):
            return value.n3()
        if depth >= 4:  # blank-node cycles are legal RDF; stop somewhere
            return "[]"
        inner = sorted(
            f"{p.n3()} {self._object_text(o, depth + 1)}"
            for _, p, o in self.graph.triples((value, None, None))
        )
        return "[ " + " ; ".join(inner) + " ]"


@hookimpl
def register_sources():
    return [RdfFileSource]
