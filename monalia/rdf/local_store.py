"""SPARQL without a server: queries run in-process on an embedded store or an RDF file.

An embedded store is a folder pyoxigraph keeps on disk (what the ``embedded-store`` sink
writes); an RDF file (Turtle, N-Triples, RDF/XML, ..., optionally gzipped) is loaded into memory.
Results come back as SPARQL 1.1 JSON result rows, exactly as an HTTP endpoint returns them, so a
source or a report does not care which it talks to. The default graph is the union of all graphs.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from monalia.errors import ConfigError, MonaliaError

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def is_remote(endpoint: str) -> bool:
    """True for a network endpoint (any ``scheme://`` but ``file://``: the URL policy then
    refuses all but http and https), false for a local store folder or RDF file."""
    scheme = _URL_SCHEME.match(endpoint)
    return scheme is not None and scheme.group(1).lower() != "file"


def json_term(term: Any) -> dict[str, str]:
    """A pyoxigraph term as a SPARQL JSON result term."""
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    cell = {"type": "literal", "value": term.value}
    if term.language:
        cell["xml:lang"] = term.language
    elif term.datatype.value not in (XSD_STRING, RDF_LANG_STRING):
        cell["datatype"] = term.datatype.value
    return cell


class LocalSparqlClient:
    """The `select` of `monalia.net.http.SparqlClient`, on a store folder or an RDF file."""

    def __init__(self, path: Path):
        from monalia.rdf.thesaurus import rdf_format

        self.endpoint = str(path)
        self.queries_made = 0
        if path.is_dir():
            try:
                self.store = ox.Store.read_only(str(path))
            except OSError as exc:
                raise MonaliaError(f"cannot open the store in {path}: {exc}") from None
        elif path.is_file():
            self.store = ox.Store()
            opener = gzip.open if path.suffix == ".gz" else open
            try:
                with opener(path, "rb") as handle:
                    self.store.load(handle.read(), format=rdf_format(path))
            except (SyntaxError, OSError, ValueError) as exc:
                raise MonaliaError(f"cannot read {path} as RDF: {exc}") from None
        else:
            raise ConfigError(
                f"SPARQL endpoint {path}: no such store folder or RDF file "
                "(an endpoint on a server starts with http:// or https://)"
            )

    def _solutions(self, query: str) -> ox.QuerySolutions:
        self.queries_made += 1
        try:
            solutions = self.store.query(query, use_default_graph_as_union=True)
        except SyntaxError as exc:
            raise MonaliaError(
                f"SPARQL on {self.endpoint}: the query is malformed: {exc}"
            ) from None
        if not isinstance(solutions, ox.QuerySolutions):
            raise MonaliaError(f"SPARQL on {self.endpoint}: not a SELECT query")
        return solutions

    def select_values(self, query: str, names: list[str]) -> list[tuple[str | None, ...]]:
        """The lexical values of `names` in each row of a SELECT query, None where unbound
        (see `monalia.rdf.sparql.select_values`)."""
        solutions = self._solutions(query)
        variables = [variable.value for variable in solutions.variables]
        positions = [variables.index(name) if name in variables else None for name in names]
        rows = []
        for solution in solutions:
            terms = tuple(solution)  # in variable order: much cheaper than by name
            rows.append(
                tuple(
                    None if at is None or terms[at] is None else terms[at].value for at in positions
                )
            )
        return rows

    def select(self, query: str) -> list[dict[str, Any]]:
        """The result bindings of a SELECT query, as SPARQL JSON term objects."""
        solutions = self._solutions(query)
        names = [variable.value for variable in solutions.variables]
        rows = []
        for solution in solutions:
            # iterating a solution yields its terms in variable order: much cheaper than by name
            rows.append(
                {
                    name: json_term(value)
                    for name, value in zip(names, solution, strict=True)
                    if value is not None
                }
            )
        return rows
