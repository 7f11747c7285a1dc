"""Source: Behance Artistic Media (BAM), the SQLite file its authors distribute on request.

Each module (``modules``: ``mid``, ``project_id``, ``src`` image URL, ``mature_content``,
``license``) is a record. Its automatic labels (``automatic_labels``, one column per attribute
holding ``positive``, ``negative`` or ``unsure``) and crowd labels (``crowd_labels``: ``mid``,
``attribute``, ``label``) become subject terms with IRIs in monalia's BAM namespace
(``http://ns.inria.fr/monalia/bam/content_cat``), so that a thesaurus mapping can link them to
target classes. Only ``positive`` labels count by default; mature content is left out by default.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.records import ImageRef, Record, Subject
from monalia.api.source import RawItem, Source, SourceState
from monalia.errors import RecordError, SourceUnavailable
from monalia.rdf.terms import ML

ATTRIBUTES = ML + "bam/"
_ATTRIBUTE = re.compile(r"^(content|emotion|media)_[a-z0-9_]+$")
PAGE = 2000


class BehanceSettings(PluginSettings):
    path: str  # the BAM SQLite file, opened read-only
    labels: list[str] = Field(default_factory=lambda: ["positive"])  # values that make a subject
    automatic_labels: bool = True  # the dataset's automatically inferred labels
    crowd_labels: bool = True  # the labels given by the crowd
    include_mature: bool = False  # also the modules marked mature
    attributes: list[str] = Field(
        default_factory=list
    )  # only these (e.g. content_cat); all if empty
    # the landing page; {project_id} is filled in
    project_url: str = "https://www.behance.net/gallery/{project_id}/"


class BehanceSource(Source):
    """Modules of the Behance Artistic Media dataset (SQLite) with their attribute labels."""

    name = "behance"
    Settings = BehanceSettings
    batch_size = 2000

    def reads_local_input(self) -> bool:
        return True  # a local file: it may name local image files (allow_file_urls)

    def open(self) -> None:
        self.path = self.input_file()
        try:
            # read-only: the dataset file is never modified, even by accident
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            raise SourceUnavailable(f"{self.context.instance}: {self.path}: {exc}") from None
        if "modules" not in tables:
            raise SourceUnavailable(
                f"{self.context.instance}: {self.path.name} has no modules table; is it BAM?"
            )
        self.automatic_columns: list[str] = []
        if self.settings.automatic_labels and "automatic_labels" in tables:
            columns = [row[1] for row in self.db.execute("PRAGMA table_info(automatic_labels)")]
            self.automatic_columns = [c for c in columns if _ATTRIBUTE.match(c) and self._wanted(c)]
        self.has_crowd = self.settings.crowd_labels and "crowd_labels" in tables

    def _wanted(self, attribute: str) -> bool:
        return not self.settings.attributes or attribute in self.settings.attributes

    def close(self) -> None:
        self.db.close()

    def _where(self) -> str:
        return "" if self.settings.include_mature else " AND COALESCE(mature_content, 0) = 0"

    def estimate_total(self, state: SourceState) -> int | None:
        after = (state.checkpoint or {}).get("mid", -1)
        query = "SELECT COUNT(*) FROM modules WHERE mid > ?" + self._where()
        return self.db.execute(query, (after,)).fetchone()[0]

    def items(self, state: SourceState) -> Iterator[RawItem]:
        after = (state.checkpoint or {}).get("mid", -1)
        wanted = set(self.settings.labels)
        while True:
            modules = self.db.execute(
                "SELECT mid, project_id, src, mature_content, license FROM modules "
                "WHERE mid > ?" + self._where() + " ORDER BY mid LIMIT ?",
                (after, PAGE),
            ).fetchall()
            if not modules:
                return
            mids = [row[0] for row in modules]
            labels = self._labels(mids, wanted)
            for mid, project_id, src, mature, license_ in modules:
                payload = {
                    "mid": mid,
                    "project_id": project_id,
                    "src": src,
                    "mature_content": mature,
                    "license": license_,
                    "automatic_labels": labels["automatic"].get(mid, {}),
                    "crowd_labels": labels["crowd"].get(mid, {}),
                }
                yield RawItem(key=f"mid {mid}", payload=payload, checkpoint={"mid": mid})
            after = mids[-1]

    def _labels(self, mids: list[int], wanted: set[str]) -> dict[str, dict]:
        found: dict[str, dict] = {"automatic": {}, "crowd": {}}
        marks = ",".join("?" * len(mids))
        if self.automatic_columns:
            columns = ", ".join(f'"{c}"' for c in self.automatic_columns)  # names checked above
            for row in self.db.execute(
                f"SELECT mid, {columns} FROM automatic_labels WHERE mid IN ({marks})", mids
            ):
                found["automatic"][row[0]] = {
                    c: v for c, v in zip(self.automatic_columns, row[1:], strict=True) if v
                }
        if self.has_crowd:
            for mid, attribute, label in self.db.execute(
                f"SELECT mid, attribute, label FROM crowd_labels WHERE mid IN ({marks}) "
                "ORDER BY mid, attribute, label",
                mids,
            ):
                if attribute and self._wanted(attribute):
                    found["crowd"].setdefault(mid, {}).setdefault(attribute, []).append(label)
        return found

    def parse(self, item: RawItem) -> Record:
        data = item.payload
        src = (data["src"] or "").strip()
        if not src:
            raise RecordError("the module has no image URL (src)")
        wanted = set(self.settings.labels)
        subjects: dict[tuple[str, str], Subject] = {}
        for attribute, value in sorted(data["automatic_labels"].items()):
            if value in wanted:
                subjects[(attribute, "automatic")] = _subject(attribute, "automatic")
        for attribute, values in sorted(data["crowd_labels"].items()):
            if any(v in wanted for v in values):
                subjects[(attribute, "crowd")] = _subject(attribute, "crowd")
        project_id = data["project_id"]
        return Record(
            source_id=str(data["mid"]),
            rights=(str(data["license"]).strip() or None) if data["license"] else None,
            landing_page=self.settings.project_url.format(project_id=project_id)
            if project_id is not None
            else None,
            images=[ImageRef(url=src, is_main=True)],
            subjects=list(subjects.values()),
            raw=data,
        )


def _subject(attribute: str, origin: str) -> Subject:
    if not _ATTRIBUTE.match(attribute):
        raise RecordError(f"unknown attribute {attribute!r}")
    label = attribute.split("_", 1)[1].replace("_", " ")
    return Subject(uri=ATTRIBUTES + attribute, label=label, lang="en", field=origin)


@hookimpl
def register_sources():
    return [BehanceSource]
