"""A harvested record in the form the catalog stores it, made where it is parsed.

Kept apart from the record store, which needs SQLAlchemy: a harvest's reading and parsing
processes use only this, and start before the writer has loaded the catalog's libraries.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from monalia import jsontext
from monalia.api.records import Record
from monalia.api.source import ItemOutcome

NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"


class PreparedRecord(NamedTuple):
    """A checked record as the catalog stores it: its columns, subjects and images as plain
    values, so that it crosses from a parsing process to the writer cheaply (a pickled
    `Record` costs more to send than to parse again). `record` is the `Record` itself where
    the writer needs it (the `record_harvested` hook), else None."""

    source_id: str
    iri: str | None
    deleted: bool
    content_hash: str
    values: tuple  # the VALUE_COLUMNS; creators and raw as JSON text (raw may be None)
    subjects: tuple  # (uri, label, lang, field) per subject
    images: tuple  # (url, iiif_service, is_main) per image, repeated URLs left out
    replication: Any  # the source's replication key value, where it has one
    record: Record | None = None


class PreparedOutcome(NamedTuple):
    """One item's outcome with its records prepared (see `ItemOutcome`)."""

    key: str
    checkpoint: Any
    records: list[PreparedRecord]
    error: str | None
    warnings: list[str]


def prepare_record(
    record: Record, replication_key: str | None = None, keep: bool = False
) -> PreparedRecord:
    """The record's stored form. Its content hash and raw JSON were made by `validate`."""
    return PreparedRecord._make(record_values(record, replication_key, keep))


def record_values(record: Record, replication_key: str | None = None, keep: bool = False) -> tuple:
    """The fields of the record's `PreparedRecord`, as a plain tuple (what crosses from a
    parsing process: a named tuple costs twice as much to pickle)."""
    raw = record.raw_json()
    images = []
    seen: set[str] = set()
    for image in record.images:
        if image.url in seen:
            continue
        seen.add(image.url)
        images.append((image.url, image.iiif_service, image.is_main))
    return (
        record.source_id,
        record.iri,
        record.deleted,
        record.content_hash(),
        (
            record.title,
            record.description,
            jsontext.dumps(list(record.creators)),
            record.date,
            record.date_start,
            record.date_end,
            record.institution,
            record.rights,
            record.landing_page,
            record.modified,
            None if raw is None else raw.decode("utf-8"),
        ),
        tuple((s.uri, s.label, s.lang, s.field) for s in record.subjects),
        tuple(images),
        getattr(record, replication_key, None) if replication_key else None,
        record if keep else None,
    )


def prepare_outcome(
    outcome: ItemOutcome | PreparedOutcome, replication_key: str | None = None, keep: bool = False
) -> PreparedOutcome:
    """An item's outcome with its records prepared; one already prepared is returned as is."""
    if isinstance(outcome, PreparedOutcome):
        return outcome
    return PreparedOutcome(
        outcome.item.key,
        outcome.item.checkpoint,
        [prepare_record(r, replication_key, keep) for r in outcome.records],
        outcome.error,
        outcome.warnings,
    )
