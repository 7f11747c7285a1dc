"""RDF terms, the RDF shape of harvested records, and streaming Turtle / N-Triples writing.

Writing never builds a graph in memory: triples are serialised as they come, subjects that
follow each other are grouped in Turtle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

from monalia.errors import RecordError

ML = "http://ns.inria.fr/monalia/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
DCTERMS = "http://purl.org/dc/terms/"
SCHEMA = "http://schema.org/"
FOAF = "http://xmlns.com/foaf/0.1/"
EDM = "http://www.europeana.eu/schemas/edm/"
PROV = "http://www.w3.org/ns/prov#"
OA = "http://www.w3.org/ns/oa#"
MEDIA_FRAGMENTS = "http://www.w3.org/TR/media-frags/"  # what an xywh selector conforms to
SKOS = "http://www.w3.org/2004/02/skos/core#"
JCL = "http://jocondelab.iri-research.org/ns/jocondelab/"
T523 = "http://data.culture.fr/thesaurus/resource/ark:/67717/"

PREFIXES = {
    "ml": ML,
    "rdf": RDF,
    "rdfs": RDFS,
    "xsd": XSD,
    "dcterms": DCTERMS,
    "schema": SCHEMA,
    "foaf": FOAF,
    "edm": EDM,
    "prov": PROV,
    "skos": SKOS,
    "jcl": JCL,
    "t": T523,
}

# Characters no IRI may hold (RFC 3987), and the scheme an absolute IRI starts with.
IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# both at once, for the usual IRI that passes (checked for every IRI of every record)
_ACCEPTED = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20<>"{}|^`\\]*')


def check_iri(value: Any, what: str) -> None:
    """Raise `RecordError` unless `value` is an absolute IRI an RDF store will accept."""
    if type(value) is str and _ACCEPTED.fullmatch(value) is not None:
        return
    if not isinstance(value, str) or not value:
        raise RecordError(f"{what} is not a string: {value!r}")
    if IRI_FORBIDDEN.search(value):
        raise RecordError(f"{what} {value!r} contains characters not allowed in an IRI")
    if not _SCHEME.match(value):
        raise RecordError(f"{what} {value!r} is not an absolute IRI (no scheme)")


class IRI(str):
    """An IRI term (a plain string is taken as one too)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal term with an optional language tag or datatype IRI."""

    value: str
    lang: str | None = None
    datatype: str | None = None


Term = IRI | str | Literal
Triple = tuple[Term, Term, Term]

_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_NEEDS_ESCAPE = re.compile(r'[\\"\n\r\t\b\f]')
_IRI_ESCAPE = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_LOCAL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _escape_literal(value: str) -> str:
    return _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], value)


def nt_iri(value: str) -> str:
    """An IRI in N-Triples syntax. Characters an IRI may not hold are percent-encoded (a
    ``\\u0020`` escape would only put the space back in, and strict parsers refuse it)."""
    if _IRI_ESCAPE.search(value):
        value = _IRI_ESCAPE.sub(lambda m: quote(m.group(), safe=""), value)
    return f"<{value}>"


def nt_term(term: Term) -> str:
    """A term in N-Triples syntax."""
    if isinstance(term, Literal):
        text = f'"{_escape_literal(term.value)}"'
        if term.lang:
            return f"{text}@{term.lang}"
        if term.datatype:
            return f"{text}^^{nt_iri(term.datatype)}"
        return text
    return nt_iri(term)


def nt_line(triple: Triple) -> str:
    s, p, o = triple
    return f"{nt_term(s)} {nt_term(p)} {nt_term(o)} .\n"


class TurtleWriter:
    """Writes triples as Turtle as they come: prefixes once, consecutive subjects grouped."""

    def __init__(self, out: IO[str], prefixes: dict[str, str] | None = None):
        self.out = out
        self.prefixes = dict(PREFIXES if prefixes is None else prefixes)
        # longest namespace first, so the most specific prefix wins
        self._namespaces = sorted(self.prefixes.items(), key=lambda kv: -len(kv[1]))
        self._subject: Term | None = None
        self._predicate: Term | None = None
        self.count = 0
        for prefix, namespace in self.prefixes.items():
            out.write(f"@prefix {prefix}: <{namespace}> .\n")
        out.write("\n")

    def term(self, term: Term, predicate: bool = False) -> str:
        if isinstance(term, Literal):
            if term.datatype and not term.lang:
                return f'"{_escape_literal(term.value)}"^^{self.term(IRI(term.datatype))}'
            return nt_term(term)
        if predicate and term == RDF + "type":
            return "a"
        for prefix, namespace in self._namespaces:
            if term.startswith(namespace):
                local = term[len(namespace) :]
                if _LOCAL_NAME.match(local):
                    return f"{prefix}:{local}"
                break
        return nt_iri(term)

    def write(self, triples: Iterable[Triple]) -> None:
        out = self.out
        for s, p, o in triples:
            if s == self._subject:
                if p == self._predicate:
                    out.write(f" ,\n        {self.term(o)}")
                else:
                    out.write(f" ;\n    {self.term(p, True)} {self.term(o)}")
            else:
                if self._subject is not None:
                    out.write(" .\n\n")
                out.write(f"{self.term(s)}\n    {self.term(p, True)} {self.term(o)}")
            self._subject, self._predicate = s, p
            self.count += 1

    def close(self) -> None:
        if self._subject is not None:
            self.out.write(" .\n")
        self._subject = self._predicate = None


class NTriplesWriter:
    """Writes triples as N-Triples, one line each."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.count = 0

    def write(self, triples: Iterable[Triple]) -> None:
        for triple in triples:
            self.out.write(nt_line(triple))
            self.count += 1

    def close(self) -> None:
        pass


