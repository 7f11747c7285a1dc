"""The workbench's record pages, pictures, heat maps and similar images: the part of its model
that reads one record or one image, apart from the findings and decisions (`workbench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from monalia.catalog.models import (
    ImageRow,
    ModelClassRow,
    PredictionRow,
    RecordRow,
    SubjectRow,
)
from monalia.catalog.reader import image_file
from monalia.catalog.reviews import history
from monalia.errors import ConfigError, MonaliaError

THUMBNAIL_SIDE = 240
LARGE_SIDE = 1024
VIEW_SIDE = 448  # the model's view and its heat map, as the record page shows them


class RecordViews:
    """Mixed into `Workbench`, which holds the catalog, the project, the model, the classes and
    the caches these methods use."""

    # -- similarity -----------------------------------------------------------------------

    def _similarity(self):
        """The embedder and its index as they are (nothing is embedded here: `monalia
        duplicates`, `similar` or `enrich` do that); None without vectors."""
        if self._index is None:
            from monalia.similarity.near_duplicates import embedding
            from monalia.similarity.vectors import open_index

            found = embedding(self.catalog, self.project)
            if not found.store.keys():
                return None
            exact = self.project.file.similarity.exact_limit
            self._index = (found, open_index(found.store, exact))
        return self._index

    def more_like_this(self, record: dict[str, Any], k: int = 8) -> list[dict[str, Any]] | None:
        """The records whose images look most like this record's; None without vectors."""
        import numpy as np

        opened = self._similarity()
        if opened is None:
            return None
        found, index = opened
        with self.catalog.session() as session:
            keys = list(
                session.scalars(
                    select(ImageRow.sha256).where(
                        ImageRow.record_id == record["id"], ImageRow.sha256.is_not(None)
                    )
                )
            )
        vectors = [v for v in (found.store.vector(key) for key in keys) if v is not None]
        if not vectors:
            return None
        hits: dict[str, float] = {}
        for row in index.search(np.stack(vectors), k * 3 + 5):
            for hit in row:
                hits[hit.key] = max(hit.similarity, hits.get(hit.key, -1.0))
        with self.catalog.session() as session:
            rows = session.execute(
                select(ImageRow.id, ImageRow.sha256, RecordRow.iri, RecordRow.title, RecordRow.id)
                .join(RecordRow, RecordRow.id == ImageRow.record_id)
                .where(ImageRow.sha256.in_(list(hits)), RecordRow.deleted_at.is_(None))
            ).all()
        best: dict[int, dict[str, Any]] = {}
        for image_id, sha, iri, title, record_id in rows:
            if record_id == record["id"]:
                continue
            entry = {"iri": iri, "title": title, "image_id": image_id, "similarity": hits[sha]}
            if record_id not in best or entry["similarity"] > best[record_id]["similarity"]:
                best[record_id] = entry
        return sorted(best.values(), key=lambda e: -e["similarity"])[:k]

    def duplicate_groups(self) -> list[dict[str, Any]]:
        """The catalog's near-duplicate groups (`monalia duplicates`), each other record with
        the decisions on whether it is the same picture as the group's first."""
        from monalia.similarity.near_duplicates import stored_groups

        current = self.log.current()
        groups = stored_groups(self.catalog)
        for group in groups:
            first = group["records"][0]["iri"]
            for entry in group["records"][1:]:
                entry["review"] = current.get((first, entry["iri"]))
            group["first"] = first
        return groups

    # -- records and images ---------------------------------------------------------------

    def local_path(self, stored: str | None) -> Path | None:
        if not stored:
            return None
        path = image_file(self.project.data_dir, stored)
        return Path(path) if path is not None and Path(path).is_file() else None

    def record(self, iri: str) -> dict[str, Any] | None:
        """A record as the record page shows it; None when the catalog has no such record."""
        with self.catalog.session() as session:
            row = session.scalar(select(RecordRow).where(RecordRow.iri == iri))
            if row is None:
                return None
            subjects = session.execute(
                select(SubjectRow.uri, SubjectRow.label, SubjectRow.field)
                .where(SubjectRow.record_id == row.id)
                .order_by(SubjectRow.position)
            ).all()
            images = session.execute(
                select(ImageRow.id, ImageRow.url, ImageRow.path, ImageRow.width, ImageRow.height)
                .where(ImageRow.record_id == row.id)
                .order_by(ImageRow.is_main.desc(), ImageRow.position)
            ).all()
            scores = session.execute(
                # by the record's images: the predictions' key starts (model, image)
                select(PredictionRow.image_id, ModelClassRow.uri, PredictionRow.score)
                .join(
                    ModelClassRow,
                    (ModelClassRow.model_id == PredictionRow.model_id)
                    & (ModelClassRow.class_index == PredictionRow.class_index),
                )
                .where(
                    PredictionRow.model_id == self.model.id,
                    PredictionRow.image_id.in_([image.id for image in images]),
                )
            ).all()
            record = {
                "id": row.id,
                "iri": row.iri,
                "source": row.source,
                "source_id": row.source_id,
                "title": row.title,
                "description": row.description,
                "creators": row.creators or [],
                "date": row.date,
                "institution": row.institution,
                "rights": row.rights,
                "landing_page": row.landing_page,
                "deleted": row.deleted_at is not None,
            }
        per_class: dict[str, float] = {}
        per_image: dict[int, dict[str, float]] = {}
        for image_id, uri, score in scores:
            per_image.setdefault(image_id, {})[uri] = float(score)
            per_class[uri] = max(per_class.get(uri, 0.0), float(score))
        mentioned = self.curation.mentions.of((uri, label) for uri, label, _ in subjects)
        current = self.log.current()
        record["subjects"] = [{"uri": u, "label": label, "field": f} for u, label, f in subjects]
        record["images"] = [
            {
                "id": id_,
                "url": url,
                "local": self.local_path(path) is not None,
                "width": width,
                "height": height,
                "scored": id_ in per_image,
            }
            for id_, url, path, width, height in images
        ]
        record["classes"] = [
            {
                "index": index,
                "uri": cls.uri,
                "label": cls.label,
                "score": per_class.get(cls.uri),
                "threshold": cls.threshold,
                "mentioned": cls.uri in mentioned,
                "review": current.get((iri, cls.uri)),
            }
            for index, cls in enumerate(self.classes)
        ]
        record["classes"].sort(key=lambda entry: -(entry["score"] or 0.0))
        record["history"] = history(self.catalog, iri)
        record["regions"] = self.regions_of(record)
        return record

    def regions_of(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The boxes of the record's first image: the model's, per detected class, and the
        latest a curator drew (which the picture shows instead), as percentages of the image
        for drawing and in its pixels for the correction form."""
        from monalia.catalog.models import RegionRow
        from monalia.catalog.reviews import region_corrections

        if not record["images"]:
            return []
        first = record["images"][0]
        with self.catalog.session() as session:
            rows = session.execute(
                select(
                    RegionRow.class_index,
                    RegionRow.boxes,
                    RegionRow.image_width,
                    RegionRow.image_height,
                ).where(RegionRow.model_id == self.model.id, RegionRow.image_id == first["id"])
            ).all()
        width, height = first["width"], first["height"]
        model_uris = [entry["uri"] for entry in self.model.classes]
        drawn = {
            d.class_uri: d
            for d in region_corrections(self.catalog, record["iri"])
            if d.image_url in (None, first["url"])
        }
        labels = {cls.uri: cls.label for cls in self.classes}
        found: dict[str, dict[str, Any]] = {}
        for index, boxes, image_width, image_height in rows:
            uri = model_uris[index] if index < len(model_uris) else None
            if uri is None or uri not in labels:
                continue
            width, height = image_width, image_height
            found[uri] = {"uri": uri, "label": labels[uri], "model": boxes or [], "curator": None}
        for uri, decision in drawn.items():
            entry = found.setdefault(
                uri, {"uri": uri, "label": labels.get(uri, uri), "model": [], "curator": None}
            )
            entry["curator"] = {"box": list(decision.region), "by": decision.reviewer}
        if not found or not width or not height:
            return []

        def percent(box):
            x, y, w, h = box
            return {
                "left": 100 * x / width,
                "top": 100 * y / height,
                "width": 100 * w / width,
                "height": 100 * h / height,
                "pixels": list(box),
            }

        regions = []
        for entry in found.values():
            shown = [entry["curator"]["box"]] if entry["curator"] else entry["model"]
            regions.append(
                {
                    **entry,
                    "boxes": [percent(box) for box in shown],
                    "width": width,
                    "height": height,
                    "image_id": first["id"],
                }
            )
        regions.sort(key=lambda entry: entry["label"])
        return regions

    def image_path(self, image_id: int) -> Path | None:
        with self.catalog.session() as session:
            stored = session.scalar(select(ImageRow.path).where(ImageRow.id == image_id))
        return self.local_path(stored)

    def image_url(self, image_id: int) -> str | None:
        with self.catalog.session() as session:
            return session.scalar(select(ImageRow.url).where(ImageRow.id == image_id))

    def picture(self, image_id: int, side: int) -> bytes | None:
        """A JPEG of the catalog's copy of an image, its longer side at most `side`, cached."""
        from monalia.learning.image_decode import picture_jpeg

        path = self.image_path(image_id)
        if path is None:
            return None
        target = self.project.data_dir / "workbench" / f"side-{side}" / f"{path.stem}.jpg"
        if target.is_file():
            return target.read_bytes()
        data = picture_jpeg(path, side)
        if data is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_bytes(data)
            partial.replace(target)
        return data

    @property
    def predictor(self):
        with self._predictor_lock:  # loaded once, whichever thread asks first
            if self._predictor is None:
                from monalia.api.trainer import LoadOptions
                from monalia.stages.enrich import load_predictor

                if not self.model.path:
                    raise MonaliaError(f"model {self.model.name} has no weights to explain with")
                options = LoadOptions("auto", 1, 0)
                share_the_cpu()
                self._predictor = load_predictor(self.project, self.model, options)
            return self._predictor

    def can_explain(self) -> bool:
        try:
            return bool(self.model.path) and self.predictor.can_explain
        except MonaliaError:
            return False

    def explanation(self, image_id: int, class_index: int) -> tuple[bytes, bytes] | None:
        """The model's view of an image (JPEG) and its heat map for one class (PNG), computed
        once and kept under the data folder; None without a local copy of the image."""
        from monalia.learning.explain import heat_rgba, view_jpeg
        from monalia.learning.image_decode import decode_for_model

        if not 0 <= class_index < len(self.classes):
            raise ConfigError(f"no class number {class_index}")
        path = self.image_path(image_id)
        if path is None:
            return None
        folder = self.project.data_dir / "heatmaps" / self.model.name
        view_file = folder / f"{path.stem}-view.jpg"
        heat_file = folder / f"{path.stem}-{class_index}.png"
        if view_file.is_file() and heat_file.is_file():
            return view_file.read_bytes(), heat_file.read_bytes()
        with self._explain_lock:  # one model, one image at a time
            predictor = self.predictor
            column = predictor.classes.index(self.classes[class_index].uri)
            pixels = decode_for_model(path, predictor.input_size)
            heat = predictor.explain(pixels, column)
            view, overlay = view_jpeg(pixels, VIEW_SIDE), heat_rgba(heat, VIEW_SIDE)
        folder.mkdir(parents=True, exist_ok=True)
        for target, data in ((view_file, view), (heat_file, overlay)):
            partial = target.with_suffix(".partial")
            partial.write_bytes(data)
            partial.replace(target)
        return view, overlay


def share_the_cpu() -> None:
    """On the CPU, the model (its loading, its heat maps) takes half the cores: the pages,
    which many curators ask for at once, keep the other half."""
    import os

    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
