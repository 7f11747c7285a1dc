"""SPARQL queries with bound values: user input is never formatted into query text.

`bind(query, name=value)` replaces the variable ``?name`` (or ``$name``) with the value written
as a SPARQL term: strings become escaped literals, `IRI` values are checked and written in angle
brackets, numbers and booleans become typed literals. Variables inside strings, IRIs and comments
are left alone, so a label holding quotes, braces or ``#`` can neither break nor alter a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from monalia.errors import RecordError
from monalia.rdf.terms import check_iri

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


def select_values(client: Any, query: str, names: Sequence[str]) -> list[tuple[str | None, ...]]:
    """The lexical values of `names` in each row of a SELECT query (None where unbound): a
    store in this process gives them without building SPARQL JSON rows first."""
    direct = getattr(client, "select_values", None)
    if direct is not None:
        return direct(query, names)
    return [tuple(value_of(row, name) for name in names) for row in client.select(query)]


def value_of(binding: dict[str, Any], name: str) -> str | None:
    """The lexical value of one variable in a SPARQL JSON result row, or None when unbound."""
    cell = binding.get(name)
    return None if cell is None else cell.get("value")
