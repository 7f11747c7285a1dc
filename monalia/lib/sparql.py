"""SPARQL queries with bound values: user input is never formatted into query text.

`bind(query, name=value)` replaces the variable ``?name`` (or ``$name``) with the value written
as a SPARQL term: strings become escaped literals, `IRI` values are checked and written in angle
brackets, numbers and booleans become typed literals. Variables inside strings, IRIs and comments
are left alone, so a label holding quotes, braces or ``#`` can neither break nor alter a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from monalia.api.records import check_iri
from monalia.errors import RecordError

_TOKENS = re.compile(
    r"""
    (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
              |'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
    |(?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
    |(?P<comment>\#[^\n]*)
    |(?P<var>[?$][A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


class IRI(str):
    """A value to bind as an IRI rather than as a string literal."""


class ScoreValue(float):
    """A score or threshold bound as ``xsd:float``, the type scores are written with: compared
    with a stored score, a threshold of 0.8333 then equals the score "0.8333"^^xsd:float
    instead of exceeding it (an xsd:double 0.8333 is above the float nearest 0.8333)."""


def term(value: Any) -> str:
    """A Python value written as a SPARQL term."""
    if isinstance(value, IRI):
        try:
            check_iri(str(value), "IRI")
        except RecordError as exc:
            raise ValueError(str(exc)) from None
        return f"<{value}>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f'"{value}"^^<http://www.w3.org/2001/XMLSchema#integer>'
    if isinstance(value, ScoreValue):
        return f'"{float(value)!r}"^^<http://www.w3.org/2001/XMLSchema#float>'
    if isinstance(value, float):
        return f'"{value!r}"^^<http://www.w3.org/2001/XMLSchema#double>'
    if isinstance(value, str):
        return '"' + _escape(value) + '"'
    if isinstance(value, tuple) and len(value) == 2:  # (text, language tag)
        text, lang = value
        if not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", lang or ""):
            raise ValueError(f"not a language tag: {lang!r}")
        return '"' + _escape(text) + '"@' + lang
    raise TypeError(f"cannot bind a {type(value).__name__} in a SPARQL query")


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


def values_block(variable: str, values: Iterable[Any]) -> str:
    """A ``VALUES ?variable { ... }`` block of bound terms (to splice in with `bind_block`)."""
    return "VALUES ?" + variable + " { " + " ".join(term(v) for v in values) + " }"


def values_rows(variables: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A ``VALUES (?a ?b) { (..) (..) }`` block of bound terms, one row per tuple."""
    names = " ".join("?" + name for name in variables)
    body = " ".join("(" + " ".join(term(v) for v in row) + ")" for row in rows)
    return f"VALUES ({names}) {{ {body} }}"


def bind(query: str, **values: Any) -> str:
    """The query with each ``?name`` replaced by `values[name]` written as a term."""
    used: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        var = match.group("var")
        if var is None:
            return match.group(0)
        name = var[1:]
        if name not in values:
            return var
        used.add(name)
        return term(values[name])

    bound = _TOKENS.sub(replace, query)
    missing = set(values) - used
    if missing:
        raise ValueError(f"the query has no variable {', '.join(sorted(missing))} to bind")
    return bound


def bind_block(query: str, marker: str, block: str) -> str:
    """The query with the comment line ``# {marker}`` replaced by `block` (built from terms)."""
    pattern = re.compile(r"^[ \t]*#[ \t]*\{" + re.escape(marker) + r"\}[ \t]*$", re.MULTILINE)
    if not pattern.search(query):
        raise ValueError(f"the query has no '# {{{marker}}}' line")
    return pattern.sub(lambda _: block, query, count=1)


def value_of(binding: dict[str, Any], name: str) -> str | None:
    """The lexical value of one variable in a SPARQL JSON result row, or None when unbound."""
    cell = binding.get(name)
    return None if cell is None else cell.get("value")


# -- a base for sources that page through a SPARQL endpoint -----------------------------------

from collections.abc import Iterator  # noqa: E402

from pydantic import Field  # noqa: E402

from monalia.api.plugin import PluginSettings  # noqa: E402
from monalia.api.source import RawItem, Source, SourceState  # noqa: E402
from monalia.lib.http import HttpSettings  # noqa: E402
from monalia.lib.local_store import sparql_client  # noqa: E402


class SparqlSourceSettings(PluginSettings):
    endpoint: str  # the SPARQL 1.1 query endpoint, or a local store folder or RDF file
    user: str | None = None
    password_env: str | None = None  # environment variable holding the password
    page_size: int = Field(500, ge=1, le=10_000)
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
        return not self.settings.endpoint.lower().startswith(("http://", "https://"))

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
        )

    def list_page(self, after: str) -> list[str]:
        query = bind(self.LIST_QUERY, after=after, **self.list_bindings())
        query = bind_block(query, "limit", f"LIMIT {int(self.settings.page_size)}")
        return [value_of(row, "item") for row in self.client.select(query) if row.get("item")]

    def describe(self, items: list[str]) -> dict[str, dict[str, dict[str, list[dict]]]]:
        """Per item: subject -> predicate -> terms, for every triple DESCRIBE_QUERY returns."""
        query = bind_block(self.DESCRIBE_QUERY, "items", values_block("item", map(IRI, items)))
        described: dict[str, dict[str, dict[str, list[dict]]]] = {item: {} for item in items}
        for row in self.client.select(query):
            item, subject, predicate = (value_of(row, k) for k in ("item", "s", "p"))
            if item not in described or subject is None or predicate is None:
                continue
            terms = described[item].setdefault(subject, {}).setdefault(predicate, [])
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
    for predicate in predicates:
        for cell in (resource or {}).get(predicate, []):
            if cell.get("type") in ("literal", "typed-literal") and cell["value"].strip():
                out.append(cell["value"].strip())
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
            predicate: sorted(
                (
                    {k: v for k, v in cell.items() if k != "type" or v == "uri"}
                    if cell.get("type") == "uri"
                    else {k: v for k, v in cell.items() if k != "type"}
                    for cell in cells
                ),
                key=lambda c: (c.get("value", ""), c.get("xml:lang", ""), c.get("datatype", "")),
            )
            for predicate, cells in sorted(resources[subject].items())
        }
    return out
