"""``joconde-csv``: the open-data export: ``;``-separated, byte-order mark, multi-valued fields."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from monalia.api.csv_file import CsvFile
from monalia.api.records import Record
from monalia.api.source import RawItem, Source, SourceState
from monalia.errors import RecordError, SourceUnavailable
from monalia.plugins.sources.joconde.notices import (
    CSV_LABELS,
    FIELD_CODES,
    MULTI_VALUED,
    JocondeMappingSettings,
    changed_since,
    notice_record,
    split_values,
)


def _normalise_header(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.strip().casefold())
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


class JocondeCsvSettings(JocondeMappingSettings):
    path: str  # the open-data export
    delimiter: str = ";"  # the CSV delimiter
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
        return record if changed_since(record, self.state) else None
