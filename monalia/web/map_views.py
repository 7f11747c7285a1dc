"""What the workbench's Map page reads: the collection's 2-D map with every point's class,
finding, audit problem and source, sent as one compact JSON document (numbers only: a record's
name is fetched when a point is pointed at, selected or opened)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from sqlalchemy import select

from monalia.catalog.models import AuditFindingRow, ModelClassRow, PredictionRow, RecordRow

# a point's finding, as the page colours it
FINDINGS = ("none", "noise", "silence", "problem")
SELECTION_LIMIT = 500  # records listed for one selection


class MapViews:
    """The Map page's data; mixed into the `Workbench`."""

    _map_payload: dict[str, Any] | None = None
    _map_lock = threading.Lock()

    def map_payload(self) -> dict[str, Any]:
        """The map and every point's colours, computed on first use and kept."""
        with self._map_lock:
            if self._map_payload is None:
                self._map_payload = self._make_map_payload()
            return self._map_payload

    def _make_map_payload(self) -> dict[str, Any]:
        from monalia.similarity.collection_map import GRID, collection_map

        found = collection_map(self.catalog, self.project)
        record_ids = [int(r) for r in found.record_ids]
        image_ids = [int(i) for i in found.image_ids]
        position = {image: i for i, image in enumerate(image_ids)}
        classes = self.classes
        column_of = {cls.uri: c for c, cls in enumerate(classes)}
        thresholds = np.array(
            [cls.threshold if cls.threshold is not None else 0.5 for cls in classes]
        )
        best = np.full(len(image_ids), -1, dtype=np.int64)
        best_score = np.zeros(len(image_ids))
        with self.catalog.session() as session:
            index_uri = dict(
                session.execute(
                    select(ModelClassRow.class_index, ModelClassRow.uri).where(
                        ModelClassRow.model_id == self.model.id
                    )
                ).all()
            )
            column_of_index = {i: column_of.get(uri, -1) for i, uri in index_uri.items()}
            rows = session.execute(
                select(PredictionRow.image_id, PredictionRow.class_index, PredictionRow.score)
                .where(PredictionRow.model_id == self.model.id)
                .execution_options(yield_per=50_000)
            )
            for image_id, class_index, score in rows:
                at = position.get(image_id)
                column = column_of_index.get(class_index, -1)
                if at is None or column < 0 or score < thresholds[column]:
                    continue
                if score > best_score[at]:
                    best_score[at], best[at] = score, column
            problem_images = set(session.scalars(select(AuditFindingRow.image_id).distinct()).all())
            sources_of = dict(
                session.execute(
                    select(RecordRow.id, RecordRow.source).where(RecordRow.id.in_(record_ids))
                ).all()
                if len(record_ids) <= 30_000
                else session.execute(select(RecordRow.id, RecordRow.source)).all()
            )
        self.warm()
        finding_of: dict[int, int] = {}
        for kind, code in (("noise", 1), ("silence", 2)):
            for item in self._lists.get(("", kind), []):
                if item.record_id is not None:
                    finding_of.setdefault(item.record_id, code)
        sources = sorted({s for s in sources_of.values() if s is not None})
        source_code = {name: i for i, name in enumerate(sources)}
        finding = [
            finding_of.get(record, 3 if image in problem_images else 0)
            for record, image in zip(record_ids, image_ids, strict=True)
        ]
        grid = np.rint(found.xy * GRID).astype(int) if len(found.xy) else np.zeros((0, 2), int)
        return {
            "count": len(record_ids),
            "method": found.method,
            "grid": GRID,
            "x": grid[:, 0].tolist(),
            "y": grid[:, 1].tolist(),
            "record": record_ids,
            "image": image_ids,
            "class": best.tolist(),
            "finding": finding,
            "source": [source_code.get(sources_of.get(r), -1) for r in record_ids],
            "classes": [cls.label for cls in classes],
            "findings": list(FINDINGS),
            "sources": sources,
        }

    def map_records(self, record_ids: list[int]) -> list[dict[str, Any]]:
        """The records of a selection (at most SELECTION_LIMIT), in the order given."""
        wanted = [int(r) for r in record_ids[:SELECTION_LIMIT]]
        payload = self.map_payload()
        image_of = dict(zip(payload["record"], payload["image"], strict=True))
        found: dict[int, dict[str, Any]] = {}
        with self.catalog.session() as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(
                    select(RecordRow.id, RecordRow.iri, RecordRow.title, RecordRow.source_id).where(
                        RecordRow.id.in_(wanted[start : start + 500])
                    )
                ).all()
                for id_, iri, title, reference in rows:
                    found[id_] = {
                        "id": id_,
                        "iri": iri,
                        "title": title,
                        "reference": reference,
                        "image": image_of.get(id_),
                    }
        return [found[r] for r in wanted if r in found]
