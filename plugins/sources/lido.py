"""Source: LIDO files (1.0 and 1.1): one file, a folder of them, or a ZIP archive; a file may
hold one ``lido:lido`` or a ``lido:lidoWrap`` of thousands, streamed record by record.

Each record is read as the OAI-PMH source reads LIDO metadata (`monalia.formats.lido`). A record
that cannot be read is one failed item; where a file stops being well-formed XML, the records
before that point are kept and the rest of the file is one failed item with the parser's line.
"""

from __future__ import annotations

from collections.abc import Iterator

from monalia import hookimpl
from monalia.api.metadata_format import ReadOptions
from monalia.api.records import Record
from monalia.api.source import RawItem, SourceState
from monalia.errors import RecordError
from monalia.formats.lido import LIDO, RECORD_TAG, read_lido
from monalia.formats.record_files import RecordFilesSource, files_after, fingerprint
from monalia.formats.xml_records import as_xml_text, clean, iter_elements


class LidoFileSource(RecordFilesSource):
    """LIDO XML files (lido:lidoWrap or single lido:lido records)."""

    name = "lido"

    def items(self, state: SourceState) -> Iterator[RawItem]:
        files, skip = files_after(self.files, state.checkpoint)
        for position, file in enumerate(files):
            first = skip if position == 0 else 0
            stamp = fingerprint(file)
            number = 0
            with file.open() as handle:
                records = iter_elements(handle, [RECORD_TAG])
                while True:
                    try:
                        element = next(records)
                    except StopIteration:
                        break
                    except RecordError as exc:
                        yield RawItem(
                            key=f"{file.name} after record {number}",
                            payload=exc,
                            checkpoint={"file": file.name, "record": number, "fingerprint": stamp},
                        )
                        break
                    number += 1
                    if number <= first:
                        continue
                    key = clean(element.findtext(f"{{{LIDO}}}lidoRecID"))
                    yield RawItem(
                        key=key or f"{file.name} record {number}",
                        payload=element,
                        checkpoint={"file": file.name, "record": number, "fingerprint": stamp},
                    )

    def parse(self, item: RawItem) -> list[Record]:
        if isinstance(item.payload, Exception):
            raise item.payload
        options = ReadOptions(languages=tuple(self.settings.languages), warn=self.warn)
        records = read_lido(item.payload, options)
        xml = as_xml_text(item.payload)
        for record in records:
            record.raw = {"lido": xml, **(record.raw or {})}
        return records


@hookimpl
def register_sources():
    return [LidoFileSource]
