"""Source: records from a local JSON Lines file, one JSON object per line.

Keys are read by name (configurable): ``id``, ``title``, ``creators``, ``date``, ``date_start``,
``date_end``, ``institution``, ``rights``, ``landing_page``, ``images`` (URLs or objects with
``url`` and ``iiif_service``), ``subjects`` (IRIs, labels or objects with ``uri``, ``label``,
``lang``), ``iri``, ``modified``. The whole object is kept as the raw payload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.records import Record
from monalia.api.source import RawItem, Source, SourceState, file_fingerprint
from monalia.errors import RecordError, SourceUnavailable
from monalia.formats import mapping

FIELDS = (
    "id",
    "iri",
    "title",
    "creators",
    "date",
    "date_start",
    "date_end",
    "institution",
    "rights",
    "landing_page",
    "images",
    "subjects",
    "modified",
)


class JsonLinesSettings(PluginSettings):
    path: str  # the file: one JSON object per line
    encoding: str = "utf-8"  # the file's encoding
    subject_language: str | None = None  # language of subject labels that carry none
    keys: dict[str, str] = Field(default_factory=dict)  # record field -> key in the objects


class JsonLinesSource(Source):
    """Records from a local JSON Lines file."""

    name = "jsonl"
    Settings = JsonLinesSettings

    def reads_local_input(self) -> bool:
        return True  # a local file: it may name local image files (allow_file_urls)

    @property
    def path(self) -> Path:
        return self.context.path(self.settings.path)

    @cached_property
    def _keys(self) -> dict[str, str]:
        unknown = set(self.settings.keys) - set(FIELDS)
        if unknown:
            raise SourceUnavailable(
                f"{self.context.instance}: keys names unknown record fields {sorted(unknown)} "
                f"(known: {', '.join(FIELDS)})"
            )
        return {field: self.settings.keys.get(field, field) for field in FIELDS}

    def _start(self, state: SourceState) -> tuple[int, int]:
        """Byte offset and line number to start from: after the checkpoint, when it still fits."""
        checkpoint = state.checkpoint or {}
        if checkpoint.get("file") == file_fingerprint(self.path):
            return checkpoint["offset"], checkpoint["line"]
        return 0, 0

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceUnavailable(f"{self.context.instance}: no such file {self.path}")
        self._keys  # noqa: B018 - checks the key mapping before anything is read

    def estimate_total(self, state: SourceState) -> int | None:
        offset, _ = self._start(state)
        lines = 0
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
        return lines

    def items(self, state: SourceState) -> Iterator[RawItem]:
        offset, number = self._start(state)
        fingerprint = file_fingerprint(self.path)
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for raw in handle:
                number += 1
                offset += len(raw)
                if not raw.strip():
                    continue
                checkpoint = {"file": fingerprint, "offset": offset, "line": number}
                yield RawItem(key=f"line {number}", payload=raw, checkpoint=checkpoint)

    def parse(self, item: RawItem) -> Record:
        try:
            text = item.payload.decode(self.settings.encoding)
            # a byte-order mark (a file saved by a spreadsheet) is not part of the record
            data: Any = json.loads(text.removeprefix("\ufeff"))
        except UnicodeDecodeError as exc:
            raise RecordError(f"not {self.settings.encoding} text: {exc.reason}") from None
        except json.JSONDecodeError as exc:
            raise RecordError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {type(data).__name__}")
        keys = self._keys

        def get(field: str) -> Any:
            return data.get(keys[field])

        identifier = get("id")
        if isinstance(identifier, int) and not isinstance(identifier, bool):
            identifier = str(identifier)
        if not isinstance(identifier, str) or not identifier.strip():
            raise RecordError(f"no identifier under key {keys['id']!r}")
        date = mapping.text(get("date"), "date")
        start, end = mapping.years_of(date)
        return Record(
            source_id=identifier.strip(),
            iri=mapping.text(get("iri"), "iri"),
            title=mapping.text(get("title"), "title"),
            creators=mapping.texts(get("creators"), "creators"),
            date=date,
            date_start=mapping.year(get("date_start"), "date_start") or start,
            date_end=mapping.year(get("date_end"), "date_end") or end,
            institution=mapping.text(get("institution"), "institution"),
            rights=mapping.text(get("rights"), "rights"),
            landing_page=mapping.text(get("landing_page"), "landing_page"),
            images=mapping.images(get("images")),
            subjects=mapping.subjects(get("subjects"), lang=self.settings.subject_language),
            modified=mapping.text(get("modified"), "modified"),
            raw=data,
        )


@hookimpl
def register_sources():
    return [JsonLinesSource]
