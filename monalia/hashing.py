"""Content hashes: of files, read in blocks so large files stay out of memory, and of short texts
(the parts of a minted IRI or id)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def text_digest(*parts: str, length: int = 24) -> str:
    """The first `length` hex digits of the SHA-256 of `parts` joined by newlines: the same
    parts always give the same id."""
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:length]
