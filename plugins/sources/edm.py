"""Source: EDM (Europeana Data Model) RDF/XML files: one file, a folder of them, or a ZIP dump.

Every ``edm:ProvidedCHO`` of a file is a record, read as the OAI-PMH source reads EDM metadata
(`monalia.formats.edm`). A record's IRI is its CHO's ``rdf:about`` when that is an absolute http(s)
IRI, resolved against the ``base`` setting when it is relative, and otherwise minted from it:
never from where the file lies. A file that is not well-formed, too large or holds no CHO is
one failed item with its reason; a link that cannot be an IRI is repaired or dropped with a
warning, and its record kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from monalia import hookimpl
from monalia.api.metadata_format import ReadOptions
from monalia.api.records import Record
from monalia.api.source import RawItem, SourceState
from monalia.errors import RecordError
from monalia.formats.edm import read_edm
from monalia.formats.record_files import (
    FileSettings,
    RecordFile,
    RecordFilesSource,
    files_after,
    fingerprint,
)
from monalia.formats.xml_records import parse_bytes


class EdmSettings(FileSettings):
    base: str | None = None  # resolves relative rdf:about values into record IRIs


class EdmFileSource(RecordFilesSource):
    """EDM RDF/XML files (provider or Europeana shape)."""

    name = "edm"
    Settings = EdmSettings

    def estimate_total(self, state: SourceState) -> int | None:
        return len(files_after(self.files, state.checkpoint)[0])

    def items(self, state: SourceState) -> Iterator[RawItem]:
        files, skip = files_after(self.files, state.checkpoint)
        for file in files[1:] if skip else files:
            yield RawItem(
                key=file.name,
                payload=file,
                checkpoint={"file": file.name, "record": 1, "fingerprint": fingerprint(file)},
            )

    def parse(self, item: RawItem) -> list[Record]:
        file: RecordFile = item.payload
        with file.open() as handle:
            data = handle.read(self.settings.max_bytes + 1)
        if len(data) > self.settings.max_bytes:
            raise RecordError(
                f"larger than max_bytes ({self.settings.max_bytes:,} bytes); not read"
            )
        root = parse_bytes(data)
        options = ReadOptions(
            languages=tuple(self.settings.languages), base=self.settings.base, warn=self.warn
        )
        records = read_edm(root, options)
        for record in records:
            record.raw = {"rdf_about": record.source_id, "edm": data.decode("utf-8", "replace")}
        return records


@hookimpl
def register_sources():
    return [EdmFileSource]
