"""What the three Joconde sources share: field codes, REPR terms, the notice's record.

All three produce the same record: REF as identifier (leading zeros kept), TITR title, AUTR
creators, MILL/PERI date, LOCA institution, COPY rights, the POP notice as landing page, images
from REFIM/IMG or the JocondeLab image nodes, and subjects from REPR (every nested term on its
own), DOMN and DENO, each tagged with its field.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urljoin

from pydantic import Field

from monalia.api.plugin import PluginSettings
from monalia.api.records import ImageRef, Record, Subject
from monalia.api.source import SourceState
from monalia.errors import RecordError
from monalia.formats import mapping

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
    if "(" not in text and ")" not in text:  # most values: every separator splits
        return re.split("[" + re.escape(separators) + "]", text)
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
    landing_page: str = LANDING_PAGE  # the notice's page; {ref} is filled in
    # fields whose terms become subjects (REPR's nested terms each one)
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


def changed_since(record: Record, state: SourceState) -> bool:
    """False for a record that --since (compared with its DMAJ, AAAA-MM-JJ) leaves out."""
    since = state.changed_after
    return not (since and record.modified and record.modified[:10] < str(since)[:10])
