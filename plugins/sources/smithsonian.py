"""Source: the Smithsonian American Art Museum's linked open data (CIDOC-CRM) over SPARQL.

Objects are ``crm:E22_Man-Made_Object``; the maker is reached through the production event
(``crm:P108i_was_produced_by/crm:P14_carried_out_by``), descriptions are linguistic objects whose
``rdf:value`` is HTML (stripped to text here, kept whole in the raw payload), images are
``crm:P138i_has_representation``, titles and dates come from appellations and time-spans.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

from monalia import hookimpl
from monalia.api.records import ImageRef, Record
from monalia.formats import mapping
from monalia.formats.sparql_source import (
    SparqlSource,
    SparqlSourceSettings,
    iris,
    literals,
    raw_triples,
)
from monalia.rdf.sparql import IRI

CRM = "http://www.cidoc-crm.org/cidoc-crm/"
RDF_VALUE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
LANDING_PAGE = "https://americanart.si.edu/object/{id}"


class SmithsonianSettings(SparqlSourceSettings):
    endpoint: str = "http://edan.si.edu/saam/sparql"  # SAAM's SPARQL endpoint
    # what the IRIs of the museum's objects start with
    object_prefix: str = "http://data.americanart.si.edu/object/id/"
    institution: str = "Smithsonian American Art Museum"  # the institution every record names
    landing_page: str = LANDING_PAGE  # the object's page; {id} is filled in


class SmithsonianSource(SparqlSource):
    """Objects of the Smithsonian American Art Museum from its CIDOC-CRM SPARQL endpoint."""

    name = "smithsonian"
    Settings = SmithsonianSettings

    LIST_QUERY = """
PREFIX crm: <http://www.cidoc-crm.org/cidoc-crm/>
SELECT ?item WHERE {
  ?item a crm:E22_Man-Made_Object .
  FILTER(STRSTARTS(STR(?item), ?prefix))
  FILTER(STR(?item) > ?after)
}
ORDER BY STR(?item)
# {limit}
"""
    DESCRIBE_QUERY = """
PREFIX crm: <http://www.cidoc-crm.org/cidoc-crm/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?item ?s ?p ?o WHERE {
  # {items}
  { ?item ?p ?o . BIND(?item AS ?s) }
  UNION { ?item crm:P108i_was_produced_by ?s . ?s ?p ?o }
  UNION { ?item crm:P108i_was_produced_by/crm:P4_has_time-span ?s . ?s ?p ?o }
  UNION { ?item crm:P108i_was_produced_by/crm:P14_carried_out_by ?s .
          ?s rdfs:label ?o . BIND(rdfs:label AS ?p) }
  UNION { ?item crm:P129i_is_subject_of ?s . ?s ?p ?o }
  UNION { ?item crm:P102_has_title|crm:P1_is_identified_by ?s . ?s ?p ?o }
}
"""

    def list_bindings(self) -> dict[str, Any]:
        return {"prefix": self.settings.object_prefix}

    def to_record(self, item: str, resources: dict[str, dict[str, list[dict]]]) -> Record:
        obj = resources[item]
        accession = (
            unquote(item[len(self.settings.object_prefix) :])
            if item.startswith(self.settings.object_prefix)
            else item.rstrip("/").rsplit("/", 1)[-1]
        )
        productions = iris(obj, CRM + "P108i_was_produced_by")
        makers = [
            maker
            for production in productions
            for maker in iris(resources.get(production), CRM + "P14_carried_out_by")
        ]
        creators = [(literals(resources.get(maker), RDFS_LABEL) or [None])[0] for maker in makers]
        spans = [
            span
            for production in productions
            for span in iris(resources.get(production), CRM + "P4_has_time-span")
        ]
        date = next(
            (
                text
                for span in spans
                for text in literals(
                    resources.get(span), RDFS_LABEL, CRM + "P82_at_some_time_within", RDF_VALUE
                )
            ),
            None,
        )
        start, end = mapping.years_of(date)
        titles = [
            text
            for node in iris(obj, CRM + "P102_has_title")
            for text in literals(resources.get(node), RDF_VALUE, RDFS_LABEL)
        ] + literals(obj, RDFS_LABEL)
        descriptions = [
            html_to_text(text)
            for node in iris(obj, CRM + "P129i_is_subject_of")
            for text in literals(resources.get(node), RDF_VALUE)
        ]
        images = [
            ImageRef(url=url, is_main=i == 0)
            for i, url in enumerate(sorted(set(iris(obj, CRM + "P138i_has_representation"))))
        ]
        return Record(
            source_id=accession,
            iri=str(IRI(item)),
            title=titles[0] if titles else None,
            description="\n\n".join(d for d in descriptions if d) or None,
            creators=sorted({c for c in creators if c}),
            date=date,
            date_start=start,
            date_end=end,
            institution=self.settings.institution,
            landing_page=self.settings.landing_page.format(id=accession),
            images=images,
            raw=raw_triples(resources),
        )


class _TextOnly(HTMLParser):
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self.handle_starttag(tag, [])


def html_to_text(markup: str) -> str:
    """Readable text from an HTML fragment: tags dropped, entities decoded, spaces tidied."""
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts)).replace("\xa0", " ")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@hookimpl
def register_sources():
    return [SmithsonianSource]
