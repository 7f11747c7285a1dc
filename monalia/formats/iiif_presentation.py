"""IIIF: Presentation 2 and 3 manifests and collections read into records, and Image API URLs.

Everything here works on parsed JSON and has no network access: the crawler (``harvesters``)
fetches the documents, the image stage asks `image_request` and `size_from_info` which URL
gives an image at the size training needs.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from monalia.api.records import IRI_FORBIDDEN, ImageRef, Record, Subject
from monalia.errors import RecordError
from monalia.formats.mapping import years_of

PRESENTATION_2 = "http://iiif.io/api/presentation/2/context.json"
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
# Metadata labels (lower case, any language) that carry the fields a record has.
CREATOR_LABELS = frozenset(
    {"creator", "artist", "author", "maker", "painter", "auteur", "artiste", "künstler", "people"}
)
DATE_LABELS = frozenset(
    {"date", "dates", "date statement", "created", "date created", "période", "datierung"}
)
# The institution that holds the object; `attribution` (a credit line) is not one.
INSTITUTION_LABELS = frozenset(
    {
        "holding institution",
        "repository",
        "institution",
        "collection holder",
        "owner",
        "musée",
        "institution de conservation",
    }
)
SUBJECT_LABELS = frozenset(
    {
        "subject",
        "subjects",
        "sujet",
        "sujets",
        "keywords",
        "iconography",
        "iconographie",
        "depicts",
        "représentation",
        "schlagwort",
    }
)


def plain(text: str) -> str:
    """Text without HTML markup (metadata values may carry links and <br/>), spaces folded."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def document_id(doc: dict[str, Any]) -> str | None:
    value = doc.get("id", doc.get("@id"))
    return value if isinstance(value, str) and value else None


def document_type(doc: dict[str, Any]) -> str:
    """The type without its prefix: Manifest, Collection, Canvas, ... (v2 ``sc:Manifest``)."""
    value = doc.get("type", doc.get("@type"))
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), "")
    return str(value or "").rsplit(":", 1)[-1]


def version(doc: dict[str, Any]) -> int:
    """2 or 3, from the context (the type keys as a fallback)."""
    context = doc.get("@context")
    contexts = context if isinstance(context, list) else [context]
    for value in contexts:
        if isinstance(value, str) and "presentation/3" in value:
            return 3
        if isinstance(value, str) and "presentation/2" in value:
            return 2
    return 3 if "id" in doc and "@id" not in doc else 2


def _language_values(value: Any) -> list[tuple[str | None, str]]:
    """(language, text) pairs of a label in any of the shapes IIIF allows."""
    if value is None:
        return []
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, int | float):
        return [(None, str(value))]
    if isinstance(value, list):
        return [pair for item in value for pair in _language_values(item)]
    if isinstance(value, dict):
        if "@value" in value:
            lang = value.get("@language")
            return [(lang if isinstance(lang, str) else None, str(value["@value"]))]
        pairs: list[tuple[str | None, str]] = []
        for lang, texts in value.items():  # a v3 language map; real files carry odd keys
            for _, text in _language_values(texts):
                pairs.append((None if lang in ("none", "@none") else str(lang), text))
        return pairs
    return []


def text_of(value: Any, languages: tuple[str, ...] = ()) -> str | None:
    """One text for a label: the values in the first preferred language found, else those without
    a language, else those of the first language given; several values joined by "; "."""
    pairs = [(lang, plain(text)) for lang, text in _language_values(value)]
    pairs = [(lang, text) for lang, text in pairs if text]
    if not pairs:
        return None

    def base(lang: str | None) -> str | None:
        return lang.lower().split("-")[0] if lang else None

    chosen: list[str] = []
    for wanted in languages:
        chosen = [text for lang, text in pairs if base(lang) == wanted.lower()]
        if chosen:
            break
    if not chosen:
        chosen = [text for lang, text in pairs if lang is None]
    if not chosen:
        first = pairs[0][0]
        chosen = [text for lang, text in pairs if lang == first]
    return "; ".join(dict.fromkeys(chosen))


