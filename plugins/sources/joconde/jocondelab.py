"""``joconde-sparql``: JocondeLab-shaped RDF in a SPARQL endpoint (what MonaLIA queried):
notices with their main image, REPR thesaurus terms (URIs with labels) and REPR text.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urljoin

from monalia.api.records import ImageRef, Record, Subject
from monalia.errors import RecordError
from monalia.formats import mapping
from monalia.formats.sparql_source import (
    SparqlSource,
    SparqlSourceSettings,
    iris,
    literals,
    raw_triples,
)
from monalia.plugins.sources.joconde.notices import (
    JOCONDE_IMAGES,
    LANDING_PAGE,
    SKOS,
    repr_terms,
    split_values,
)
from monalia.rdf.sparql import IRI
from monalia.rdf.terms import JCL


class JocondeSparqlSettings(SparqlSourceSettings):
    with_image_only: bool = True  # MonaLIA's `jcl:noticeHasImage true`
    domain: str | None = None  # only notices whose DOMN contains this text, e.g. "peinture"
    image_base: str = JOCONDE_IMAGES  # resolves relative image paths
    landing_page: str = LANDING_PAGE  # the notice's page; {ref} is filled in


class JocondeSparqlSource(SparqlSource):
    """Joconde notices from JocondeLab-shaped RDF in a SPARQL endpoint."""

    name = "joconde-sparql"
    Settings = JocondeSparqlSettings

    LIST_QUERY = """
PREFIX jcl: <http://jocondelab.iri-research.org/ns/jocondelab/>
SELECT ?item WHERE {
  ?item a jcl:Notice .
  # {filters}
  FILTER(STR(?item) > ?after)
}
ORDER BY STR(?item)
# {limit}
"""
    DESCRIBE_QUERY = """
PREFIX jcl: <http://jocondelab.iri-research.org/ns/jocondelab/>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?item ?s ?p ?o WHERE {
  # {items}
  { ?item ?p ?o . BIND(?item AS ?s) }
  UNION { ?item jcl:noticeImage ?s . ?s ?p ?o }
  UNION { ?item jcl:noticeReprTerm ?s . ?s skos:prefLabel ?o . BIND(skos:prefLabel AS ?p) }
}
"""

    def list_bindings(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.settings.domain is not None:
            values["domain"] = self.settings.domain
        return values

    def list_page(self, after: str) -> list[str]:
        from monalia.rdf.sparql import bind, bind_block, value_of

        filters = []
        if self.settings.with_image_only:
            filters.append("?item jcl:noticeHasImage true .")
        if self.settings.domain is not None:
            filters.append(
                "?item jcl:noticeDomn ?domn . "
                "FILTER(CONTAINS(LCASE(STR(?domn)), LCASE(STR(?domain))))"
            )
        query = bind_block(self.LIST_QUERY, "filters", "\n  ".join(filters))
        query = bind(query, after=after, **self.list_bindings())
        query = bind_block(query, "limit", f"LIMIT {int(self.settings.page_size)}")
        return [value_of(row, "item") for row in self.client.select(query) if row.get("item")]

    def to_record(self, item: str, resources: dict[str, dict[str, list[dict]]]) -> Record:
        notice = resources[item]
        ref = (literals(notice, JCL + "noticeRef") or [None])[0]
        if not ref:
            raise RecordError("the notice has no jcl:noticeRef")
        date = (literals(notice, JCL + "noticeMill", JCL + "noticePeri") or [None])[0]
        start, end = mapping.years_of(date)
        subjects = [
            Subject(
                uri=term,
                label=(literals(resources.get(term), SKOS + "prefLabel") or [None])[0],
                lang="fr",
                field="REPR",
            )
            for term in sorted(set(iris(notice, JCL + "noticeReprTerm")))
        ]
        for text in literals(notice, JCL + "noticeRepr"):
            subjects.extend(
                Subject(label=term, lang="fr", field="REPR_text") for term in repr_terms(text)
            )
        # the other thesaurus-controlled fields a task may learn (`[tasks.NAME] fields`)
        for code in ("DOMN", "DENO", "TECH"):
            for text in literals(notice, JCL + "notice" + code.capitalize()):
                subjects.extend(
                    Subject(label=term, lang="fr", field=code) for term in split_values(text)
                )
        return Record(
            source_id=ref,
            iri=str(IRI(item)),
            title=(literals(notice, JCL + "noticeTitr") or [None])[0],
            description=(literals(notice, JCL + "noticeDesc") or [None])[0],
            creators=[
                c for text in literals(notice, JCL + "noticeAutr") for c in split_values(text)
            ],
            date=date,
            date_start=start,
            date_end=end,
            institution=(literals(notice, JCL + "noticeLoca") or [None])[0],
            rights=(literals(notice, JCL + "noticeCopy") or [None])[0],
            landing_page=self.settings.landing_page.format(ref=quote(ref, safe="")),
            images=self._images(notice, resources),
            subjects=subjects,
            raw=raw_triples(resources),
        )

    def _images(self, notice, resources) -> list[ImageRef]:
        images: list[ImageRef] = []
        for node in iris(notice, JCL + "noticeImage") + [
            cell["value"]
            for cell in notice.get(JCL + "noticeImage", [])
            if cell.get("type") == "bnode"
        ]:
            image = resources.get(node, {})
            url = literals(image, JCL + "noticeImageUrl") or iris(image, JCL + "noticeImageUrl")
            path = url or literals(image, JCL + "noticeImagePath")
            if not path:
                continue
            main = [v.lower() for v in literals(image, JCL + "noticeImageIsMain")]
            images.append(
                ImageRef(
                    url=urljoin(self.settings.image_base, path[0].lstrip("/"))
                    if "://" not in path[0]
                    else path[0],
                    is_main="true" in main or "1" in main,
                )
            )
        images.sort(key=lambda image: (not image.is_main, image.url))
        if images and not any(image.is_main for image in images):
            images[0].is_main = True
        return images
