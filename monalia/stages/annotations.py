"""What an annotation sink (`Sink.takes_triples` False) receives from `monalia publish`: the
model's detections (as `enrich` publishes them), the harvested IIIF manifests their canvases
belong to, the near duplicates, and the curators' decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from monalia.catalog.database import Catalog
from monalia.catalog.models import (
    DuplicatePairRow,
    ImageRow,
    ModelRow,
    RecordRow,
    ScoredImageRow,
)
from monalia.catalog.run_tracking import DONE, RunInfo, RunTracker
from monalia.formats.web_annotation import LinkedPair, ReviewedDetection

PAGE = 500


def class_labels(model: ModelRow, context) -> dict[str, list[tuple[str, str | None]]]:
    """Each of the model's classes' preferred labels in every language the thesaurus has
    (`context`, a `monalia.rdf.class_context.ClassContext`), the model's own label when it
    holds none."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    for entry in model.classes:
        uri = entry["uri"]
        found[uri] = sorted(
            dict.fromkeys(context.preferred(uri)), key=lambda pair: (pair[1] or "", pair[0])
        ) or [(entry.get("label") or uri, None)]
    return found


def iter_manifests(catalog: Catalog, model_id: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(URL fetched from, manifest document) of each record harvested as a IIIF manifest
    whose images the model scored, a page at a time."""
    after = 0
    while True:
        with catalog.session() as session:
            rows = session.execute(
                select(RecordRow.id, RecordRow.source_id, RecordRow.raw)
                .where(
                    RecordRow.id > after,
                    RecordRow.deleted_at.is_(None),
                    RecordRow.id.in_(
                        select(ScoredImageRow.record_id).where(ScoredImageRow.model_id == model_id)
                    ),
                )
                .order_by(RecordRow.id)
                .limit(PAGE)
            ).all()
        if not rows:
            return
        after = rows[-1].id
        for row in rows:
            raw = row.raw
            if isinstance(raw, dict) and "iiif.io/api/presentation" in str(raw.get("@context")):
                yield row.source_id, raw


def linked_pairs(catalog: Catalog) -> Iterator[LinkedPair]:
    """Every near-duplicate pair `monalia duplicates` kept, by group."""
    record_a, record_b = aliased(RecordRow), aliased(RecordRow)
    image_a, image_b = aliased(ImageRow), aliased(ImageRow)
    with catalog.session() as session:
        rows = session.execute(
            select(
                record_a.iri,
                record_b.iri,
                image_a.url,
                image_b.url,
                DuplicatePairRow.similarity,
                DuplicatePairRow.method,
                DuplicatePairRow.found_at,
            )
            .join(record_a, record_a.id == DuplicatePairRow.record_a)
            .join(record_b, record_b.id == DuplicatePairRow.record_b)
            .join(image_a, image_a.id == DuplicatePairRow.image_a)
            .join(image_b, image_b.id == DuplicatePairRow.image_b)
            .order_by(DuplicatePairRow.group_number, DuplicatePairRow.id)
        ).all()
    for row in rows:
        yield LinkedPair(*row)


def accepted_reviews(catalog: Catalog) -> list[ReviewedDetection]:
    """The decisions that count (the latest accept or reject of each finding, the latest
    region each reviewer drew), as the institution should see them."""
    from monalia.catalog.reviews import region_corrections, reviews

    verdicts = [review.verdict for review in reviews(catalog).values()]
    counted = [v for v in verdicts if v is not None and v.kind != "duplicate"]
    return [
        ReviewedDetection(
            d.record_iri,
            d.image_url,
            d.class_uri,
            d.class_label,
            d.kind,
            d.decision,
            d.reviewer,
            d.decided_at,
            d.comment,
            d.region,  # a region decision's box; None for the others
            d.id,
        )
        for d in sorted([*counted, *region_corrections(catalog)], key=lambda d: d.id)
    ]


def tool_agent() -> dict[str, Any]:
    from monalia.version import __version__

    return {
        "id": "https://pypi.org/project/monalia/",
        "type": "Software",
        "name": f"monalia {__version__}",
        "softwareVersion": __version__,
    }


def publish_curation_annotations(catalog: Catalog, configured, hooks=None) -> RunInfo:
    """Write the near duplicates and the curators' decisions to an annotation sink."""
    sink = configured.create()
    settings = {"settings": sink.describe_settings(), "what": "links and reviews"}
    with RunTracker(
        catalog, "publish", configured.info.name, configured.instance, settings, hooks
    ) as tracker:
        pairs = list(linked_pairs(catalog))
        decisions = accepted_reviews(catalog)
        tool = tool_agent()
        links = sink.publish_links(pairs, tool)
        reviewed = sink.publish_reviews(decisions, tool)
        tracker.add(seen=len(pairs) + len(decisions), new=links + reviewed)
        return tracker.finish(
            DONE,
            f"{links:,} linking and {reviewed:,} review annotations to {sink.location()}",
        )