def texts_with_language(value: Any) -> list[tuple[str | None, str]]:
    """Every (language, text) of a value, markup removed: subjects keep each language."""
    return [(lang, plain(text)) for lang, text in _language_values(value) if plain(text)]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class ImageBody:
    """One image painted on a canvas: its URL and, where it has one, its Image API service."""

    url: str
    service: str | None = None
    profile: str | None = None
    width: int | None = None
    height: int | None = None
    label: str | None = None


@dataclass
class Canvas:
    id: str
    label: str | None
    images: list[ImageBody] = field(default_factory=list)
    width: int | None = None  # the canvas's own coordinate space, where annotations point
    height: int | None = None


@dataclass
class Manifest:
    """What monalia reads of a manifest, in either version."""

    id: str
    version: int
    label: str | None
    summary: str | None
    metadata: list[tuple[str, Any]]
    rights: str | None
    attribution: str | None
    provider: str | None
    homepage: str | None
    thumbnail: ImageBody | None
    canvases: list[Canvas]
    languages: tuple[str, ...] = ()

    def metadata_text(self, names: frozenset[str]) -> list[str]:
        return [
            text
            for label, value in self.metadata
            if label.lower() in names and (text := text_of(value, self.languages))
        ]


def _service(value: Any) -> tuple[str | None, str | None]:
    """(id, profile) of the first Image API service in a ``service`` value."""
    for service in _as_list(value):
        if isinstance(service, str):
            return service, None
        if not isinstance(service, dict):
            continue
        kind = document_type(service)
        context = str(service.get("@context", ""))
        profile = service.get("profile")
        profile_text = " ".join(str(p) for p in _as_list(profile) if isinstance(p, str))
        if kind.startswith("ImageService") or "image" in context or "level" in profile_text:
            return document_id(service), profile_text or None
    return None, None


def _image_body(resource: Any, languages: tuple[str, ...]) -> ImageBody | None:
    """The image of a painting annotation's body or a v2 resource; the default of a choice."""
    if isinstance(resource, list):
        resource = next((r for r in resource if isinstance(r, dict)), None)
    if not isinstance(resource, dict):
        return None
    if document_type(resource) == "Choice":
        options = _as_list(resource.get("default")) + _as_list(resource.get("items"))
        options += _as_list(resource.get("item"))
        for option in options:
            body = _image_body(option, languages)
            if body is not None:
                return body
        return None
    url = document_id(resource)
    service, profile = _service(resource.get("service"))
    if url is None and service is None:
        return None
    if url is None:
        url = f"{service}/full/full/0/default.jpg"
    width, height = resource.get("width"), resource.get("height")
    return ImageBody(
        url=url,
        service=service,
        profile=profile,
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
        label=text_of(resource.get("label"), languages),
    )


def _canvases(doc: dict[str, Any], languages: tuple[str, ...]) -> list[Canvas]:
    canvases: list[Canvas] = []
    if version(doc) == 2:
        # the first sequence is the object's order; others repeat the same canvases
        sequence = next((s for s in _as_list(doc.get("sequences")) if isinstance(s, dict)), {})
        for canvas in _as_list(sequence.get("canvases")):
            if not isinstance(canvas, dict):
                continue
            images = [
                body
                for annotation in _as_list(canvas.get("images"))
                if isinstance(annotation, dict)
                and (body := _image_body(annotation.get("resource"), languages))
            ]
            canvases.append(_canvas(canvas, images, languages))
        return canvases
    for canvas in _as_list(doc.get("items")):
        if not isinstance(canvas, dict) or document_type(canvas) != "Canvas":
            continue
        images = []
        for page in _as_list(canvas.get("items")):
            if not isinstance(page, dict):
                continue
            for annotation in _as_list(page.get("items")):
                if not isinstance(annotation, dict):
                    continue
                motivation = " ".join(str(m) for m in _as_list(annotation.get("motivation")))
                if motivation and "painting" not in motivation:
                    continue
                body = _image_body(annotation.get("body"), languages)
                if body is not None:
                    images.append(body)
        canvases.append(_canvas(canvas, images, languages))
    return canvases


