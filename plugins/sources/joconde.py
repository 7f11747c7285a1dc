"""Sources for Joconde, the French museums' collections database, in its three shapes.

- ``joconde-sparql``: JocondeLab-shaped RDF in a SPARQL endpoint (what MonaLIA queried): notices
  with their main image, REPR thesaurus terms (URIs with labels) and REPR text.
- ``joconde-text``: the Ministry's own record format: one field code per line, the value on the
  next line(s), `` -`` at a line end continues the value, ``//`` ends a record.
- ``joconde-csv``: the open-data export: ``;``-separated, byte-order mark, multi-valued fields.

All three produce the same record: REF as identifier (leading zeros kept), TITR title, AUTR
creators, MILL/PERI date, LOCA institution, COPY rights, the POP notice as landing page, images
from REFIM/IMG or the JocondeLab image nodes, and subjects from REPR (every nested term on its
own), DOMN and DENO, each tagged with its field.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urljoin

from pydantic import Field

from monalia import hookimpl
from monalia.api.csv_file import CsvFile
from monalia.api.plugin import PluginSettings
from monalia.api.records import ImageRef, Record, Subject
from monalia.api.source import RawItem, Source, SourceState, file_fingerprint
from monalia.errors import RecordError, SourceUnavailable
from monalia.lib import mapping
from monalia.lib.rdf import JCL
from monalia.lib.sparql import (
    IRI,
    SparqlSource,
    SparqlSourceSettings,
    iris,
    literals,
    raw_triples,
)

SKOS = "http://www.w3.org/2004/02/skos/core#"
LANDING_PAGE = "https://www.pop.culture.gouv.fr/notice/joconde/{ref}"
# Where JocondeLab's relative image paths (/0059/m079057_0001758_p.jpg) were served from.
JOCONDE_IMAGES = "http://www2.culture.gouv.fr/Wave/image/joconde/"
# Where POP serves images named in IMG (joconde/REF/file.jpg) and REFIM.
POP_IMAGES = "https://pop-perf-assets.s3.gra.io.cloud.ovh.net/"

# Every field code of a Joconde notice (POP's schema); a line holding one of these starts a field.
FIELD_CODES = frozenset(
    [
        "REF",
        "REFMIS",
        "MANQUANT",
        "MANQUANT_COM",
        "ADPT",
        "APPL",
        "APTN",
        "ATTR",
        "AUTR",
        "BIBL",
        "COMM",
        "CONTACT",
        "COOR",
        "COPY",
        "DACQ",
        "DATA",
        "DATION",
        "DDPT",
        "DECV",
        "DENO",
        "DEPO",
        "DESC",
        "DESY",
        "DIFFU",
        "DIMS",
        "DMAJ",
        "DMIS",
        "DOMN",
        "DREP",
        "ECOL",
        "EPOQ",
        "ETAT",
        "EXPO",
        "GENE",
        "GEOHI",
        "HIST",
        "IMAGE",
        "IMG",
        "INSC",
        "INV",
        "LABEL",
        "LABO",
        "LARC",
        "LIEUX",
        "REGION",
        "DPT",
        "VILLE_M",
        "NOMOFF",
        "LOCA",
        "LOCA2",
        "LOCA3",
        "MILL",
        "MILU",
        "MOSA",
        "MSGCOM",
        "MUSEO",
        "NSDA",
        "ONOM",
        "PAUT",
        "PDAT",
        "PDEC",
        "PEOC",
        "PERI",
        "PERU",
        "PHOT",
        "PINS",
        "PLIEUX",
        "PREP",
        "PUTI",
        "RANG",
        "REDA",
        "REFIM",
        "REFMEM",
        "REFMER",
        "REFPAL",
        "REPR",
        "RETIF",
        "SREP",
        "STAT",
        "TECH",
        "TICO",
        "TITR",
        "TOUT",
        "UTIL",
        "VIDEO",
        "WWW",
        "LVID",
        "PRODUCTEUR",
        "BASE",
        "CONTIENT_IMAGE",
    ]
)
MULTI_VALUED = frozenset(
    [
        "AUTR",
        "DENO",
        "DEPO",
        "DOMN",
        "ECOL",
        "EPOQ",
        "GENE",
        "IMG",
        "LIEUX",
        "MILL",
        "PERI",
        "REPR",
        "SREP",
        "TECH",
        "UTIL",
        "VIDEO",
        "WWW",
    ]
)
# The open-data CSV names its columns by label; these are the labels of the fields monalia reads.
CSV_LABELS = {
    "REF": "Référence",
    "TITR": "Titre",
    "AUTR": "Auteur",
    "DOMN": "Domaine",
    "DENO": "Dénomination",
    "REPR": "Sujet représenté",
    "MILL": "Millésime de création",
    "PERI": "Période de création",
    "LOCA": "Localisation",
    "COPY": "Copyright notice",
    "REFIM": "Référence image",
    "IMG": "Adresse image",
    "DMAJ": "Date de mise à jour",
    "DESC": "Description",
    "INV": "N°Inventaire",
    "TECH": "Matériaux - techniques",
}


# -- shared mapping -------------------------------------------------------------------------------


def split_values(value: str | list[str] | None) -> list[str]:
    """Values of a multi-valued field: a list, or text separated by `;` (not inside brackets)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v.strip() for v in value if v and v.strip()]
    return [part.strip() for part in _split_top(value, ";") if part.strip()]


