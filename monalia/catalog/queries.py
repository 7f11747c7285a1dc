"""Questions many parts ask the catalog: which images can be scored, which a crawl fetches,
where an image's file is."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, select

from monalia.catalog.models import ImageRow, RecordRow, ScoredImageRow
from monalia.catalog.reader import image_file  # noqa: F401  (where the stages look for it)

PENDING, FETCHED, FAILED, REJECTED = "pending", "fetched", "failed", "rejected"


def live_record():
    """The image's record is not deleted at its source."""
    return ~exists().where(RecordRow.id == ImageRow.record_id, RecordRow.deleted_at.is_not(None))


def scorable():
    """Images that have a file to score, of records not deleted at their source."""
    return and_(ImageRow.status == FETCHED, ImageRow.path.is_not(None), live_record())


def unscored(model_id: int):
    """Images with no prediction of this model for their current content."""
    return ~exists().where(
        and_(
            ScoredImageRow.model_id == model_id,
            ScoredImageRow.image_id == ImageRow.id,
            ScoredImageRow.image_sha256 == ImageRow.sha256,
        )
    )


def image_statuses(retry_failed: bool) -> list[str]:
    """What an image run fetches: new images and transient failures; refused ones on request."""
    statuses = [PENDING, FAILED]
    return [*statuses, REJECTED] if retry_failed else statuses


def image_filter(
    retry_failed: bool, sources: list[str] | None = None, shards: int = 1, shard: int = 0
) -> Any:
    """The images an image run (or one shard of it) fetches, as an SQL condition."""
    condition = ImageRow.status.in_(image_statuses(retry_failed)) & live_record()
    if sources:
        condition = condition & ImageRow.record_id.in_(
            select(RecordRow.id).where(RecordRow.source.in_(sources))
        )
    if shards > 1:
        condition = condition & ((ImageRow.id % shards) == shard)
    return condition
