"""Lookups the stages, curation and the commands share: a model by name, its folder, how many
records some sources hold."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from monalia.catalog.database import Catalog
from monalia.catalog.models import ModelRow, RecordRow

if TYPE_CHECKING:
    from monalia.project import Project


def find_model(catalog: Catalog, reference: str | None, dataset: str | None = None) -> ModelRow:
    """A registered model by name (or its start); the newest when `reference` is None. With
    `dataset` (a task's dataset name), only the models trained on a dataset of that name."""
    from monalia.catalog.models import DatasetRow
    from monalia.catalog.reader import SCORE_SET_NAME_LIKE, is_score_set, pick_model

    with catalog.session() as session:
        query = select(ModelRow.name).order_by(ModelRow.id.desc())
        if dataset is not None:
            query = query.join(DatasetRow, DatasetRow.id == ModelRow.dataset_id).where(
                DatasetRow.name == dataset
            )
        names = session.scalars(query).all()
        candidates = session.execute(
            select(ModelRow.name, ModelRow.card).where(ModelRow.name.like(SCORE_SET_NAME_LIKE))
        ).all()
        sets = frozenset(name for name, card in candidates if is_score_set(card))
        name = pick_model(list(names), reference, sets, dataset)
        row = session.scalars(select(ModelRow).where(ModelRow.name == name)).one()
        session.expunge(row)
        return row


def model_folder(project: Project, row: ModelRow) -> Path:
    """The folder holding a model's files (its path is kept relative to the project's data)."""
    path = Path(row.path or "")
    return path if path.is_absolute() else project.data_dir / path


def count_records(catalog: Catalog, sources: list[str]) -> int:
    """How many live (not deleted) records these source instances have."""
    with catalog.session() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    RecordRow.source.in_(sources), RecordRow.deleted_at.is_(None)
                )
            )
            or 0
        )
