"""``joconde-text``: the Ministry's own record format: one field code per line, the value on the
next line(s), `` -`` at a line end continues the value, ``//`` ends a record.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any

from monalia.api.records import Record
from monalia.api.source import RawItem, Source, SourceState, file_fingerprint
from monalia.errors import RecordError, SourceUnavailable
from monalia.plugins.sources.joconde.notices import (
    FIELD_CODES,
    MULTI_VALUED,
    JocondeMappingSettings,
    changed_since,
    notice_record,
    split_values,
)


class JocondeTextSettings(JocondeMappingSettings):
    path: str  # the file of notices in the Ministry's text format
    encoding: str = "utf-8"  # the file's encoding


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
        return record if changed_since(record, self.state) else None


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
