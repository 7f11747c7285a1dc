"""`monalia report html`: a static site of noise, silence and search results, and the model.

Pages are rendered from ``monalia/templates/report`` with autoescaping (titles and subject texts
come from the collections). Thumbnails are small JPEG copies of the catalog's images, named by the
original's content hash; images without a local copy are linked where they live.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from monalia.curation.findings import Finding
from monalia.hashing import file_sha256
from monalia.learning.image_decode import picture_jpeg

THUMBNAIL_SIDE = 240
MAX_PIXELS = 100_000_000  # a larger image is refused, not decoded
MAX_PLOTS = 12

EXPLAIN = {
    "noise": "Records annotated with a class (or a narrower term) that the model scores below "
    "the class's noise threshold on every image: the annotation is suspect. Lowest score first.",
    "silence": "Records the model scores above the class's silence threshold whose metadata does "
    "not mention the class: the annotation is probably missing. Highest score first.",
}
EXPLAIN_CONFIDENT = {
    "noise": "Annotations that confident learning flags as wrong, from scores of models that did "
    "not train on the image ({scores}), for the records of the model's dataset; for the other "
    "records, the class's noise threshold. Lowest score first.",
    "silence": "Missing annotations that confident learning flags, from scores of models that "
    "did not train on the image ({scores}), for the records of the model's dataset; for the "
    "other records, the class's silence threshold. Highest score first.",
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "class"


def thumbnail(source: Path, folder: Path) -> str | None:
    """A small JPEG copy of `source` in `folder`, named by the source's hash; None if unreadable."""
    name = f"{file_sha256(source)}.jpg"
    target = folder / name
    if not target.exists():
        data = picture_jpeg(source, THUMBNAIL_SIDE, MAX_PIXELS)
        if data is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return f"{folder.name}/{name}"


def region_boxes(catalog, model, findings: list[Finding]) -> dict[tuple[str, str], list[dict]]:
    """(image URL, class URI) -> the region's boxes as percentages of the image, for the
    findings whose image has a region under the model (`enrich --regions`)."""
    from sqlalchemy import select

    from monalia.catalog.models import ImageRow, ModelClassRow, RegionRow

    urls = sorted({f.image for f in findings if f.image})
    found: dict[tuple[str, str], list[dict]] = {}
    with catalog.session() as session:
        for start in range(0, len(urls), 500):
            rows = session.execute(
                select(
                    ImageRow.url,
                    ModelClassRow.uri,
                    RegionRow.boxes,
                    RegionRow.image_width,
                    RegionRow.image_height,
                )
                .join(ImageRow, ImageRow.id == RegionRow.image_id)
                .join(
                    ModelClassRow,
                    (ModelClassRow.model_id == RegionRow.model_id)
                    & (ModelClassRow.class_index == RegionRow.class_index),
                )
                .where(RegionRow.model_id == model.id, ImageRow.url.in_(urls[start : start + 500]))
            ).all()
            for url, uri, boxes, width, height in rows:
                found[url, uri] = [
                    {
                        "left": 100 * x / width,
                        "top": 100 * y / height,
                        "width": 100 * w / width,
                        "height": 100 * h / height,
                    }
                    for x, y, w, h in boxes or ()
                ]
    return found


def _card(
    finding: Finding,
    thumbs: dict[str, str | None],
    heatmaps: dict[tuple[str, str], str] | None = None,
    regions: dict[tuple[str, str], list[dict]] | None = None,
) -> dict[str, Any]:
    card = asdict(finding)
    card["regions"] = (regions or {}).get((finding.image, finding.class_uri), [])
    card["thumbnail"] = thumbs.get(finding.image_path or "")
    remote = finding.image if finding.image.startswith(("http://", "https://")) else None
    card["remote"] = None if card["thumbnail"] else remote
    card["heatmap"] = (heatmaps or {}).get((finding.image_path or "", finding.class_uri))
    return card