def _split_top(text: str, separators: str) -> list[str]:
    """Split at separators that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char in separators and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def repr_terms(value: str | list[str] | None) -> list[str]:
    """Every thesaurus term of a REPR value, outer and nested, once each, in reading order.

    ``scène (couple, chien) ; fond de paysage (colline, cours d'eau)`` gives scène, couple, chien,
    fond de paysage, colline, cours d'eau.
    """
    texts = value if isinstance(value, list) else [value] if value else []
    found: list[str] = []
    for text in texts:
        _collect_terms(text, found, 0)
    seen: set[str] = set()
    return [t for t in found if not (t.casefold() in seen or seen.add(t.casefold()))]


def _collect_terms(text: str, found: list[str], depth: int) -> None:
    if depth > 8:  # unbalanced or absurdly nested input: stop rather than recurse forever
        return
    for part in _split_top(text, ";,"):
        part = part.strip()
        if not part:
            continue
        opening = part.find("(")
        if opening < 0:
            found.append(_clean_term(part))
            continue
        head = part[:opening].strip()
        closing = part.rfind(")")
        inner = part[opening + 1 : closing if closing > opening else len(part)]
        if head:
            found.append(_clean_term(head))
        _collect_terms(inner, found, depth + 1)
        rest = part[closing + 1 :].strip() if closing > opening else ""
        if rest:
            _collect_terms(rest, found, depth + 1)
    found[:] = [t for t in found if t]


def _clean_term(term: str) -> str:
    return re.sub(r"\s+", " ", term.replace("(", " ").replace(")", " ")).strip(" -#")


class JocondeMappingSettings(PluginSettings):
    """How notices become records: shared by the text and CSV sources."""

    image_url: str = POP_IMAGES + "joconde/{ref}/{name}"  # REFIM names; {ref}, {name} (lower case)
    image_base: str = POP_IMAGES  # prefix of IMG paths
    landing_page: str = LANDING_PAGE
    subject_fields: list[str] = Field(default_factory=lambda: ["REPR", "DOMN", "DENO"])


def notice_record(fields: dict[str, Any], settings: JocondeMappingSettings) -> Record:
    """A record from a notice's fields, keyed by Joconde field code."""

    def one(code: str) -> str | None:
        value = fields.get(code)
        if isinstance(value, list):
            value = " ; ".join(v for v in value if v)
        return value.strip() or None if isinstance(value, str) else None

    ref = one("REF")
    if not ref:
        raise RecordError("the notice has no REF")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", ref):
        raise RecordError(f"REF {ref!r} is not a Joconde reference")
    date = " ; ".join(split_values(fields.get("MILL"))) or one("PERI")
    start, end = mapping.years_of(date)
    subjects: list[Subject] = []
    for code in settings.subject_fields:
        terms = repr_terms(fields.get(code)) if code == "REPR" else split_values(fields.get(code))
        subjects.extend(Subject(label=term, lang="fr", field=code) for term in terms)
    return Record(
        source_id=ref,
        title=one("TITR"),
        description=one("DESC"),
        creators=split_values(fields.get("AUTR")),
        date=date or None,
        date_start=start,
        date_end=end,
        institution=one("LOCA"),
        rights=one("COPY"),
        landing_page=settings.landing_page.format(ref=quote(ref, safe="")),
        images=notice_images(fields, ref, settings),
        subjects=subjects,
        modified=one("DMAJ"),
        raw=fields,
    )


def notice_images(fields: dict[str, Any], ref: str, settings: JocondeMappingSettings) -> list:
    urls: list[str] = []
    for path in split_values(fields.get("IMG")):
        urls.append(path if "://" in path else urljoin(settings.image_base, path.lstrip("/")))
    refim = fields.get("REFIM")
    refim = " ; ".join(refim) if isinstance(refim, list) else refim or ""
    for entry in re.split(r"\s*;\s*", refim):
        name = entry.split(",")[0].strip()
        if name:
            urls.append(
                settings.image_url.format(ref=quote(ref, safe=""), name=quote(name.lower()))
            )
    unique = list(dict.fromkeys(urls))
    return [ImageRef(url=url, is_main=i == 0) for i, url in enumerate(unique)]


def _changed_since(record: Record, state: SourceState) -> bool:
    """False for a record that --since (compared with its DMAJ, AAAA-MM-JJ) leaves out."""
    since = state.changed_after
    return not (since and record.modified and record.modified[:10] < str(since)[:10])


# -- the Ministry's text format ---------------------------------------------------------------------


class JocondeTextSettings(JocondeMappingSettings):
    path: str
    encoding: str = "utf-8"


class JocondeTextSource(Source):
    """Joconde notices in the Ministry's field-per-line text format (``//`` ends a record)."""

    name = "joconde-text"
    Settings = JocondeTextSettings
    batch_size = 2000

    def reads_local_input(self) -> bool:
        return True  # a local file: it may name local image files (allow_file_urls)

    def open(self) -> None:
        self.path = self.input_file()
        try:
            codecs.lookup(self.settings.encoding)
        except LookupError:
            raise SourceUnavailable(
                f"{self.context.instance}: unknown encoding {self.settings.encoding!r}"
            ) from None

    def _start(self, state: SourceState) -> tuple[int, int]:
        checkpoint = state.checkpoint or {}
        if checkpoint.get("file") == file_fingerprint(self.path):
            return checkpoint["offset"], checkpoint["line"]
        return 0, 0

    def estimate_total(self, state: SourceState) -> int | None:
        offset, _ = self._start(state)
        count = 0
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                if line.rstrip(b"\r\n") == b"//":
                    count += 1
        return count

    def items(self, state: SourceState) -> Iterator[RawItem]:
        offset, number = self._start(state)
        fingerprint = file_fingerprint(self.path)
        lines: list[bytes] = []
        first_line = number + 1
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for raw in handle:
                number += 1
                offset += len(raw)
                if raw.rstrip(b"\r\n").strip() != b"//":
                    if lines or raw.strip():
                        lines.append(raw)
                    else:
                        first_line = number + 1
                    continue
                key = _text_key(lines, first_line)
                checkpoint = {"file": fingerprint, "offset": offset, "line": number}
                yield RawItem(key=key, payload=b"".join(lines), checkpoint=checkpoint)
                lines, first_line = [], number + 1
            if any(line.strip() for line in lines):
                checkpoint = {"file": fingerprint, "offset": offset, "line": number}
                yield RawItem(
                    key=_text_key(lines, first_line),
                    payload=b"".join(lines) + b"\n//missing",
                    checkpoint=checkpoint,
                )

    def parse(self, item: RawItem) -> Record | None:
        text: bytes = item.payload
        if text.endswith(b"\n//missing"):
            raise RecordError("the file ends inside a record (no closing //)")
        try:
            decoded = text.decode(self.settings.encoding)
        except UnicodeDecodeError as exc:
            raise RecordError(f"not {self.settings.encoding} text: {exc.reason}") from None
        record = notice_record(parse_notice_text(decoded), self.settings)
        return record if _changed_since(record, self.state) else None


def _text_key(lines: list[bytes], first_line: int) -> str:
    for i, line in enumerate(lines[:-1]):
        if line.strip() == b"REF":
            return f"line {first_line}: REF {lines[i + 1].strip().decode('utf-8', 'replace')}"
    return f"line {first_line}"


def parse_notice_text(text: str) -> dict[str, Any]:
    """The fields of one notice in the text format, multi-valued ones as lists."""
    fields: dict[str, Any] = {}
    code: str | None = None
    value: list[str] = []
    continued = False

    def finish() -> None:
        if code is None:
            return
        joined = " ".join(part for part in value if part)
        if not joined:
            raise RecordError(f"field {code} has no value")
        if code in fields:
            raise RecordError(f"field {code} appears twice")
        fields[code] = split_values(joined) if code in MULTI_VALUED else joined

    for number, line in enumerate(text.splitlines(), start=1):
        line = line.rstrip()
        if not continued and line in FIELD_CODES:
            finish()
            code, value = line, []
            continue
        if code is None:
            if line.strip():
                raise RecordError(f"line {number} of the record holds {line[:40]!r}, not a field")
            continue
        continued = line.endswith(" -") or line == "-"
        value.append(line[:-1].rstrip() if continued else line.strip())
    finish()
    if not fields:
        raise RecordError("empty record")
    return fields


# -- the open-data CSV export -------------------------------------------------------------------------


def _normalise_header(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.strip().casefold())
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


class JocondeCsvSettings(JocondeMappingSettings):
    path: str
    delimiter: str = ";"
    encoding: str = "utf-8-sig"  # the export starts with a byte-order mark
    columns: dict[str, str] = Field(default_factory=dict)  # field code -> column header


class JocondeCsvSource(Source):
    """Joconde notices from the open-data CSV export (``;``-separated, multi-valued fields)."""

    name = "joconde-csv"
    Settings = JocondeCsvSettings
    batch_size = 2000

    def reads_local_input(self) -> bool:
        return True  # a local file: it may name local image files (allow_file_urls)

    def open(self) -> None:
        self.path = self.input_file()
        self.reader = CsvFile(self.path, self.settings.encoding, self.settings.delimiter)
        self.columns = self._column_map(self.reader.header)

    def _column_map(self, header: list[str]) -> dict[int, str]:
        """Column index -> field code, from the settings, then codes and labels in the header."""
        by_name = {_normalise_header(name): i for i, name in enumerate(header)}
        wanted: dict[str, list[str]] = {code: [code] for code in FIELD_CODES}
        for code, label in CSV_LABELS.items():
            wanted[code].append(label)
        for code, column in self.settings.columns.items():
            if _normalise_header(column) not in by_name:
                raise SourceUnavailable(
                    f"{self.context.instance}: column {column!r} (for {code}) is not in the "
                    f"header of {self.path.name}"
                )
            wanted[code] = [column]
        columns: dict[int, str] = {}
        for code, names in wanted.items():
            for name in names:
                index = by_name.get(_normalise_header(name))
                if index is not None:
                    columns[index] = code
                    break
        if "REF" not in columns.values():
            raise SourceUnavailable(
                f"{self.context.instance}: no REF column in {self.path.name} "
                f'(map it with columns = {{ REF = "..." }})'
            )
        return columns

    def estimate_total(self, state: SourceState) -> int | None:
        return None if state.checkpoint else self.reader.estimate_rows()

    def items(self, state: SourceState) -> Iterator[RawItem]:
        for row_number, row, checkpoint in self.reader.rows(state.checkpoint):
            yield RawItem(key=f"row {row_number}", payload=row, checkpoint=checkpoint)

    def parse(self, item: RawItem) -> Record | None:
        row: list[str] = item.payload
        self.reader.check_row(row)
        if len(row) != len(self.reader.header):
            raise RecordError(f"{len(row)} columns where the header has {len(self.reader.header)}")
        fields: dict[str, Any] = {}
        for index, code in self.columns.items():
            value = row[index].strip()
            if value:
                fields[code] = split_values(value) if code in MULTI_VALUED else value
        record = notice_record(fields, self.settings)
        # the stored payload (and so the content hash) holds every column, mapped or not: a
        # change in a column monalia does not read is still a change
        header = self.reader.header
        record.raw = dict(fields)
        for index, value in enumerate(row):
            if index not in self.columns and value.strip():
                record.raw[header[index].lstrip("\ufeff")] = value.strip()
        return record if _changed_since(record, self.state) else None


# -- JocondeLab RDF over SPARQL -----------------------------------------------------------------------


class JocondeSparqlSettings(SparqlSourceSettings):
    with_image_only: bool = True  # MonaLIA's `jcl:noticeHasImage true`
    domain: str | None = None  # only notices whose DOMN contains this text, e.g. "peinture"
    image_base: str = JOCONDE_IMAGES  # resolves relative image paths
    landing_page: str = LANDING_PAGE


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
        from monalia.lib.sparql import bind, bind_block, value_of

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


@hookimpl
def register_sources():
    return [JocondeSparqlSource, JocondeTextSource, JocondeCsvSource]
