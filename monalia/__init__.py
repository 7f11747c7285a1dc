"""monalia: harvest museum collections, learn what their images show, write it back as linked data.

Plugin authors import what they need from here::

    from monalia import hookimpl, Source, Record
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from monalia.version import __version__

hookimpl = pluggy.HookimplMarker("monalia")
"""Decorator that marks a function of a plugin module as an implementation of a monalia hook."""

# Public names resolved on first use, so that `import monalia` (and `monalia --help`) stays light.
_LAZY = {
    "Source": "monalia.api.source",
    "RawItem": "monalia.api.source",
    "SourceState": "monalia.api.source",
    "Sink": "monalia.api.sink",
    "Labeler": "monalia.api.labeler",
    "TargetClass": "monalia.api.labeler",
    "ClassRequest": "monalia.api.labeler",
    "SubjectMatch": "monalia.api.labeler",
    "Thesaurus": "monalia.rdf.thesaurus",
    "Trainer": "monalia.api.trainer",
    "Predictor": "monalia.api.trainer",
    "LoadOptions": "monalia.api.trainer",
    "CrawlSpec": "monalia.api.source",
    "MetadataFormat": "monalia.api.metadata_format",
    "ReadOptions": "monalia.api.metadata_format",
    "Plugin": "monalia.api.plugin",
    "Record": "monalia.api.records",
    "ImageRef": "monalia.api.records",
    "Subject": "monalia.api.records",
    "RecordError": "monalia.errors",
}

if TYPE_CHECKING:  # pragma: no cover
    from monalia.api.labeler import ClassRequest, Labeler, SubjectMatch, TargetClass  # noqa: F401
    from monalia.api.metadata_format import MetadataFormat, ReadOptions  # noqa: F401
    from monalia.api.plugin import Plugin  # noqa: F401
    from monalia.api.records import ImageRef, Record, Subject  # noqa: F401
    from monalia.api.sink import Sink  # noqa: F401
    from monalia.api.source import CrawlSpec, RawItem, Source, SourceState  # noqa: F401
    from monalia.api.trainer import LoadOptions, Predictor, Trainer  # noqa: F401
    from monalia.errors import RecordError  # noqa: F401
    from monalia.rdf.thesaurus import Thesaurus  # noqa: F401

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'monalia' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
