"""Base class of metadata formats: how one record's XML (an OAI-PMH ``<metadata>`` payload or
one record of a file) becomes monalia records.

The OAI-PMH source picks the format whose ``name`` is its ``metadata_prefix``; monalia ships
``oai_dc``, ``edm`` and ``lido``. A package adds another by returning its class from the
``register_metadata_formats`` hook::

    class Mods(MetadataFormat):
        name = "mods"

        def read(self, element, options):
            title = element.findtext("{http://www.loc.gov/mods/v3}titleInfo/...")
            return [Record(source_id=options.identifier, title=title)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from monalia.api.plugin import Plugin
from monalia.api.records import Record


def _ignore(message: str) -> None:
    """Warnings go nowhere unless the caller collects them."""


@dataclass
class ReadOptions:
    """What a format needs to know besides the XML.

    `identifier` is the record's identifier outside the XML (the OAI header's), for formats
    whose XML has none; `base` resolves relative IRIs (never the file's location, so record
    IRIs do not depend on where a file lives); `warn` reports a repaired or dropped value
    (kept on the run as a warning, counted).
    """

    languages: tuple[str, ...] = ("en",)
    identifier: str | None = None
    base: str | None = None
    warn: Callable[[str], None] = field(default=_ignore)


class MetadataFormat(Plugin):
    """Base of every metadata format plugin; `name` is its OAI-PMH metadata prefix."""

    kind: ClassVar[str] = "metadata-format"

    def read(self, element: Any, options: ReadOptions) -> list[Record]:
        """The records of one record's XML (an lxml element: the metadata's root element).

        Raise `RecordError` (or any exception) when it cannot be read: the item fails with
        that reason and the run goes on.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement read()")