def _dimension(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _canvas(canvas: dict[str, Any], images: list[ImageBody], languages) -> Canvas:
    return Canvas(
        document_id(canvas) or "",
        text_of(canvas.get("label"), languages),
        images,
        _dimension(canvas.get("width")),
        _dimension(canvas.get("height")),
    )


def canvas_targets(raw: Any, source_id: str) -> dict[str, tuple[str, str, int | None, int | None]]:
    """For a record harvested from IIIF: each image URL's (manifest id, canvas id, canvas
    width, canvas height); empty for any other record. `raw` is the record's stored payload
    (the manifest, or a canvas record's ids), `source_id` its key (the manifest's URL first)."""
    if not isinstance(raw, dict):
        return {}
    if CANVAS_KEY in source_id and isinstance(raw.get("canvas"), str):
        manifest = raw.get("manifest")
        images = raw.get("images")
        if not isinstance(manifest, str) or not isinstance(images, list):
            return {}
        target = (
            manifest,
            raw["canvas"],
            _dimension(raw.get("width")),
            _dimension(raw.get("height")),
        )
        return {url: target for url in images if isinstance(url, str)}
    if "iiif.io/api/presentation" not in str(raw.get("@context", "")):
        return {}
    try:
        manifest = read_manifest(raw)
    except RecordError:
        return {}
    return {
        body.url: (manifest.id, canvas.id, canvas.width, canvas.height)
        for canvas in manifest.canvases
        if canvas.id
        for body in canvas.images
    }


def read_manifest(doc: Any, languages: tuple[str, ...] = ()) -> Manifest:
    """A manifest document (v2 or v3) read into a `Manifest`; `RecordError` when it is none."""
    if not isinstance(doc, dict):
        raise RecordError(f"a manifest is a JSON object, not {type(doc).__name__}")
    kind = document_type(doc)
    if kind != "Manifest":
        raise RecordError(f"not a IIIF manifest (type {kind or 'missing'})")
    manifest_id = document_id(doc)
    if manifest_id is None:
        raise RecordError("the manifest has no id")
    metadata: list[tuple[str, Any]] = []
    for pair in _as_list(doc.get("metadata")):
        if isinstance(pair, dict):
            label = text_of(pair.get("label"), languages)
            if label:
                metadata.append((label, pair.get("value")))
    homepage = None
    for page in _as_list(doc.get("homepage")) + _as_list(doc.get("related")):
        if isinstance(page, str):
            homepage = page
        elif isinstance(page, dict):
            homepage = document_id(page)
        if homepage:
            break
    if homepage is None:
        for rendering in _as_list(doc.get("rendering")):
            if isinstance(rendering, dict) and rendering.get("format") == "text/html":
                homepage = document_id(rendering)
                break
    rights = doc.get("rights") or next(
        (value for value in _as_list(doc.get("license")) if isinstance(value, str)), None
    )
    statement = doc.get("requiredStatement")
    attribution = text_of(
        statement.get("value") if isinstance(statement, dict) else doc.get("attribution"),
        languages,
    )
    provider = next(
        (
            text_of(agent.get("label"), languages)
            for agent in _as_list(doc.get("provider"))
            if isinstance(agent, dict)
        ),
        None,
    )
    return Manifest(
        id=manifest_id,
        version=version(doc),
        label=text_of(doc.get("label"), languages),
        summary=text_of(doc.get("summary", doc.get("description")), languages),
        metadata=metadata,
        rights=rights if isinstance(rights, str) else None,
        attribution=attribution,
        provider=provider,
        homepage=homepage,
        thumbnail=_image_body(doc.get("thumbnail"), languages),
        canvases=_canvases(doc, languages),
        languages=languages,
    )


def members(doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The (collections, manifests) a collection lists, by id, in order."""
    listed = listed_members(doc)
    return listed.collections, listed.manifests


@dataclass
class Members:
    """What a collection lists: collection and manifest URLs, and the members that cannot be
    fetched (no id, an id that is not an absolute http(s) URL, an unknown type) with why."""

    collections: list[str]
    manifests: list[str]
    problems: list[tuple[str, str]]  # (which member, why it is left out)


def fetchable_url(value: Any) -> bool:
    """An absolute http(s) URL with a host and no characters a URL cannot hold."""
    if not isinstance(value, str) or IRI_FORBIDDEN.search(value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def listed_members(doc: dict[str, Any]) -> Members:
    collections: list[str] = []
    manifests: list[str] = []
    problems: list[tuple[str, str]] = []
    listed = _as_list(doc.get("items")) + _as_list(doc.get("members"))
    listed += [dict(m, **{"@type": "sc:Collection"}) for m in _as_list(doc.get("collections"))]
    listed += [dict(m, **{"@type": "sc:Manifest"}) for m in _as_list(doc.get("manifests"))]
    for number, member in enumerate(listed, start=1):
        if isinstance(member, str):
            kind, member_id = "Manifest", member
        elif isinstance(member, dict):
            kind, member_id = document_type(member), document_id(member)
        else:
            problems.append((f"member {number}", f"a JSON {type(member).__name__}, not a member"))
            continue
        if kind not in ("Collection", "Manifest"):
            if kind in ("Canvas", "Range", "AnnotationPage", "Annotation"):
                continue  # parts of a manifest listed by some collections; not records
            problems.append((f"member {number}", f"type {kind or 'missing'} is not fetched"))
            continue
        if member_id is None:
            problems.append((f"member {number}", f"the {kind.lower()} has no id"))
            continue
        if not fetchable_url(member_id):
            problems.append(
                (
                    f"member {number} ({member_id[:200]})",
                    f"the {kind.lower()} id {member_id[:200]!r} is not an absolute http(s) URL",
                )
            )
            continue
        (collections if kind == "Collection" else manifests).append(member_id)
    return Members(list(dict.fromkeys(collections)), list(dict.fromkeys(manifests)), problems)


def _subjects(manifest: Manifest, fields: frozenset[str]) -> list[Subject]:
    subjects: list[Subject] = []
    for label, value in manifest.metadata:
        if label.lower() not in fields:
            continue
        for lang, text in texts_with_language(value):
            for part in (p.strip() for p in re.split(r"\s*[;|]\s*", text)):
                if part:
                    subjects.append(Subject(label=part, lang=lang, field=label))
    return subjects


CANVAS_KEY = "#canvas="  # between the manifest's key and a canvas's in a canvas record's id


def canvas_key(manifest_key: str, canvas_id: str | None, number: int) -> str:
    """A canvas record's id: its manifest's key and its own id (its number when it has no id
    or the two would not fit a catalog key)."""
    key = f"{manifest_key}{CANVAS_KEY}{canvas_id}"
    return key if canvas_id and len(key) <= 500 else f"{manifest_key}{CANVAS_KEY}{number}"


def to_records(
    doc: Any,
    per: str = "manifest",
    languages: tuple[str, ...] = (),
    subject_fields: frozenset[str] = SUBJECT_LABELS,
    url: str | None = None,
    date_labels: frozenset[str] = DATE_LABELS,
    institution_labels: frozenset[str] = INSTITUTION_LABELS,
) -> list[Record]:
    """Records of a manifest: one for the manifest (its canvases' images), or one per canvas.

    `url` is where the manifest was fetched from: the record's key, so two documents that
    claim one id stay two records (default: the manifest's own id). Labels are compared in
    lower case.
    """
    manifest = read_manifest(doc, languages)
    key = url or manifest.id
    creators = [
        part
        for text in manifest.metadata_text(CREATOR_LABELS)
        for part in re.split(r"\s*;\s*", text)
        if part
    ]
    dates = manifest.metadata_text(date_labels)
    date = dates[0] if dates else None
    start, end = years_of(date)
    institutions = manifest.metadata_text(institution_labels)
    common = {
        "description": manifest.summary,
        "creators": creators,
        "date": date,
        "date_start": start,
        "date_end": end,
        "institution": manifest.provider or (institutions[0] if institutions else None),
        "rights": manifest.rights,
        "landing_page": manifest.homepage,
        "subjects": _subjects(manifest, subject_fields),
    }

    def ref(body: ImageBody, main: bool) -> ImageRef:
        return ImageRef(url=body.url, iiif_service=body.service, is_main=main)

    if per == "canvas":
        records = []
        for number, canvas in enumerate(manifest.canvases, start=1):
            if not canvas.images:
                continue
            title = " — ".join(t for t in (manifest.label, canvas.label) if t) or None
            records.append(
                Record(
                    source_id=canvas_key(key, canvas.id, number),
                    title=title,
                    images=[ref(body, i == 0) for i, body in enumerate(canvas.images)],
                    raw={
                        "manifest": manifest.id,
                        "canvas": canvas.id or number,
                        "width": canvas.width,
                        "height": canvas.height,
                        "images": [body.url for body in canvas.images],
                    },
                    **common,
                )
            )
        return records
    bodies = [body for canvas in manifest.canvases for body in canvas.images]
    if not bodies and manifest.thumbnail is not None:
        bodies = [manifest.thumbnail]
    return [
        Record(
            source_id=key,
            title=manifest.label,
            images=[ref(body, i == 0) for i, body in enumerate(bodies)],
            raw=doc,
            **common,
        )
    ]


# -- Image API --------------------------------------------------------------------------------


_IMAGE_API_REQUEST = re.compile(
    r"^(?P<service>https?://.+?)/(full|square|\d+,\d+,\d+,\d+|pct:[\d.,]+)"
    r"/(full|max|\^?!?\d*,\d*|\^?pct:[\d.]+)/!?\d+(\.\d+)?"
    r"/(default|color|colour|gray|grey|bitonal|native)\.(jpg|jpeg|png|tif|gif|jp2|webp)$"
)


def service_of_image_url(url: str) -> str | None:
    """The IIIF Image service an Image API request URL asks (``.../full/full/0/default.jpg``),
    so the image stage can ask for the size it needs; None for any other URL."""
    match = _IMAGE_API_REQUEST.match(url)
    return match.group("service") if match else None


def service_level(profile: str | None) -> int | None:
    """The compliance level a service's profile states (0, 1, 2), None when it states none."""
    found = re.search(r"level([012])", profile or "")
    return int(found.group(1)) if found else None


def image_request(service: str, width: int, height: int) -> str:
    """The URL of the whole image scaled to fit within width x height (v2 and v3 syntax)."""
    return f"{service.rstrip('/')}/full/!{width},{height}/0/default.jpg"


def info_url(service: str) -> str:
    return f"{service.rstrip('/')}/info.json"


def size_from_info(info: Any, width: int, height: int) -> str:
    """The URL of the image at a size the service lists (level 0 serves no other), the
    smallest that still covers the box, else the largest; ``full/max`` when none is listed."""
    if not isinstance(info, dict) or document_id(info) is None:
        raise ValueError("info.json has no id")
    service = document_id(info).rstrip("/")
    v3 = "image/3" in str(info.get("@context", "")) or info.get("type") == "ImageService3"
    full_w, full_h = info.get("width"), info.get("height")
    sizes = [
        (s["width"], s["height"])
        for s in _as_list(info.get("sizes"))
        if isinstance(s, dict)
        and isinstance(s.get("width"), int)
        and isinstance(s.get("height"), int)
    ]
    if sizes:
        sizes.sort()
        need_w, need_h = sizes[-1]
        if isinstance(full_w, int) and isinstance(full_h, int) and full_w and full_h:
            scale = min(width / full_w, height / full_h, 1.0)
            need_w, need_h = math.floor(full_w * scale), math.floor(full_h * scale)
        covering = [s for s in sizes if s[0] >= need_w and s[1] >= need_h]
        w, h = covering[0] if covering else sizes[-1]
        return (
            f"{service}/full/{w},{h}/0/default.jpg" if v3 else f"{service}/full/{w},/0/default.jpg"
        )
    return f"{service}/full/max/0/default.jpg" if v3 else f"{service}/full/full/0/default.jpg"