def write_heatmaps(
    findings: list[Finding], project, model, folder: Path, progress=None
) -> dict[tuple[str, str], str]:
    """Heat maps (the model's view with Grad-CAM laid over it) of the findings' images for
    their class, as JPEGs in `folder`: (image path, class URI) -> path relative to the site.
    Nothing when the model's trainer cannot explain or its weights are not here."""
    from monalia.api.trainer import LoadOptions
    from monalia.errors import MonaliaError
    from monalia.learning.explain import blend
    from monalia.learning.image_decode import decode_for_model
    from monalia.stages.enrich import load_predictor

    wanted = [f for f in findings if f.image_path]
    if not wanted or not model.path:
        return {}
    try:
        predictor = load_predictor(project, model, LoadOptions("auto", 1, 0))
    except (MonaliaError, OSError, ImportError):
        return {}
    if not predictor.can_explain:
        return {}
    made: dict[tuple[str, str], str] = {}
    for finding in wanted:
        key = (finding.image_path, finding.class_uri)
        if key in made or finding.class_uri not in predictor.classes:
            continue
        name = f"{_slug(Path(finding.image_path).stem)}-{predictor.classes.index(finding.class_uri)}.jpg"
        target = folder / name
        if not target.exists():
            try:
                pixels = decode_for_model(Path(finding.image_path), predictor.input_size)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                continue
            heat = predictor.explain(pixels, predictor.classes.index(finding.class_uri))
            folder.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blend(pixels, heat))
        made[key] = f"{folder.name}/{name}"
        if progress is not None:
            progress.advance(1)
    return made


def model_plots(folder: Path | None) -> list[Path]:
    """The PNG plots training and evaluation left in the model's folder."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(folder.rglob("*.png"))[:MAX_PLOTS]


def web_link(value: Any) -> str | None:
    """A link target from the data only when it is an http(s) URL: a record's landing page or
    IRI of ``javascript:alert(1)`` is shown as text, never made clickable."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if text.lower().startswith(("http://", "https://")) else None


def report_environment(folder: str = "templates/report") -> Environment:
    """The report's templates (or the workbench's, from `folder`): text escaped, link targets
    from the data filtered (`web_link`)."""
    environment = Environment(
        loader=PackageLoader("monalia", folder),
        autoescape=select_autoescape(["html"]),
    )
    environment.filters["web_link"] = web_link
    return environment


def write_thumbnails(findings, folder: Path, progress=None) -> dict[str, str | None]:
    """A thumbnail of each finding's local image, once per image: image path -> its file."""
    thumbs: dict[str, str | None] = {}
    for finding in findings:
        path = finding.image_path
        if path and path not in thumbs:
            thumbs[path] = thumbnail(Path(path), folder)
            if progress is not None:
                progress.advance(1)
    return thumbs


def audit_cards(catalog, project, folder: Path, limit: int = 500) -> list[dict[str, Any]]:
    """The stored audit findings with a thumbnail each (at most `limit`)."""
    from monalia.curation.audit import stored_problems
    from monalia.curation.problem_kinds import MEANING

    cards = []
    for problem in stored_problems(catalog, None, project.data_dir)[:limit]:
        card = problem.as_dict()
        card["meaning"] = MEANING.get(problem.kind, problem.kind)
        card["thumbnail"] = (
            thumbnail(Path(problem.image_path), folder) if problem.image_path else None
        )
        cards.append(card)
    return cards


def copy_plots(model_dir: Path | None, out: Path) -> list[str]:
    """The model's plots copied into the site; their paths relative to it."""
    plots = []
    for plot in model_plots(model_dir):
        target = out / "plots" / f"{plot.parent.name}-{plot.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot, target)
        plots.append(f"plots/{target.name}")
    return plots


def class_row(cls, page: str, per_class_metrics: dict, noise, silence) -> dict[str, Any]:
    """One class's line on the index page: its AP, thresholds and findings."""
    return {
        "label": cls.label,
        "page": page,
        "ap": (per_class_metrics.get(cls.uri) or {}).get("ap"),
        "threshold": cls.threshold,
        "noise_below": cls.noise_below,
        "silence_above": cls.silence_above,
        "noise": sum(1 for f in noise if f.class_uri == cls.uri),
        "silence": sum(1 for f in silence if f.class_uri == cls.uri),
    }


