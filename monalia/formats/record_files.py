"""The files a file source reads: one file, a folder of them, or a ZIP archive (how Europeana
and many aggregators ship record dumps), always in the same order, so a run resumes by name."""

from __future__ import annotations

import fnmatch
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import Field

from monalia.api.plugin import PluginSettings
from monalia.api.source import Source, file_fingerprint
from monalia.errors import SourceUnavailable

MIB = 1024 * 1024


@dataclass(frozen=True)
class RecordFile:
    """One file to read: its name (relative to the folder or archive) and where it is."""

    name: str
    path: Path
    member: str | None = None  # the member's name, for a file inside a ZIP archive

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        if self.member is None:
            with self.path.open("rb") as handle:
                yield handle
        else:
            with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as handle:
                yield handle


def record_files(path: Path, pattern: str = "*.xml") -> list[RecordFile]:
    """The files at `path` matching `pattern`, sorted by name: the file itself, the files of a
    folder (and its subfolders), or the members of a ZIP archive."""
    if not path.exists():
        raise SourceUnavailable(f"no such file or folder {path}")
    if path.is_dir():
        files = [
            RecordFile(p.relative_to(path).as_posix(), p)
            for p in path.rglob("*")
            if p.is_file() and fnmatch.fnmatch(p.name, pattern)
        ]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            files = [
                RecordFile(info.filename, path, info.filename)
                for info in archive.infolist()
                if not info.is_dir() and fnmatch.fnmatch(Path(info.filename).name, pattern)
            ]
    else:
        files = [RecordFile(path.name, path)]
    return sorted(files, key=lambda f: f.name)


class FileSettings(PluginSettings):
    path: str  # a file, a folder (searched recursively) or a ZIP archive
    pattern: str = "*.xml"  # which files of a folder or archive to read
    languages: list[str] = Field(default_factory=lambda: ["en"])  # preferred label languages
    max_bytes: int = Field(64 * MIB, ge=1)  # a larger file is a failed item, not read


def fingerprint(file: RecordFile) -> str:
    """The file's (or its archive's) size and time, and the member's name: a checkpoint from
    another version of it does not apply."""
    return f"{file.member or ''}:{file_fingerprint(file.path)}"


class RecordFilesSource(Source):
    """Base of sources reading `FileSettings` files: a local input, its files listed in order
    when the run opens."""

    Settings = FileSettings

    def reads_local_input(self) -> bool:
        return True  # a local file: it may name local image files (allow_file_urls)

    def open(self) -> None:
        self.files = record_files(self.context.path(self.settings.path), self.settings.pattern)


def files_after(files: list[RecordFile], checkpoint: dict | None) -> tuple[list[RecordFile], int]:
    """The files still to read after `checkpoint`, and how many records of the first to skip."""
    if not checkpoint or "file" not in checkpoint:
        return files, 0
    names = [f.name for f in files]
    if checkpoint["file"] not in names:
        return files, 0
    index = names.index(checkpoint["file"])
    if fingerprint(files[index]) != checkpoint.get("fingerprint"):
        return files, 0  # the file changed since: read everything again
    return files[index:], checkpoint.get("record", 0)
