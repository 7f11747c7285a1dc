"""What the workbench's Map page reads: the collection's 2-D map with every point's class,
finding, audit problem and source, sent as one compact JSON document (numbers only: a record's
name is fetched when a point is pointed at, selected or opened)."""

from __future__ import annotations

import threading
from itertools import chain
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
        classes = self.classes
        column_of = {cls.uri: c for c, cls in enumerate(classes)}
        thresholds = np.array(
            [cls.threshold if cls.threshold is not None else 0.5 for cls in classes]
        )
        best = np.full(len(image_ids), -1, dtype=np.int64)
        with self.catalog.session() as session:
            index_uri = dict(
                session.execute(
                    select(ModelClassRow.class_index, ModelClassRow.uri).where(
                        ModelClassRow.model_id == self.model.id
                    )
                ).all()
            )
            # a million scores are read as plain rows and judged with numpy, not as objects
            rows = session.execute(
                select(
                    PredictionRow.image_id, PredictionRow.class_index, PredictionRow.score
                ).where(PredictionRow.model_id == self.model.id)
            ).all()
            if rows and image_ids:
                table = np.fromiter(
                    chain.from_iterable(rows), dtype=np.float64, count=3 * len(rows)
                ).reshape(-1, 3)
                column_of_index = np.full(int(table[:, 1].max()) + 1, -1, dtype=np.int64)
                for index, uri in index_uri.items():
                    if index < len(column_of_index):
                        column_of_index[index] = column_of.get(uri, -1)
                ordered = np.asarray(image_ids, dtype=np.int64)
                by_id = np.argsort(ordered)
                image = table[:, 0].astype(np.int64)
                at = np.searchsorted(ordered[by_id], image)
                at = np.clip(at, 0, len(ordered) - 1)
                known = ordered[by_id][at] == image
                column = column_of_index[table[:, 1].astype(np.int64)]
                keep = known & (column >= 0)
                score = table[:, 2]
                keep &= score >= thresholds[np.maximum(column, 0)]
                points, columns, scores = by_id[at[keep]], column[keep], score[keep]
                # the best class of each point: the highest score at or above its threshold
                order = np.lexsort((scores, points))
                last = np.r_[points[order][1:] != points[order][:-1], True]
                best[points[order][last]] = columns[order][last]
        with self.catalog.session() as session:
            problem_images = set(session.scalars(select(AuditFindingRow.image_id).distinct()).all())
            sources_of = dict(
                session.execute(
                    select(RecordRow.id, RecordRow.source).where(RecordRow.id.in_(record_ids))
                ).all()
                if len(record_ids) <= 5_000
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

    def warm_map(self) -> None:
        """Make the Map page's data now when the map is already computed (the server's start
        pays for it, not the first curator who opens the page)."""
        from monalia.similarity.collection_map import is_cached

        try:
            if is_cached(self.catalog, self.project):
                self.map_payload()
        except Exception:  # the page says what went wrong when it is opened
            pass

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
