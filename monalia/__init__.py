"""monalia: harvest museum collections, learn what their images show, write it back as linked data.

Plugin authors import what they need from here::

    from monalia import hookimpl, Source, Record
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("monalia")
"""Decorator that marks a function of a plugin module as an implementation of a monalia hook."""

# Public names resolved on first use, so that `import monalia` (and `monalia --help`) stays light.
_LAZY = {
    "Source": "monalia.source",
    "RawItem": "monalia.source",
    "SourceState": "monalia.source",
    "Sink": "monalia.sink",
    "Labeler": "monalia.labeler",
    "TargetClass": "monalia.labeler",
    "ClassRequest": "monalia.labeler",
    "SubjectMatch": "monalia.labeler",
    "Thesaurus": "monalia.thesaurus",
    "Trainer": "monalia.trainer",
    "Plugin": "monalia.plugin",
    "Record": "monalia.records",
    "ImageRef": "monalia.records",
    "Subject": "monalia.records",
    "RecordError": "monalia.errors",
}

if TYPE_CHECKING:  # pragma: no cover
    from monalia.errors import RecordError  # noqa: F401
    from monalia.labeler import ClassRequest, Labeler, SubjectMatch, TargetClass  # noqa: F401
    from monalia.plugin import Plugin  # noqa: F401
    from monalia.records import ImageRef, Record, Subject  # noqa: F401
    from monalia.sink import Sink  # noqa: F401
    from monalia.source import RawItem, Source, SourceState  # noqa: F401
    from monalia.thesaurus import Thesaurus  # noqa: F401
    from monalia.trainer import Trainer  # noqa: F401

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'monalia' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
