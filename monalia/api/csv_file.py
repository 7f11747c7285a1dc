"""Reading large CSV files as a stream that a run can resume in the middle of."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from pathlib import Path

from monalia.api.source import file_fingerprint
from monalia.errors import RecordError, SourceUnavailable

# Bytes the encoding cannot decode come through as lone surrogates (``surrogateescape``), so one
# bad byte fails its row, not the file.
_UNDECODED = re.compile("[\udc80-\udcff]")


class CsvFile:
    """Streams a CSV file row by row with the byte offset after each row, so a run resumes
    exactly after its last stored row even when quoted fields span lines."""

    def __init__(self, path: Path, encoding: str, delimiter: str):
        self.path = path
        self.encoding = encoding
        self.delimiter = delimiter
        self.fingerprint = file_fingerprint(path)
        with path.open("rb") as handle:
            lines = self._lines(handle, [0])
            try:
                self.header = next(csv.reader(lines, delimiter=delimiter))
            except StopIteration:
                raise SourceUnavailable(f"{path} is empty") from None
            except (csv.Error, UnicodeDecodeError) as exc:
                raise SourceUnavailable(f"{path}: cannot read the CSV header: {exc}") from None
        self.header_end = self._header_end()

    def _header_end(self) -> int:
        with self.path.open("rb") as handle:
            position = [0]
            reader = csv.reader(self._lines(handle, position), delimiter=self.delimiter)
            next(reader)
            return position[0]

    def _lines(self, handle, position: list[int], errors: str = "strict"):
        decoder = codecs.getincrementaldecoder(self.encoding)(errors)
        for raw in handle:
            position[0] += len(raw)
            yield decoder.decode(raw)

    def estimate_rows(self) -> int:
        count = 0
        with self.path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                count += chunk.count(b"\n")
        return max(0, count - 1)

    def rows(self, checkpoint: dict | None) -> Iterator[tuple[int, list[str], dict]]:
        """(row number, cells, checkpoint after the row) for every data row after `checkpoint`."""
        offset, number = self.header_end, 1
        if checkpoint and checkpoint.get("file") == self.fingerprint:
            offset, number = checkpoint["offset"], checkpoint["row"]
        with self.path.open("rb") as handle:
            handle.seek(offset)
            position = [offset]
            lines = self._lines(handle, position, "surrogateescape")
            if offset:  # the BOM belongs to the first line only
                lines = (line.lstrip("\ufeff") if i == 0 else line for i, line in enumerate(lines))
            reader = csv.reader(lines, delimiter=self.delimiter, strict=False)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise SourceUnavailable(
                        f"{self.path}: unreadable after row {number}: {exc}"
                    ) from None
                number += 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                yield number, row, {"file": self.fingerprint, "offset": position[0], "row": number}

    def check_row(self, row: list[str]) -> None:
        """Raise `RecordError` when a cell holds bytes the file's encoding cannot decode (the
        row fails; the rows after it are read as usual)."""
        try:
            # undecoded bytes are lone surrogates, which UTF-8 cannot encode: the encoder
            # finds them faster than a search (one call per row, the common case)
            "".join(row).encode("utf-8")
            return
        except UnicodeEncodeError:
            pass
        for index, cell in enumerate(row):
            found = _UNDECODED.search(cell)
            if found:
                byte = ord(found.group()) - 0xDC00
                column = self.header[index] if index < len(self.header) else f"#{index + 1}"
                raise RecordError(
                    f"byte 0x{byte:02x} in column {column!r} is not valid {self.encoding}"
                )
