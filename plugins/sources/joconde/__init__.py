"""Sources for Joconde, the French museums' collections database, in its three shapes.

- ``joconde-sparql`` (`jocondelab`): JocondeLab-shaped RDF in a SPARQL endpoint.
- ``joconde-text`` (`text_format`): the Ministry's own field-per-line record format.
- ``joconde-csv`` (`csv_export`): the open-data CSV export.

All three map a notice to a record the same way (`notices`).
"""

from __future__ import annotations

from monalia import hookimpl
from monalia.plugins.sources.joconde.csv_export import JocondeCsvSettings, JocondeCsvSource
from monalia.plugins.sources.joconde.jocondelab import JocondeSparqlSettings, JocondeSparqlSource
from monalia.plugins.sources.joconde.notices import (
    JOCONDE_IMAGES,
    JocondeMappingSettings,
    notice_images,
    notice_record,
    repr_terms,
    split_values,
)
from monalia.plugins.sources.joconde.text_format import (
    JocondeTextSettings,
    JocondeTextSource,
    parse_notice_text,
)

__all__ = [
    "JOCONDE_IMAGES",
    "JocondeCsvSettings",
    "JocondeCsvSource",
    "JocondeMappingSettings",
    "JocondeSparqlSettings",
    "JocondeSparqlSource",
    "JocondeTextSettings",
    "JocondeTextSource",
    "notice_images",
    "notice_record",
    "parse_notice_text",
    "repr_terms",
    "split_values",
]


@hookimpl
def register_sources():
    return [JocondeSparqlSource, JocondeTextSource, JocondeCsvSource]
