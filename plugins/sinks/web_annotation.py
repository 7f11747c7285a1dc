"""Sink: W3C Web Annotations (JSON-LD) in a folder, with IIIF annotation pages for IIIF records.

What it writes under ``path`` (every document's id is its URL under ``base_url``, so the folder
can be served as it is, or its pages posted to an annotation server)::

    models/<model>/collection.json     an AnnotationCollection: one tagging annotation per
    models/<model>/page-0.json ...     detection at or above threshold, `page_size` a page
    models/<model>/model-card.json     the model card the annotations' creator points to
    links/collection.json, page-N      near duplicates: `linking` annotations, two records each
    reviews/collection.json, page-N    curators' accepted decisions: `assessing` or `editing`
    iiif/<model>/<canvas>.json         IIIF Presentation 3 AnnotationPage per annotated canvas
    manifests/<manifest>.json          with `manifests = true`: the harvested manifest with
                                       each annotated canvas listing its page in `annotations`

Each part is written beside its folder and swapped in whole when complete: publishing again
replaces a model's annotations as a whole, and a failed run leaves the previous ones.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.sink import Sink
from monalia.formats.web_annotation import (
    AnnotationBase,
    LinkedPair,
    ReviewedDetection,
    collection_pages,
    detection_annotations,
    iiif_annotation_page,
    link_annotation,
    review_annotation,
    software_agent,
)
from monalia.hashing import text_digest
from monalia.rdf.scores import ImageScores, ModelInfo


class WebAnnotationSettings(PluginSettings):
    path: str = "annotations"  # the folder written, relative to the project file
    page_size: int = Field(100, ge=1, le=10_000)  # annotations per AnnotationPage
    # the URL the folder is served at (ids and links are under it); default: the project's
    # base IRI + "annotations/"
    base_url: str | None = None
    labels: bool = True  # add each class's labels, in every language of the thesaurus
    iiif: bool = True  # IIIF annotation pages for the images of records harvested from IIIF
    manifests: bool = False  # also copies of those manifests listing the pages (IIIF viewers)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")


class Swap:
    """A folder written beside its final place and moved there when complete."""

    def __init__(self, target: Path):
        self.target = target
        self.partial = target.with_name(f".{target.name}.partial")
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)

    def commit(self) -> None:
        old = self.target.with_name(f".{self.target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.target.exists():
            os.replace(self.target, old)
        os.replace(self.partial, self.target)
        shutil.rmtree(old, ignore_errors=True)

    def abandon(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


class WebAnnotationSink(Sink):
    """W3C Web Annotations and IIIF annotation pages, as JSON-LD files in a folder."""

    name = "web-annotation"
    Settings = WebAnnotationSettings
    unit = "annotations"
    takes_triples = False
    wants_record_details = True

    # -- where things go -----------------------------------------------------------------

    def folder(self) -> Path:
        return self.context.path(self.settings.path)

    def base_url(self) -> str:
        base = self.settings.base_url or f"{self.context.base_iri}annotations/"
        return base if base.endswith("/") else base + "/"

    def location(self) -> str:
        return str(self.folder())

    def url(self, relative: str) -> str:
        return self.base_url() + relative

    # -- a model's detections ------------------------------------------------------------

    def publish_model(
        self,
        graph: str,
        model: ModelInfo,
        header,
        images: Iterable[ImageScores],
        base_iri: str,
        min_score: float = 0.0,
        labels: dict[str, list[tuple[str, str | None]]] | None = None,
        card: dict[str, Any] | None = None,
    ) -> int:
        """Replace the model's annotations (and its IIIF pages) with these images'."""
        slug = _slug(model.name)
        part = f"models/{slug}"
        ids = AnnotationBase(self.url(f"{part}/annotation/"), model.name)
        card_url = self.url(f"{part}/model-card.json") if card is not None else None
        agent = software_agent(model, self.url(f"{part}/model"), card_url)
        labels = (labels or {}) if self.settings.labels else {}
        class_labels = {entry.uri: entry.label for entry in model.classes}
        models = Swap(self.folder() / "models" / slug)
        pages = Swap(self.folder() / "iiif" / slug) if self.settings.iiif else None
        canvases: dict[str, list[dict]] = {}
        self.annotated_canvases: dict[str, str] = {}  # canvas id -> its page's URL
        try:

            def annotations():
                for image in images:
                    made = list(detection_annotations(model, image, ids, agent, labels))
                    yield from made
                    if pages is not None and image.canvas is not None and made:
                        on_canvas = detection_annotations(
                            model, image, ids, agent, labels, on_canvas=True
                        )
                        canvases.setdefault(image.canvas.canvas, []).extend(on_canvas)

            written = self._write_collection(
                models.partial, part, f"{model.name}: what the pictures show", annotations()
            )
            if card is not None:
                _write_json(models.partial / "model-card.json", card)
            if pages is not None:
                for canvas_id, found in canvases.items():
                    name = f"{text_digest(canvas_id, length=20)}.json"
                    page_url = self.url(f"iiif/{slug}/{name}")
                    page = iiif_annotation_page(page_url, canvas_id, found, class_labels)
                    _write_json(pages.partial / name, page)
                    self.annotated_canvases[canvas_id] = page_url
        except BaseException:
            models.abandon()
            if pages is not None:
                pages.abandon()
            raise
        models.commit()
        if pages is not None:
            pages.commit()
        return written

    def _write_collection(self, folder: Path, part: str, label: str, annotations) -> int:
        def page_url(number: int) -> str:
            return self.url(f"{part}/page-{number}.json")

        total = 0
        for number, document in collection_pages(
            self.url(f"{part}/collection.json"),
            label,
            annotations,
            self.settings.page_size,
            page_url,
        ):
            if number is None:
                total = document["total"]
                _write_json(folder / "collection.json", document)
            else:
                _write_json(folder / f"page-{number}.json", document)
        return total

    # -- manifests listing the pages -----------------------------------------------------

    def write_manifests(self, manifests: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Copies of harvested IIIF Presentation 3 manifests (v2 ones are left out: their
        canvases list annotations as `otherContent`, which this copy does not write), each
        annotated canvas listing its annotation page under `annotations`."""
        if not self.settings.manifests:
            return 0
        annotated = getattr(self, "annotated_canvases", {})
        swap = Swap(self.folder() / "manifests")
        written = 0
        try:
            for fetched_from, document in manifests:
                if "presentation/3" not in str(document.get("@context", "")):
                    continue
                copied = copy.deepcopy(document)
                listed = False
                for canvas in copied.get("items") or []:
                    page = annotated.get(canvas.get("id")) if isinstance(canvas, dict) else None
                    if page is None:
                        continue
                    kept = [
                        entry
                        for entry in canvas.get("annotations") or []
                        if not (isinstance(entry, dict) and entry.get("id") == page)
                    ]
                    canvas["annotations"] = [*kept, {"id": page, "type": "AnnotationPage"}]
                    listed = True
                if not listed:
                    continue
                name = f"{text_digest(fetched_from, length=20)}.json"
                copied["id"] = self.url(f"manifests/{name}")
                _write_json(swap.partial / name, copied)
                written += 1
        except BaseException:
            swap.abandon()
            raise
        swap.commit()
        return written

    # -- near duplicates and reviews -----------------------------------------------------

    def _replace_collection(self, part: str, label: str, annotations) -> int:
        """Write the collection `part` (a folder) anew and swap it in when complete."""
        swap = Swap(self.folder() / part)
        try:
            written = self._write_collection(swap.partial, part, label, annotations)
        except BaseException:
            swap.abandon()
            raise
        swap.commit()
        return written

    def publish_links(self, pairs: Iterable[LinkedPair], tool: dict[str, Any]) -> int:
        """Replace the `linking` annotations with these pairs'."""
        ids = AnnotationBase(self.url("links/annotation/"), "duplicates")
        made = (link_annotation(pair, ids, tool) for pair in pairs)
        return self._replace_collection("links", "the same picture in two records", made)

    def publish_reviews(self, reviews: Iterable[ReviewedDetection], tool: dict[str, Any]) -> int:
        """Replace the curators' annotations with these decisions'."""
        ids = AnnotationBase(self.url("reviews/annotation/"), "reviews")
        reviewers = self.url("reviewers/")
        made = (review_annotation(review, ids, reviewers, tool) for review in reviews)
        return self._replace_collection("reviews", "what curators decided", made)


@hookimpl
def register_sinks():
    return [WebAnnotationSink]