# -- records as RDF ----------------------------------------------------------------------------


def records_graph_iri(base_iri: str, source: str) -> str:
    """The named graph holding the records of one source instance."""
    return f"{base_iri}graph/records/{quote(source, safe='')}"


def _is_iri(value: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|^`\\]*$", value))


def record_triples(row) -> Iterator[Triple]:
    """The triples of one catalog record (documented in ontology/records.md)."""
    s = IRI(row.iri)
    yield s, RDF + "type", IRI(ML + "Record")
    yield s, DCTERMS + "identifier", Literal(row.source_id)
    yield s, ML + "harvestedFrom", Literal(row.source)
    if row.title:
        yield s, DCTERMS + "title", Literal(row.title)
    for creator in row.creators or []:
        yield s, DCTERMS + "creator", Literal(creator)
    if row.date:
        yield s, DCTERMS + "date", Literal(row.date)
    if row.date_start is not None:
        yield s, ML + "yearStart", Literal(str(row.date_start), datatype=XSD + "integer")
    if row.date_end is not None:
        yield s, ML + "yearEnd", Literal(str(row.date_end), datatype=XSD + "integer")
    if row.institution:
        yield s, EDM + "dataProvider", Literal(row.institution)
    if row.rights:
        yield s, DCTERMS + "rights", IRI(row.rights) if _is_iri(row.rights) else Literal(row.rights)
    if row.landing_page:
        yield s, FOAF + "page", IRI(row.landing_page)
    for image in row.images:
        yield s, SCHEMA + "image", IRI(image.url)
    for subject in row.subjects:
        if subject.uri:
            yield s, DCTERMS + "subject", IRI(subject.uri)
        if subject.label:
            yield s, ML + "subjectText", Literal(subject.label, lang=subject.lang or None)
    # the images' own triples come last so that the record's triples stay one Turtle block
    for image in row.images:
        if image.iiif_service:
            yield IRI(image.url), ML + "iiifService", IRI(image.iiif_service)


def parse_error_line(exc: BaseException) -> str:
    """One line for an RDF parser's error: where (the line) and why, without rdflib's
    multi-line excerpt of the input."""
    text = str(exc)
    line = re.search(r"\bline (\d+)", text)
    reason = re.search(r"Bad syntax \(([^)]*)\)", text)
    why = reason.group(1) if reason else next((t for t in text.splitlines() if t.strip()), "")
    why = why.strip().rstrip(":")
    if line and f"line {line.group(1)}" not in why:
        return f"line {line.group(1)}: {why[:300]}"
    return why[:300] or type(exc).__name__
