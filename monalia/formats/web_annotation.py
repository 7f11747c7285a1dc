"""monalia's results as W3C Web Annotations (JSON-LD) and IIIF Presentation 3 annotation pages.

One `Annotation` per detection at or above its class's threshold: motivation ``tagging``, the
class's concept URI as body (as Europeana's semantic tags are) with, if asked, its labels as
`TextualBody`s; the target is the image (or the IIIF canvas it is painted on), narrowed by a
media-fragment selector (``xywh=``) where a region was found, with the record's page as scope.
The model is the `Software` agent that made it. The score and the threshold are in monalia's
extension of the context (`EXTENSION`), which expands to ``ml:score`` and ``ml:threshold``.

Every id is minted from the model, record, image and class: publishing again gives the same ids,
so a consumer replaces rather than adds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

from monalia.hashing import text_digest
from monalia.rdf.scores import (
    SCORE_DECIMALS,
    ImageScores,
    ModelClass,
    ModelInfo,
    xywh,
)
from monalia.rdf.terms import MEDIA_FRAGMENTS, ML

ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
IIIF_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
# monalia's terms beside the Web Annotation context: documented in docs/reference/annotations.md
EXTENSION: dict[str, Any] = {
    "ml": ML,
    "score": {"@id": "ml:score", "@type": "xsd:float"},
    "threshold": {"@id": "ml:threshold", "@type": "xsd:float"},
    "similarity": {"@id": "ml:similarity", "@type": "xsd:float"},
    "modelCard": {"@id": "ml:modelCard", "@type": "@id"},
    "softwareVersion": "http://schema.org/softwareVersion",
    "decision": "ml:decision",
}
CONTEXT: list[Any] = [ANNO_CONTEXT, EXTENSION]


def anno_context_document() -> dict[str, Any]:
    """The W3C context document, from the copy monalia ships (no network)."""
    text = files("monalia.formats").joinpath("contexts/anno.jsonld").read_text(encoding="utf-8")
    return json.loads(text)


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AnnotationBase:
    """Where annotation ids live: `base` ends with a slash (a URL the folder is served at, or
    the project's base IRI + ``annotations/``)."""

    base: str
    model: str

    def annotation_id(self, kind: str, *parts: str) -> str:
        return f"{self.base}{kind}/{text_digest(self.model, *parts, length=20)}"


def software_agent(model: ModelInfo, agent_id: str, card_url: str | None) -> dict[str, Any]:
    """The model as the `Software` that created and generated the annotations."""
    from monalia.version import __version__

    agent: dict[str, Any] = {
        "id": agent_id,
        "type": "Software",
        "name": f"{model.name} (monalia {__version__}, trainer {model.trainer or '?'})",
        "softwareVersion": __version__,
    }
    if card_url:
        agent["modelCard"] = card_url
    return agent


def tag_bodies(entry: ModelClass, labels: Iterable[tuple[str, str | None]]) -> list[Any]:
    """The concept URI, then its labels as textual bodies (one per language)."""
    bodies: list[Any] = [entry.uri]
    for text, lang in labels:
        body: dict[str, Any] = {"type": "TextualBody", "value": text, "purpose": "tagging"}
        if lang:
            body["language"] = lang
        bodies.append(body)
    return bodies


def image_targets(image: ImageScores, uri: str, on_canvas: bool) -> list[dict[str, Any]]:
    """The target(s) of a detection: the image or its canvas, one per region box (the body
    holds for each), the whole picture when there is no region."""
    canvas = image.canvas if on_canvas else None
    source = canvas.canvas if canvas is not None else image.image_url
    boxes = image.regions.get(uri) or ()
    scope = {"scope": image.landing_page} if image.landing_page else {}
    if not boxes:
        return [{"type": "SpecificResource", "source": source, **scope}]
    targets = []
    for box in boxes:
        shown = image.canvas_box(box) if canvas is not None else box
        targets.append(
            {
                "type": "SpecificResource",
                "source": source,
                "selector": {
                    "type": "FragmentSelector",
                    "conformsTo": MEDIA_FRAGMENTS,
                    "value": xywh(shown),
                },
                **scope,
            }
        )
    return targets


def detection_annotations(
    model: ModelInfo,
    image: ImageScores,
    ids: AnnotationBase,
    agent: dict[str, Any],
    labels: dict[str, list[tuple[str, str | None]]],
    on_canvas: bool = False,
) -> Iterator[dict[str, Any]]:
    """One `tagging` annotation per class the image's score reaches the class's threshold."""
    for entry in model.classes:
        score = image.scores.get(entry.uri)
        threshold = entry.threshold if entry.threshold is not None else 0.5
        if score is None or score < threshold:  # as the regions were found
            continue
        targets = image_targets(image, entry.uri, on_canvas)
        annotation: dict[str, Any] = {
            "id": ids.annotation_id("tag", image.record_iri, image.image_url, entry.uri),
            "type": "Annotation",
            "motivation": "tagging",
            "created": _time(image.scored_at),
            "creator": agent,
            "generator": agent,
            "body": tag_bodies(entry, labels.get(entry.uri, ())),
            "target": targets[0] if len(targets) == 1 else targets,
            "score": round(float(score), SCORE_DECIMALS),
            "threshold": round(float(threshold), SCORE_DECIMALS),
        }
        yield annotation


@dataclass(frozen=True)
class LinkedPair:
    """Two records whose images are the same picture (`monalia duplicates`)."""

    record_a: str
    record_b: str
    image_a: str
    image_b: str
    similarity: float
    method: str
    found_at: datetime


def link_annotation(pair: LinkedPair, ids: AnnotationBase, agent: dict[str, Any]) -> dict:
    """A `linking` annotation whose two targets are the two records."""
    return {
        "id": ids.annotation_id("link", pair.record_a, pair.record_b),
        "type": "Annotation",
        "motivation": "linking",
        "created": _time(pair.found_at),
        "creator": agent,
        "generator": agent,
        "body": {
            "type": "TextualBody",
            "value": f"the same picture ({pair.method}, similarity {pair.similarity:.3f})",
            "purpose": "linking",
        },
        "target": [pair.record_a, pair.record_b],
        "similarity": round(float(pair.similarity), 4),
    }


@dataclass(frozen=True)
class ReviewedDetection:
    """A curator's accepted decision on a finding, or a region a curator drew."""

    record: str
    image_url: str | None
    class_uri: str
    class_label: str | None
    kind: str  # noise, silence, search, region
    decision: str  # accept, reject
    reviewer: str
    decided_at: datetime
    comment: str | None = None
    region: tuple[int, int, int, int] | None = None
    decision_id: int = 0


def review_annotation(
    review: ReviewedDetection, ids: AnnotationBase, reviewer_base: str, tool: dict[str, Any]
) -> dict[str, Any]:
    """A curator's decision as an annotation by a `Person`: ``editing`` when the record's
    metadata must change (a confirmed silence or noise, a corrected region), ``assessing``
    when the curator judged the model's claim."""
    changes = review.kind == "region" or (
        review.decision == "accept" and review.kind in ("noise", "silence")
    )
    target_source = review.image_url or review.record
    target: dict[str, Any] = {"type": "SpecificResource", "source": target_source}
    if review.region is not None:
        target["selector"] = {
            "type": "FragmentSelector",
            "conformsTo": MEDIA_FRAGMENTS,
            "value": xywh(review.region),
        }
    if review.image_url:
        target["scope"] = review.record
    verdict = {
        ("noise", "accept"): "the record is wrongly annotated with this class",
        ("silence", "accept"): "the picture shows this class; the record lacks it",
        ("search", "accept"): "the picture shows this class",
    }.get((review.kind, review.decision), f"{review.kind}: {review.decision}")
    if review.kind == "region":
        verdict = "the class is seen here (region drawn by a curator)"
    bodies: list[Any] = [review.class_uri]
    text = verdict + (f" ({review.comment})" if review.comment else "")
    bodies.append(
        {"type": "TextualBody", "value": text, "purpose": "editing" if changes else "assessing"}
    )
    return {
        "id": ids.annotation_id("review", str(review.decision_id), review.record, review.class_uri),
        "type": "Annotation",
        "motivation": "editing" if changes else "assessing",
        "created": _time(review.decided_at),
        "creator": {
            "id": f"{reviewer_base}{text_digest(review.reviewer, length=16)}",
            "type": "Person",
            "nickname": review.reviewer,
        },
        "generator": tool,
        "body": bodies,
        "target": target,
        "decision": f"{review.kind}:{review.decision}",
    }


def collection_pages(
    collection_id: str,
    label: str,
    annotations: Iterable[dict[str, Any]],
    page_size: int,
    page_url,
) -> Iterator[tuple[int | None, dict[str, Any]]]:
    """(page number, page document) for each page of `page_size` annotations, then (None, the
    `AnnotationCollection`). `page_url(n)` is the id of page n (from 0)."""
    number, items, total = 0, [], 0
    for annotation in annotations:
        items.append(annotation)
        if len(items) >= page_size:
            yield number, _page(collection_id, page_url, number, items, total, more=True)
            total += len(items)
            number, items = number + 1, []
    if items or number == 0:
        yield number, _page(collection_id, page_url, number, items, total, more=False)
        total += len(items)
        number += 1
    collection: dict[str, Any] = {
        "@context": CONTEXT,
        "id": collection_id,
        "type": "AnnotationCollection",
        "label": label,
        "total": total,
        "first": page_url(0),
        "last": page_url(number - 1),
    }
    yield None, collection


def _page(collection_id, page_url, number, items, start, more) -> dict[str, Any]:
    page: dict[str, Any] = {
        "@context": CONTEXT,
        "id": page_url(number),
        "type": "AnnotationPage",
        "partOf": collection_id,
        "startIndex": start,
        "items": items,
    }
    if more:
        page["next"] = page_url(number + 1)
    if number > 0:
        page["prev"] = page_url(number - 1)
    return page


def iiif_annotation_page(
    page_id: str, canvas_id: str, annotations: list[dict], class_labels: dict[str, str]
) -> dict:
    """A IIIF Presentation 3 `AnnotationPage` of one canvas's tagging annotations.

    Viewers show an annotation's `TextualBody` (the class label and score); the concept is in
    `seeAlso` (a second, non-textual body breaks Mirador 4's annotation list). Each annotation
    targets the canvas, with ``#xywh=`` when it has a region.
    """
    items = []
    for annotation in annotations:
        targets = annotation["target"]
        for number, target in enumerate(targets if isinstance(targets, list) else [targets]):
            selector = target.get("selector")
            on = canvas_id + (f"#{selector['value']}" if selector else "")
            concept = annotation["body"][0]
            label = class_labels.get(concept) or concept
            items.append(
                {
                    "id": annotation["id"] + (f"-{number + 1}" if number else ""),
                    "type": "Annotation",
                    "motivation": "tagging",
                    "body": {
                        "type": "TextualBody",
                        "value": f"{label} ({annotation['score']:.2f})",
                        "format": "text/plain",
                        "purpose": "tagging",
                    },
                    # the concept, where viewers that read only the body's text do not look
                    "seeAlso": [{"id": concept, "type": "Dataset", "label": {"none": [label]}}],
                    "target": on,
                }
            )
    return {"@context": IIIF_CONTEXT, "id": page_id, "type": "AnnotationPage", "items": items}
