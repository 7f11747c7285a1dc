"""A base for sources that page through a SPARQL endpoint (or a local store or RDF file), and
helpers that read the resources it describes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field

from monalia.api.plugin import PluginSettings
from monalia.api.source import RawItem, Source, SourceState
from monalia.errors import RecordError
from monalia.net.http import HttpSettings
from monalia.net.sparql_endpoint import sparql_client
from monalia.rdf.local_store import is_remote
from monalia.rdf.sparql import IRI, bind, bind_block, value_of, values_block


class SparqlSourceSettings(PluginSettings):
    endpoint: str  # the SPARQL 1.1 query endpoint, or a local store folder or RDF file
    user: str | None = None  # user name for basic authentication
    password_env: str | None = None  # environment variable holding the password
    page_size: int = Field(500, ge=1, le=10_000)  # resources listed and described per query
    http: HttpSettings = Field(default_factory=HttpSettings)


class SparqlSource(Source):
    """Pages through the resources a SPARQL endpoint lists, in IRI order, then describes each page.

    A subclass sets `LIST_QUERY` (selects ``?item``; must hold ``FILTER(STR(?item) > ?after)``,
    ``ORDER BY STR(?item)`` and a ``# {limit}`` line after it) and `DESCRIBE_QUERY` (selects
    ``?item ?s ?p ?o`` for the items in the ``# {items}`` VALUES block), and implements
    `to_record(item_iri, resources)` where `resources` maps each subject IRI to its predicates
    and their SPARQL JSON terms. Resuming goes on after the last stored IRI: no gap, no repeat.
    """

    Settings = SparqlSourceSettings
    LIST_QUERY: ClassVar[str] = ""
    DESCRIBE_QUERY: ClassVar[str] = ""

    def reads_local_input(self) -> bool:
        """A store folder or RDF file on this machine is the project's own input."""
        return not is_remote(self.settings.endpoint)

    def list_bindings(self) -> dict[str, Any]:
        """Values bound into LIST_QUERY besides ``?after`` (user filters)."""
        return {}

    def open(self) -> None:
        password = self.context.secret(self.settings.password_env, "the SPARQL password")
        self.client = sparql_client(
            self.settings.endpoint,
            self.context.project_dir,
            self.settings.http,
            self.settings.user,
            password,
            policy=self.context.url_policy,
        )

    def list_page(self, after: str) -> list[str]:
        query = bind(self.LIST_QUERY, after=after, **self.list_bindings())
        query = bind_block(query, "limit", f"LIMIT {int(self.settings.page_size)}")
        return [value_of(row, "item") for row in self.client.select(query) if row.get("item")]

    def describe(self, items: list[str]) -> dict[str, dict[str, dict[str, list[dict]]]]:
        """Per item: subject -> predicate -> terms, for every triple DESCRIBE_QUERY returns."""
        query = bind_block(self.DESCRIBE_QUERY, "items", values_block("item", map(IRI, items)))
        described: dict[str, dict[str, dict[str, list[dict]]]] = {item: {} for item in items}
        for row in self.client.select(query):  # the hot loop of a large harvest: plain lookups
            item, subject, predicate = row.get("item"), row.get("s"), row.get("p")
            if item is None or subject is None or predicate is None:
                continue
            resources = described.get(item.get("value"))
            if resources is None or subject.get("value") is None or predicate.get("value") is None:
                continue
            terms = resources.setdefault(subject["value"], {}).setdefault(predicate["value"], [])
            if row["o"] not in terms:
                terms.append(row["o"])
        return described

    def items(self, state: SourceState) -> Iterator[RawItem]:
        after = (state.checkpoint or {}).get("after", "")
        while True:
            page = self.list_page(after)
            if not page:
                return
            described = self.describe(page)
            for item in page:
                yield RawItem(key=item, payload=described[item], checkpoint={"after": item})
            after = page[-1]
            if len(page) < self.settings.page_size:
                return

    def parse(self, item: RawItem):
        if not item.payload.get(item.key):
            raise RecordError("the endpoint returned no triples for it")
        return self.to_record(item.key, item.payload)

    def to_record(self, item: str, resources: dict[str, dict[str, list[dict]]]):
        raise NotImplementedError

    def close(self) -> None:
        self.client = None


def literals(resource: dict[str, list[dict]] | None, *predicates: str) -> list[str]:
    """The stripped literal values of these predicates, in order, without empties."""
    out: list[str] = []
    if not resource:
        return out
    for predicate in predicates:
        for cell in resource.get(predicate, ()):
            if cell.get("type") in ("literal", "typed-literal"):
                value = cell["value"].strip()
                if value:
                    out.append(value)
    return out


def iris(resource: dict[str, list[dict]] | None, *predicates: str) -> list[str]:
    """The IRI values of these predicates, in order."""
    return [
        cell["value"]
        for predicate in predicates
        for cell in (resource or {}).get(predicate, [])
        if cell.get("type") == "uri"
    ]


def raw_triples(resources: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, list]]:
    """The described triples as a stable JSON payload: subject -> predicate -> sorted values."""
    out: dict[str, dict[str, list]] = {}
    for subject in sorted(resources):
        out[subject] = {
            predicate: [_raw_term(cells[0])]
            if len(cells) == 1
            else sorted(map(_raw_term, cells), key=_term_order)
            for predicate, cells in sorted(resources[subject].items())
        }
    return out


def _raw_term(cell: dict) -> dict:
    """A result term as the raw payload keeps it: an IRI with its type, a literal without."""
    kept = dict(cell)
    if kept.get("type") != "uri":
        kept.pop("type", None)
    return kept


def _term_order(cell: dict) -> tuple[str, str, str]:
    return (cell.get("value", ""), cell.get("xml:lang", ""), cell.get("datatype", ""))
