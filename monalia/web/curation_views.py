"""What the workbench's Audit, Precision and Teach pages read and write; mixed into the
`Workbench`."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from monalia.catalog.models import ImageRow, RecordRow


class CurationViews:
    _space = None  # the records' vectors for teaching, loaded when first asked
    _space_lock = threading.Lock()

    def audit_problems(self, kind: str | None = None, limit: int = 300):
        """The stored audit findings (of one kind), worst first, and the count of each kind."""
        from monalia.curation.audit import problem_counts, stored_problems

        problems = stored_problems(self.catalog, [kind] if kind else None)
        return problems[:limit], problem_counts(self.catalog)

    def review_stats(self):
        from monalia.curation.review_stats import review_stats

        labels = {cls.uri: cls.label for cls in self.classes}
        return review_stats(self.catalog, labels)

    def teach_space(self):
        from monalia.curation.teach import record_space

        with self._space_lock:
            if self._space is None:
                self._space = record_space(self.catalog, self.project)
            return self._space

    def taught_summary(self) -> list[dict[str, Any]]:
        from monalia.curation.teach import taught_summary

        return taught_summary(self.catalog)

    def _record_of(self, reference: str) -> str:
        from monalia.similarity.near_duplicates import resolve_reference

        return resolve_reference(self.catalog, reference)[0].record

    def teach_new(self, label: str, uri: str | None, examples: list[str], reviewer: str):
        """A new class with the records that show it (IRIs, SOURCE:ID or IDs)."""
        from monalia.curation.teach import answer, create_class
        from monalia.errors import ConfigError

        if not examples:
            raise ConfigError("give at least one record that shows the class")
        records = [self._record_of(reference) for reference in examples[:100]]
        cls = create_class(self.catalog, self.project.file.project.base_iri, label, reviewer, uri)
        for record in records:
            answer(self.catalog, cls, record, True, reviewer, comment="example")
        return cls

    def teach_lesson(self, number: str, asks: int):
        from monalia.curation.teach import find_taught, lesson

        cls = find_taught(self.catalog, number)
        return lesson(self.catalog, cls, self.teach_space(), asks)

    def teach_answer(self, class_uri: str, record_iri: str, shows, reviewer: str):
        from monalia.curation.teach import answer, find_taught

        return answer(
            self.catalog, find_taught(self.catalog, class_uri), record_iri, shows, reviewer
        )

    def lesson_rows(self, lesson, rows: list[int]) -> list[dict[str, Any]]:
        """The records at these rows of the lesson's space, with an image to show."""
        records = [lesson.space.records[row] for row in rows]
        found: dict[str, dict[str, Any]] = {}
        with self.catalog.session() as session:
            for start in range(0, len(records), 500):
                for iri, title, reference, image_id in session.execute(
                    select(RecordRow.iri, RecordRow.title, RecordRow.source_id, ImageRow.id)
                    .join(ImageRow, ImageRow.record_id == RecordRow.id)
                    .where(
                        RecordRow.iri.in_(records[start : start + 500]),
                        ImageRow.status == "fetched",
                    )
                    .order_by(ImageRow.is_main.desc(), ImageRow.position)
                ):
                    found.setdefault(
                        iri, {"title": title, "reference": reference, "image": image_id}
                    )
        made = []
        for row, record in zip(rows, records, strict=True):
            entry = found.get(record, {})
            given = lesson.given.get(record)
            made.append(
                {
                    "record": record,
                    "title": entry.get("title"),
                    "reference": entry.get("reference"),
                    "image": entry.get("image"),
                    "score": float(lesson.scores[row]),
                    "answer": None if given is None else ("yes" if given else "no"),
                }
            )
        return made