def findings_explanation(kind: str, out_of_sample) -> str:
    """How a noise or silence page's findings were made, as its page says it."""
    if out_of_sample is not None:
        return EXPLAIN_CONFIDENT[kind].format(scores=out_of_sample.name)
    return EXPLAIN[kind]


def search_explanation(cls, per_class: int) -> str:
    threshold = cls.threshold if cls.threshold is not None else 0.5
    return (
        f"The {per_class} records scored highest for {cls.label} (at or above "
        f"{threshold:.3f}, the class's threshold), best first."
    )


def index_values(model, classes, class_pages, noise, silence) -> dict[str, Any]:
    """The index page's own values: one line per class, the model's test mAP."""
    metrics = model.metrics or {}
    per_class_metrics = metrics.get("per_class") or {}
    evaluated = metrics.get("evaluated_on")
    return {
        "title": "Model and curation report",
        "classes": [
            class_row(cls, page["file"], per_class_metrics, noise, silence)
            for page, cls in zip(class_pages, classes, strict=True)
        ],
        "evaluated": evaluated,
        "test_map": (metrics.get(evaluated) or {}).get("map") if evaluated else None,
    }


def write_site(out: Path, setup, catalog, project, per_class: int, progress=None) -> Path:
    """Write the site into `out`; return its index page."""
    from monalia.catalog.lookups import model_folder
    from monalia.curation.session import add_local_images

    curation, model = setup.curation, setup.model
    noise, silence = curation.noise(), curation.silence()
    searches = {c.uri: curation.search(c, None, per_class) for c in curation.classes}
    everything = noise + silence + [f for found in searches.values() for f in found]
    curation.describe(everything)
    add_local_images(catalog, project, everything)

    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        Path(str(files("monalia") / "templates" / "report" / "style.css")), out / "style.css"
    )
    thumbs = write_thumbnails(everything, out / "thumbs", progress)

    # half the heat maps for noise, the rest (at least half) for silence
    limit = project.file.serve.heatmaps
    explained = noise[: limit // 2] + silence[: limit - min(limit // 2, len(noise))]
    heatmaps = write_heatmaps(explained, project, model, out / "heatmaps", progress)

    plots = copy_plots(model_folder(project, model) if model.path else None, out)
    regions = region_boxes(catalog, model, everything)

    class_pages = [
        {"uri": c.uri, "label": c.label, "file": f"class-{_slug(c.label)}.html"}
        for c in curation.classes
    ]
    # what every page shows: the model, the store, when, the counts, the classes' pages
    common = {
        "model": model,
        "store": setup.store,
        "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "counts": {"noise": len(noise), "silence": len(silence)},
        "class_pages": class_pages,
    }
    environment = report_environment()

    def render(name: str, target: str, **values: Any) -> None:
        text = environment.get_template(name).render(**common, **values)
        (out / target).write_text(text, encoding="utf-8")
        if progress is not None:
            progress.advance(1)

    for kind, found in (("noise", noise), ("silence", silence)):
        render(
            "findings.html",
            f"{kind}.html",
            title=kind.capitalize(),
            kind=kind,
            explanation=findings_explanation(kind, curation.out_of_sample),
            findings=[_card(f, thumbs, heatmaps, regions) for f in found],
        )
    for page, cls in zip(class_pages, curation.classes, strict=True):
        render(
            "findings.html",
            page["file"],
            title=f"Search: {cls.label}",
            kind="search",
            explanation=search_explanation(cls, per_class),
            findings=[_card(f, thumbs, None, regions) for f in searches[cls.uri]],
        )
    problems = audit_cards(catalog, project, out / "thumbs")
    render(
        "audit.html",
        "audit.html",
        title="Audit",
        problems=problems,
        explanation="Pictures that are not the object and dataset problems, as the last "
        "`monalia audit` found them (worst quality score first within each kind).",
    )
    from monalia.curation.review_stats import review_stats

    render(
        "index.html",
        "index.html",
        **index_values(model, curation.classes, class_pages, noise, silence),
        plots=plots,
        problems=len(problems),
        reviewed=review_stats(catalog, {c.uri: c.label for c in curation.classes}),
    )
    if progress is not None:
        progress.close()
    return out / "index.html"
