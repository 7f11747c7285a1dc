"""Regions of the detections: where in each image a detected class is seen.

`enrich --regions` runs a tracked run of its own (stage "regions", counting detections): the
detections of a chunk just scored get their regions in the same pass, and then any detection
scored earlier without one (a run without `--regions`, a run killed between the two, scores
made on a Ray cluster) is caught up. A chunk's regions are written in one transaction with the
run's counts, one row per image, model and class: a killed run loses at most the chunk in hand
and the next run makes only the missing ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import and_, exists, false, func, or_, select

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, ModelRow, PredictionRow, RegionRow, utcnow
from monalia.catalog.queries import image_file
from monalia.catalog.run_tracking import RunTracker
from monalia.learning.regions import image_boxes

DEFAULT_THRESHOLD = 0.5  # a class whose model card states none
REGION_CHUNK = 256  # detections read, explained and committed together in the catch-up


@dataclass(frozen=True)
class Detection:
    image_id: int
    record_id: int
    path: Path | None
    sha256: str | None
    url: str
    class_index: int


def class_thresholds(model: ModelRow) -> list[float]:
    """Each class's decision threshold, in the model's class order."""
    thresholds = model.thresholds or {}
    found = []
    for entry in model.classes:
        value = thresholds.get(entry["uri"])
        found.append(DEFAULT_THRESHOLD if value is None else float(value))
    return found


def chunk_detections(chunk, thresholds: Sequence[float]) -> list[Detection]:
    """The detections (score at or above the class's threshold) of a chunk just scored."""
    if not len(chunk.indices):
        return []
    # as the catalog compares them: the float32 scores widened, the thresholds as they are
    limits = np.asarray(thresholds, dtype=np.float64)
    found = []
    for row, position in enumerate(chunk.indices):
        item = chunk.items[int(position)]
        for class_index in np.flatnonzero(chunk.scores[row].astype(np.float64) >= limits):
            found.append(
                Detection(
                    item.image_id,
                    item.record_id,
                    item.path,
                    item.sha256,
                    item.url,
                    int(class_index),
                )
            )
    return found


def _missing_region(model_id: int):
    return ~exists().where(
        RegionRow.model_id == model_id,
        RegionRow.image_id == PredictionRow.image_id,
        RegionRow.class_index == PredictionRow.class_index,
    )


def _detected(model_id: int, thresholds: Sequence[float]):
    # one condition per class: the ranking index (model, class, score) answers each
    return and_(
        PredictionRow.model_id == model_id,
        or_(
            false(),
            *(
                and_(PredictionRow.class_index == index, PredictionRow.score >= threshold)
                for index, threshold in enumerate(thresholds)
            ),
        ),
    )


def count_detections(catalog: Catalog, model: ModelRow) -> tuple[int, int]:
    """(detections without a region, detections with one) of the model's current scores."""
    thresholds = class_thresholds(model)
    with catalog.session() as session:
        total = session.scalar(
            select(func.count()).select_from(PredictionRow).where(_detected(model.id, thresholds))
        )
        missing = session.scalar(
            select(func.count())
            .select_from(PredictionRow)
            .where(_detected(model.id, thresholds), _missing_region(model.id))
        )
    return missing or 0, (total or 0) - (missing or 0)


def pending_detections(
    catalog: Catalog, model: ModelRow, data_dir: Path, size: int | None = None
) -> Iterator[list[Detection]]:
    """The detections without a region, by image, a chunk at a time (memory stays flat)."""
    size = size or REGION_CHUNK
    thresholds = class_thresholds(model)
    after = (0, -1)
    while True:
        with catalog.session() as session:
            rows = session.execute(
                select(
                    PredictionRow.image_id,
                    PredictionRow.class_index,
                    ImageRow.record_id,
                    ImageRow.path,
                    ImageRow.sha256,
                    ImageRow.url,
                )
                .join(ImageRow, ImageRow.id == PredictionRow.image_id)
                .where(
                    _detected(model.id, thresholds),
                    _missing_region(model.id),
                    (PredictionRow.image_id > after[0])
                    | (
                        (PredictionRow.image_id == after[0])
                        & (PredictionRow.class_index > after[1])
                    ),
                )
                .order_by(PredictionRow.image_id, PredictionRow.class_index)
                .limit(size)
            ).all()
        if not rows:
            return
        after = (rows[-1].image_id, rows[-1].class_index)
        yield [
            Detection(
                row.image_id,
                row.record_id,
                image_file(data_dir, row.path),
                row.sha256,
                row.url,
                row.class_index,
            )
            for row in rows
        ]


def explain_detections(predictor, detections: list[Detection], fraction: float, tracker):
    """Region rows of the detections that could be explained; the others are failed items.

    Each image is decoded once; its detections are explained together, a batch at a time.
    """
    from PIL import Image

    from monalia.learning.image_decode import decode_for_model

    by_image: dict[int, list[Detection]] = {}
    for detection in detections:
        by_image.setdefault(detection.image_id, []).append(detection)
    pixels, wanted, sizes = [], [], {}
    for image_id, found in by_image.items():
        first = found[0]
        try:
            if first.path is None or not first.path.is_file():
                raise OSError(f"image file is missing: {first.path}")
            with Image.open(first.path) as opened:
                sizes[image_id] = opened.size
            decoded = decode_for_model(
                first.path, predictor.input_size, first.sha256, predictor.cache_dir
            )
        except Exception as exc:  # one unreadable image fails its detections alone
            for detection in found:
                tracker.fail_item(detection.url, f"no region: {exc}")
            continue
        for detection in found:
            pixels.append(decoded)
            wanted.append(detection)
    rows = []
    step = max(1, int(predictor.batch_size))
    for start in range(0, len(wanted), step):
        batch = wanted[start : start + step]
        try:
            maps = predictor.explain_batch(
                np.stack(pixels[start : start + step]), [d.class_index for d in batch]
            )
        except Exception as exc:  # a model that cannot explain this batch
            for detection in batch:
                tracker.fail_item(detection.url, f"no region: {exc}")
            continue
        for detection, heat in zip(batch, maps, strict=True):
            width, height = sizes[detection.image_id]
            boxes = image_boxes(heat, width, height, fraction)
            rows.append(
                {
                    "image_id": detection.image_id,
                    "class_index": detection.class_index,
                    "record_id": detection.record_id,
                    "boxes": [box.as_list() for box in boxes],
                    "image_width": width,
                    "image_height": height,
                    "fraction": fraction,
                }
            )
    return rows


def write_regions(
    catalog: Catalog, model: ModelRow, rows: list[dict], considered: int, tracker: RunTracker
) -> int:
    """Store the rows with the run's counts, in one commit; `considered` detections were
    looked at. Each row is new: a chunk's images lost their old regions with their old scores
    (`write_scores`), the catch-up reads only detections without one, and one regions run of a
    model runs at a time."""
    now = utcnow()
    with catalog.session() as session:
        session.add_all(
            RegionRow(**row, model_id=model.id, run_id=tracker.id, made_at=now) for row in rows
        )
        tracker.add(seen=considered, new=len(rows))
        tracker.flush(session)
    return len(rows)


def regions_of_chunk(catalog, model, predictor, chunk, thresholds, fraction, tracker) -> int:
    """Regions of a chunk's detections, in the pass that scored it."""
    detections = chunk_detections(chunk, thresholds)
    if not detections:
        return 0
    rows = explain_detections(predictor, detections, fraction, tracker)
    return write_regions(catalog, model, rows, len(detections), tracker)


def catch_up_regions(catalog, model, predictor, data_dir: Path, fraction, tracker, progress):
    """Regions of every detection that has none yet (scored earlier, or elsewhere)."""
    made = 0
    # the reading goes forward by (image, class): a detection that failed is not asked again
    for detections in pending_detections(catalog, model, data_dir):
        rows = explain_detections(predictor, detections, fraction, tracker)
        made += write_regions(catalog, model, rows, len(detections), tracker)
        if progress is not None:
            progress.advance(len(detections))
    return made


class RegionPass:
    """The regions run beside an enrich run: chunks as they are scored, then the catch-up."""

    def __init__(self, catalog: Catalog, project, model: ModelRow, tracker: RunTracker):
        self.catalog, self.project, self.model, self.tracker = catalog, project, model, tracker
        self.thresholds = class_thresholds(model)
        self.fraction = project.file.enrich.region_fraction
        self.predictor = None

    def use(self, predictor) -> None:
        """Explain with the predictor that scores (loaded once for both)."""
        from monalia.errors import ConfigError

        if not predictor.can_explain:
            raise ConfigError(
                f"model {self.model.name} (trainer {self.model.trainer}) cannot explain its "
                "scores, so it cannot find regions: enrich without --regions"
            )
        self.predictor = predictor

    def chunk(self, chunk) -> int:
        return regions_of_chunk(
            self.catalog,
            self.model,
            self.predictor,
            chunk,
            self.thresholds,
            self.fraction,
            self.tracker,
        )

    def catch_up(self, progress_factory, loading) -> int:
        missing, _ = count_detections(self.catalog, self.model)
        if not missing:
            return 0
        if self.predictor is None:
            from monalia.stages.enrich.scoring import load_predictor

            self.use(load_predictor(self.project, self.model, loading))
        with progress_factory(f"regions of {self.model.name}", missing, "detections") as progress:
            return catch_up_regions(
                self.catalog,
                self.model,
                self.predictor,
                self.project.data_dir,
                self.fraction,
                self.tracker,
                progress,
            )


def localisation(catalog: Catalog, truth_of) -> tuple[int, int, int]:
    """How the stored regions match boxes known to be right (CorLoc): (detections with a
    known box, of which the strongest box overlaps it with IoU >= 0.5, detections without
    one). `truth_of(record source id, class URI)` gives the known box or None."""
    from monalia.catalog.models import ModelClassRow, RecordRow
    from monalia.learning.regions import Box

    with catalog.session() as session:
        rows = session.execute(
            select(RecordRow.source_id, ModelClassRow.uri, RegionRow.boxes)
            .join(RecordRow, RecordRow.id == RegionRow.record_id)
            .join(
                ModelClassRow,
                (ModelClassRow.model_id == RegionRow.model_id)
                & (ModelClassRow.class_index == RegionRow.class_index),
            )
        ).all()
    known = located = unknown = 0
    for source_id, uri, boxes in rows:
        truth = truth_of(source_id, uri)
        if truth is None:
            unknown += 1
            continue
        known += 1
        located += bool(boxes) and Box.of(boxes[0]).iou(Box.of(truth)) >= 0.5
    return known, located, unknown
