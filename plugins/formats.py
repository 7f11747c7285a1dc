"""The metadata formats monalia reads: Dublin Core (``oai_dc``), EDM (``edm``), LIDO (``lido``).

Each is registered as a third-party format would be; the OAI-PMH source picks one by its
``metadata_prefix``, and the EDM and LIDO file sources read with the same code.
"""

from __future__ import annotations

from typing import Any

from monalia import hookimpl
from monalia.api.metadata_format import MetadataFormat, ReadOptions
from monalia.api.records import Record
from monalia.formats.dublin_core import read_dc
from monalia.formats.edm import read_edm
from monalia.formats.lido import read_lido


class DublinCore(MetadataFormat):
    """Simple Dublin Core, the format every OAI-PMH repository offers."""

    name = "oai_dc"

    def read(self, element: Any, options: ReadOptions) -> list[Record]:
        return read_dc(element, options)


class Edm(MetadataFormat):
    """The Europeana Data Model in RDF/XML (provider or Europeana shape)."""

    name = "edm"

    def read(self, element: Any, options: ReadOptions) -> list[Record]:
        return read_edm(element, options)


class Lido(MetadataFormat):
    """LIDO 1.0 and 1.1, the museum harvest schema."""

    name = "lido"

    def read(self, element: Any, options: ReadOptions) -> list[Record]:
        return read_lido(element, options)


@hookimpl
def register_metadata_formats():
    return [DublinCore, Edm, Lido]
