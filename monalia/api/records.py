"""The normalised record every source produces, and how it is checked, hashed and named."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote

from monalia import jsontext, masking
from monalia.errors import RecordError
from monalia.rdf.terms import IRI_FORBIDDEN, check_iri  # noqa: F401  (part of the record API)

# Characters RFC 3987 forbids in an IRI; a record carrying one would break every RDF sink.


@dataclass
class Subject:
    """A subject term of a record: a thesaurus URI, a literal label, or both."""

    uri: str | None = None
    label: str | None = None
    lang: str | None = None
    field: str | None = None  # the source field it came from, e.g. "REPR"


@dataclass
class ImageRef:
    """A reference to one image of a record (fetched later by the image stage)."""

    url: str
    iiif_service: str | None = None
    is_main: bool = False


@dataclass
class Record:
    """A harvested record, normalised across sources; `raw` keeps the source's own payload."""

    source_id: str
    title: str | None = None
    description: str | None = None  # plain text; markup stays in `raw`
    creators: list[str] = field(default_factory=list)
    date: str | None = None  # as the source writes it
    date_start: int | None = None  # years, when the date could be read as such
    date_end: int | None = None
    institution: str | None = None
    rights: str | None = None
    landing_page: str | None = None
    images: list[ImageRef] = field(default_factory=list)
    subjects: list[Subject] = field(default_factory=list)
    raw: Any = None
    iri: str | None = None
    modified: str | None = None  # the source's own last-modified stamp, where it has one
    # the source reports the record deleted (an OAI-PMH tombstone): the catalog keeps the row,
    # marked deleted, and stops publishing, labelling and fetching it
    deleted: bool = False

    def validate(self) -> None:
        """Raise `RecordError` saying what is wrong when the record cannot be stored as it is."""
        if not isinstance(self.source_id, str) or not self.source_id.strip():
            raise RecordError(f"record has no identifier (source_id={self.source_id!r})")
        if self.iri is not None:
            check_iri(self.iri, "iri")
        if self.landing_page:
            check_iri(self.landing_page, "landing_page")
        if not isinstance(self.creators, list) or not all(
            isinstance(c, str) for c in self.creators
        ):
            raise RecordError(f"creators must be a list of strings, not {self.creators!r}")
        for name in ("date_start", "date_end"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise RecordError(f"{name} must be a year (an integer), not {value!r}")
        for image in self.images:
            check_iri(image.url, "image url")
            if image.iiif_service:
                check_iri(image.iiif_service, "IIIF service")
        for subject in self.subjects:
            if not subject.uri and not (subject.label and subject.label.strip()):
                raise RecordError("a subject term has neither a URI nor a label")
            if subject.uri:
                check_iri(subject.uri, "subject URI")
        self.__dict__.pop("_hash", None)
        self.__dict__.pop("_raw_json", None)
        self.content_hash()  # also proves that the raw payload can be stored as JSON

    def content_hash(self) -> str:
        """SHA-256 of everything the record says, so that an unchanged record is recognised.

        Computed once and kept: the framework hashes a record after its last change.
        """
        cached = self.__dict__.get("_hash")
        if cached is not None:
            return cached
        fields = self.__dict__
        try:
            payload: dict[str, Any] = {name: fields[name] for name in _HASHED_ALWAYS}
        except KeyError:  # a subclass that keeps a field elsewhere (a property)
            payload = {name: getattr(self, name) for name in _HASHED_ALWAYS}
        # fields added later count only when set: the hashes of records without them stay
        if self.description is not None:
            payload["description"] = self.description
        if self.deleted:
            payload["deleted"] = True
        payload["images"] = [vars(image) for image in self.images]
        payload["subjects"] = [vars(subject) for subject in self.subjects]
        try:
            # the raw payload's text, sorted as the hash needs it, is the text the catalog keeps
            raw = self.raw_json()
            payload["raw"] = None if raw is None else jsontext.Fragment(raw)
            data = jsontext.canonical(payload)
        except (TypeError, ValueError) as exc:
            raise RecordError(f"the record cannot be stored as JSON: {exc}") from None
        digest = hashlib.sha256(data).hexdigest()
        self.__dict__["_hash"] = digest
        return digest

    def raw_json(self) -> bytes | None:
        """The raw payload as JSON text (UTF-8, keys sorted); computed once, like the hash."""
        if self.raw is None:
            return None
        cached = self.__dict__.get("_raw_json")
        if cached is None:
            try:
                # a payload that echoes a configured secret (an API key in a link) keeps none
                cached = self.__dict__["_raw_json"] = masking.mask_json(
                    jsontext.canonical(self.raw)
                )
            except (TypeError, ValueError) as exc:
                raise RecordError(f"the record cannot be stored as JSON: {exc}") from None
        return cached

    @property
    def main_image(self) -> ImageRef | None:
        for image in self.images:
            if image.is_main:
                return image
        return self.images[0] if self.images else None


# Every field but the IRI, which derives from the identifier (a new base is not a change).
_HASHED_FIELDS = tuple(
    f.name for f in fields(Record) if f.name not in ("iri", "images", "subjects")
)
# those hashed whatever their value (description and deleted count only when set)
_HASHED_ALWAYS = tuple(name for name in _HASHED_FIELDS if name not in ("description", "deleted"))


def mint_iri(base_iri: str, source: str, source_id: str) -> str:
    """A stable IRI for a record whose source gives none: base + record/SOURCE/ID, quoted."""
    if _UNQUOTED.fullmatch(source_id) is None:  # most ids need no quoting: quote() is slow
        if source_id.isascii():  # the usual id with a colon or a slash: one table lookup each
            source_id = source_id.translate(_ASCII_QUOTED)
        else:
            source_id = _QUOTED.sub(_percent_encoded, source_id)
    return f"{_record_base(base_iri, source)}{source_id}"


# what `quote(..., safe="")` leaves as it is, and what it percent-encodes (as UTF-8 bytes)
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")
_QUOTED = re.compile(r"[^A-Za-z0-9_.~-]+")
_ASCII_QUOTED = {
    code: f"%{code:02X}" for code in range(128) if _UNQUOTED.fullmatch(chr(code)) is None
}


def _percent_encoded(found: re.Match) -> str:
    return "".join(f"%{byte:02X}" for byte in found.group().encode("utf-8"))


@functools.lru_cache(maxsize=64)
def _record_base(base_iri: str, source: str) -> str:
    return f"{base_iri}record/{quote(source, safe='')}/"
