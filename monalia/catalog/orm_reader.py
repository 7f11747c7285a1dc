"""The read-only lookups of `monalia.catalog.reader.CatalogReader`, answered by an open
`Catalog` over any database SQLAlchemy speaks, so curation reads both alike.

SQLAlchemy is imported inside the methods: `reader_of` is on the path of commands that answer at
once from a `CatalogReader` and must not load it."""

from __future__ import annotations

from typing import Any

from monalia.catalog.reader import BATCH, CatalogReader


class OrmReader:
    """The reader's lookups over an open `Catalog`: any database SQLAlchemy speaks."""

    def __init__(self, catalog: Any):
        self.catalog = catalog

    def find_model(self, reference: str | None, dataset: str | None = None):
        from monalia.catalog.lookups import find_model

        return find_model(self.catalog, reference, dataset)

    def class_concepts(self, dataset_id: int | None) -> dict[str, Any] | None:
        from sqlalchemy import select

        from monalia.catalog.models import DatasetRow

        if dataset_id is None:
            return None
        with self.catalog.session() as session:
            return session.scalar(
                select(DatasetRow.class_concepts).where(DatasetRow.id == dataset_id)
            )

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        from sqlalchemy import text

        with self.catalog.session() as session:
            return [tuple(row) for row in session.execute(text(sql), params)]

    def score_sets(self) -> list[tuple[int, str, dict[str, Any]]]:
        from sqlalchemy import select

        from monalia.catalog.models import ModelRow
        from monalia.catalog.reader import SCORE_SET_NAME_LIKE, is_score_set

        with self.catalog.session() as session:
            rows = session.execute(
                select(ModelRow.id, ModelRow.name, ModelRow.card)
                .where(ModelRow.name.like(SCORE_SET_NAME_LIKE))
                .order_by(ModelRow.id.desc())
            ).all()
        return [(id_, name, card or {}) for id_, name, card in rows if is_score_set(card)]

    def dataset_images(self, dataset_id: int) -> list[tuple[int, str, str, list[str]]]:
        from monalia.catalog.reader import _json

        rows = self._rows(
            "SELECT m.image_id, r.iri, i.url, m.labels FROM dataset_members m "
            "JOIN records r ON r.id = m.record_id JOIN images i ON i.id = m.image_id "
            "WHERE m.dataset_id = :dataset AND r.deleted_at IS NULL ORDER BY m.id",
            {"dataset": dataset_id},
        )
        return [(image, iri, url, _json(labels) or []) for image, iri, url, labels in rows]

    def set_scores(self, model_id: int) -> list[tuple[int, str, float]]:
        rows = self._rows(
            "SELECT p.image_id, c.uri, p.score FROM predictions p JOIN model_classes c "
            "ON c.model_id = p.model_id AND c.class_index = p.class_index "
            "WHERE p.model_id = :model",
            {"model": model_id},
        )
        return [(image, uri, float(score)) for image, uri, score in rows]

    def confident_findings(self, set_id: int, kind: str) -> list[tuple]:
        from monalia.catalog.reader import CONFIDENT_FINDINGS_SQL

        sql = CONFIDENT_FINDINGS_SQL.replace("?", ":set", 1).replace("?", ":kind", 1)
        return self._rows(sql, {"set": set_id, "kind": kind})

    def scored_outside(self, model_id: int, set_id: int) -> int:
        from monalia.catalog.reader import SCORED_OUTSIDE_SQL

        sql = SCORED_OUTSIDE_SQL.replace("?", ":model", 1).replace("?", ":set", 1)
        return int(self._rows(sql, {"model": model_id, "set": set_id})[0][0])

    def scored_records(self, model_id: int) -> list[str]:
        from monalia.catalog.reader import SCORED_RECORDS_SQL

        sql = SCORED_RECORDS_SQL.replace("?", ":model")
        return [iri for (iri,) in self._rows(sql, {"model": model_id})]

    def image_paths(self, urls: list[str]) -> dict[str, str]:
        from sqlalchemy import select

        from monalia.catalog.models import ImageRow

        paths: dict[str, str] = {}
        with self.catalog.session() as session:
            for start in range(0, len(urls), BATCH):
                rows = session.execute(
                    select(ImageRow.url, ImageRow.path).where(
                        ImageRow.url.in_(urls[start : start + BATCH]), ImageRow.path.is_not(None)
                    )
                )
                paths.update({url: path for url, path in rows})
        return paths


def reader_of(catalog: Any) -> CatalogReader | OrmReader:
    """The lookups of a reader or of a `Catalog`."""
    return catalog if isinstance(catalog, CatalogReader | OrmReader) else OrmReader(catalog)
