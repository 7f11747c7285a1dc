"""What the curators' workbench (`monalia serve`) reads and writes, apart from the web pages.

Findings are those of `monalia report` (the same queries, thresholds and method), computed once
per model when first asked for and kept in memory; decisions are read from the catalog's
append-only history (`monalia.catalog.reviews`) and applied to the lists on every request, so a
decision shows at once and a finding already decided is not offered again unless the model now
claims the opposite.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from monalia.catalog.models import (
    ImageRow,
    ModelClassRow,
    PredictionRow,
    RecordRow,
    ReviewDecisionRow,
)
from monalia.catalog.reviews import (
    KINDS,
    Decision,
    FindingReview,
    _decision,
    _replay,
    record_decision,
    undo_decision,
)
from monalia.curation.findings import CurationClass, Finding, find_class
from monalia.errors import ConfigError, RecordError
from monalia.project import Project
from monalia.rdf.terms import check_iri
from monalia.web.curation_views import CurationViews
from monalia.web.map_views import MapViews
from monalia.web.record_views import RecordViews

REVIEWED = ("open", "decided", "skipped", "disputed", "all")
SAMPLE = "sample"  # a stratified random sample of a class's detections; decided as "search"
SEARCH_FIRST = 100  # search results read for a class's first pages
BATCH = 500


@dataclass
class Item:
    """One finding in a workbench list, with what the filters need."""

    finding: Finding
    kind: str
    source: str | None = None
    record_id: int | None = None
    review: FindingReview | None = None
    images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.review is None or self.review.latest is None:
            return "open"
        if self.review.disputed:
            return "disputed"
        return "skipped" if self.review.latest.decision == "skip" else "decided"


@dataclass
class Page:
    items: list[Item]
    total: int  # after the filters
    page: int
    pages: int
    per_page: int
    counts: dict[str, int]  # of the whole list, by review status
    complete: bool = True  # False: there are more (a search list read as far as needed)


class ReviewLog:
    """The catalog's decisions, read incrementally: only rows newer than the last read."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.rows: list[Decision] = []
        self.last_id = 0
        self.by_pair: dict[tuple[str, str], FindingReview] = {}
        self.lock = threading.Lock()

    def current(self) -> dict[tuple[str, str], FindingReview]:
        with self.lock, self.catalog.session() as session:
            newest = session.scalar(select(func.max(ReviewDecisionRow.id))) or 0
            if newest != self.last_id:
                fresh = session.scalars(
                    select(ReviewDecisionRow)
                    .where(ReviewDecisionRow.id > self.last_id)
                    .order_by(ReviewDecisionRow.id)
                )
                self.rows.extend(_decision(row) for row in fresh)
                self.last_id = newest
                self.by_pair = _replay(self.rows)
            return self.by_pair


class Workbench(RecordViews, MapViews, CurationViews):
    """One project's findings, records, decisions and heat maps for one model."""

    def __init__(
        self,
        catalog,
        project: Project,
        model_ref: str | None = None,
        store: str | None = None,
        method: str | None = None,
    ):
        from monalia.curation.session import open_curation

        self.catalog = catalog
        self.project = project
        self.setup = open_curation(catalog, project, model_ref, store, method=method)
        self.curation = self.setup.curation
        self.model = self.setup.model
        self.classes: list[CurationClass] = self.curation.classes
        self.settings = project.file.serve
        self.log = ReviewLog(catalog)
        self._lists: dict[tuple[str, str], list[Item]] = {}
        self._lock = threading.Lock()
        self._explain_lock = threading.Lock()
        self._predictor = None
        self._predictor_lock = threading.Lock()
        self._sources: list[str] | None = None
        self._search_read: dict[str, int] = {}  # how many search results were asked for
        self._index = None  # (embedding, vector index), opened when first asked
        self._class_labels: dict[str, list[tuple[str, str | None, str]]] | None = None

    # -- languages ------------------------------------------------------------------------

    @property
    def class_labels(self) -> dict[str, list[tuple[str, str | None, str]]]:
        """Each class's labels in every language the model's graph publishes."""
        if self._class_labels is None:
            from monalia.curation.languages import class_labels

            try:
                self._class_labels = class_labels(self.curation)
            except Exception:  # a store without the labels: the model's own only
                self._class_labels = {}
        return self._class_labels

    @property
    def languages(self) -> list[str]:
        """The languages the classes have labels in, the project's first."""
        found = {lang for entries in self.class_labels.values() for _, lang, _ in entries if lang}
        first = self.project.file.classes.language
        return sorted(found, key=lambda lang: (lang != first, lang))

    def label_in(self, uri: str, language: str | None, fallback: str) -> str:
        """A class's preferred label in `language` (else its alternative one), or `fallback`."""
        if not language:
            return fallback
        from monalia.curation.languages import pick_label

        return pick_label(self.class_labels.get(uri, []), language) or fallback

    # -- classes and findings -------------------------------------------------------------

    def class_of(self, term: str) -> CurationClass:
        """The class a term names: see `find_class`; else a label of it in any language."""
        from monalia.curation.languages import class_by_any_label
        from monalia.errors import ConfigError

        try:
            return find_class(self.classes, term)
        except ConfigError:
            found = class_by_any_label(self.curation, term)
            if found is None:
                raise
            return found

    def _sources_of(self, records: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        with self.catalog.session() as session:
            for start in range(0, len(records), BATCH):
                rows = session.execute(
                    select(RecordRow.iri, RecordRow.id, RecordRow.source).where(
                        RecordRow.iri.in_(records[start : start + BATCH])
                    )
                )
                found.update({iri: (id_, source) for iri, id_, source in rows})
        return found

    def _items(self, findings: list[Finding], kind: str) -> list[Item]:
        known = self._sources_of(sorted({f.record for f in findings}))
        items = []
        for finding in findings:
            record_id, source = known.get(finding.record, (None, None))
            items.append(Item(finding, kind, source, record_id))
        return items

    def warm(self) -> None:
        """Compute noise and silence of every class (the classes page counts them)."""
        with self._lock:
            if ("", "noise") in self._lists:
                return
            for kind in ("noise", "silence"):
                found = getattr(self.curation, kind)()
                items = self._items(found, kind)
                for cls in self.classes:
                    self._lists[cls.uri, kind] = [
                        i for i in items if i.finding.class_uri == cls.uri
                    ]
                self._lists["", kind] = items

    def items(self, class_uri: str, kind: str, needed: int | None = None) -> list[Item]:
        """The class's findings of one kind, best first. Search results are read as far as
        `needed` asks (at least SEARCH_FIRST, at most `[serve] search_limit`; all of them
        without `needed`), and read further when a later page needs more."""
        if kind not in KINDS and kind != SAMPLE:
            raise ConfigError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        if kind == SAMPLE:
            return self._sample(class_uri)
        if kind != "search":
            self.warm()
            return self._lists.get((class_uri, kind), [])
        most = self.settings.search_limit
        wanted = most if needed is None else min(most, max(SEARCH_FIRST, needed))
        with self._lock:
            known = self._lists.get((class_uri, kind))
            read = self._search_read.get(class_uri, 0)
            if known is None or (len(known) >= read and wanted > read):
                cls = self.curation.by_uri[class_uri]
                found = self.curation.search(cls, None, wanted)
                self._lists[class_uri, kind] = self._items(found, "search")
                self._search_read[class_uri] = wanted
            return self._lists[class_uri, kind]

    def _sample(self, class_uri: str) -> list[Item]:
        """A stratified random sample of the class's detections (`[serve] sample_size`, drawn
        once per model with a fixed seed, so every reviewer sees the same sample)."""
        from monalia.curation.review_stats import stratified_sample

        with self._lock:
            known = self._lists.get((class_uri, SAMPLE))
        if known is not None:
            return known
        detections = self.items(class_uri, "search")
        chosen = stratified_sample(
            detections, self.settings.sample_size, 5, seed=0, score=lambda i: i.finding.score
        )
        items = [Item(i.finding, SAMPLE, i.source, i.record_id) for i in chosen]
        with self._lock:
            return self._lists.setdefault((class_uri, SAMPLE), items)

    def complete(self, class_uri: str, kind: str) -> bool:
        """Whether the list holds every finding there is (search lists are read lazily)."""
        if kind != "search":
            return True
        known = self._lists.get((class_uri, kind), [])
        read = self._search_read.get(class_uri, 0)
        return len(known) < read or read >= self.settings.search_limit

    def sources(self) -> list[str]:
        if self._sources is None:
            with self.catalog.session() as session:
                self._sources = sorted(session.scalars(select(RecordRow.source).distinct()))
        return self._sources

    def _attach(self, items: list[Item]) -> dict[tuple[str, str], FindingReview]:
        current = self.log.current()
        for item in items:
            item.review = current.get((item.finding.record, item.finding.class_uri))
        return current

    def page(
        self,
        class_uri: str,
        kind: str,
        page: int = 1,
        per_page: int | None = None,
        source: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        reviewed: str = "open",
    ) -> Page:
        """One page of a class's findings of one kind, best first, after the filters."""
        if reviewed not in REVIEWED:
            raise ConfigError(f"unknown review filter {reviewed!r}: one of {', '.join(REVIEWED)}")
        per_page = per_page or self.settings.per_page
        filtered = source is not None or min_score is not None or max_score is not None
        needed = None
        if kind == "search" and not filtered and reviewed in ("open", "all"):
            # enough for this page, and for the decided findings the open list leaves out
            decided = sum(1 for key in self.log.current() if key[1] == class_uri)
            needed = page * per_page + 1 + (decided if reviewed == "open" else 0)
        items = self.items(class_uri, kind, needed)
        self._attach(items)
        counts = {status: 0 for status in REVIEWED}
        shown = []
        for item in items:
            hidden = item.review is not None and item.review.hides(kind)
            status = item.status if hidden else "open"
            counts[status] += 1
            counts["all"] += 1
            if reviewed == "open" and hidden:
                continue
            if reviewed not in ("open", "all") and status != reviewed:
                continue
            if source and item.source != source:
                continue
            score = item.finding.score
            if (min_score is not None and score < min_score) or (
                max_score is not None and score > max_score
            ):
                continue
            shown.append(item)
        pages = max(1, -(-len(shown) // per_page))
        page = min(max(1, page), pages)
        chosen = shown[(page - 1) * per_page : page * per_page]
        self.curation.describe([item.finding for item in chosen])
        self._add_images(chosen)
        complete = self.complete(class_uri, kind)
        return Page(chosen, len(shown), page, pages, per_page, counts, complete)

    def _add_images(self, items: list[Item]) -> None:
        """Each item's image as the catalog has it: its id (for thumbnails) and local copy."""
        urls = sorted({item.finding.image for item in items})
        rows: dict[tuple[int, str], tuple[int, str | None]] = {}
        with self.catalog.session() as session:
            for start in range(0, len(urls), BATCH):
                for id_, record_id, url, path in session.execute(
                    select(ImageRow.id, ImageRow.record_id, ImageRow.url, ImageRow.path).where(
                        ImageRow.url.in_(urls[start : start + BATCH])
                    )
                ):
                    rows[record_id, url] = (id_, path)
        for item in items:
            found = rows.get((item.record_id or -1, item.finding.image))
            if found is not None:
                item.images = [{"id": found[0], "local": self.local_path(found[1]) is not None}]

    def summary(self) -> list[dict[str, Any]]:
        """Per class: AP, thresholds, findings and how many are reviewed."""
        self.warm()
        current = self.log.current()
        metrics = (self.model.metrics or {}).get("per_class") or {}
        rows = []
        for index, cls in enumerate(self.classes):
            entry = {
                "index": index,
                "uri": cls.uri,
                "label": cls.label,
                "ap": (metrics.get(cls.uri) or {}).get("ap"),
                "threshold": cls.threshold,
                "noise_below": cls.noise_below,
                "silence_above": cls.silence_above,
            }
            for kind in ("noise", "silence"):
                items = self._lists.get((cls.uri, kind), [])
                reviewed = 0
                for item in items:
                    review = current.get((item.finding.record, item.finding.class_uri))
                    reviewed += review is not None and review.hides(kind)
                entry[kind] = len(items)
                entry[f"{kind}_reviewed"] = reviewed
            rows.append(entry)
        return rows

    def suggest(self, text: str, limit: int = 12) -> list[dict[str, str]]:
        """Class labels and the thesaurus terms they cover that contain `text`."""
        wanted = text.strip().lower()
        if not wanted:
            return []
        found: list[tuple[int, str, str]] = []
        for cls in self.classes:
            other = {text.lower() for text, _, _ in self.class_labels.get(cls.uri, [])}
            for term in sorted({cls.label.lower(), *cls.labels, *other}):
                if wanted in term:
                    found.append((0 if term.startswith(wanted) else 1, term, cls.label))
        found.sort()
        return [{"term": term, "class": label} for _, term, label in found[:limit]]

    # -- decisions ------------------------------------------------------------------------

    def correct_region(
        self,
        record_iri: str,
        class_uri: str,
        image_id: int,
        box: tuple[int, int, int, int],
        reviewer: str,
        comment: str | None = None,
    ):
        """Store the box a curator drew where the class is seen in one of the record's
        images (its pixels), as a "region" review decision."""
        from monalia.catalog.models import ImageRow, RecordRow
        from monalia.catalog.reviews import checked_region

        cls = self.curation.by_uri.get(class_uri)
        if cls is None:
            raise ConfigError(f"the model has no class {class_uri[:200]!r}")
        box = checked_region(box)
        with self.catalog.session() as session:
            image = session.execute(
                select(ImageRow.url, ImageRow.width, ImageRow.height)
                .join(RecordRow, RecordRow.id == ImageRow.record_id)
                .where(ImageRow.id == image_id, RecordRow.iri == record_iri)
            ).first()
        if image is None:
            raise ConfigError("the record has no such image")
        x, y, w, h = box
        if image.width and image.height and (x + w > image.width or y + h > image.height):
            raise ConfigError(f"the box goes past the image ({image.width}x{image.height} pixels)")
        return record_decision(
            self.catalog,
            record_iri=record_iri,
            class_uri=class_uri,
            class_label=cls.label,
            kind="region",
            decision="accept",
            reviewer=reviewer,
            comment=comment,
            model_id=self.model.id,
            model_name=self.model.name,
            image_url=image.url,
            region=box,
        )

    def decide(
        self,
        record_iri: str,
        class_uri: str,
        kind: str,
        decision: str,
        reviewer: str,
        comment: str | None = None,
    ) -> FindingReview:
        """Store a decision (or an undo) on a finding; return where its decisions stand.

        The record must be one of the catalog's, the class one of the model's (for a duplicate,
        the other record one of the catalog's): a decision on anything else would be
        published as a statement about nothing."""
        if not self._is_record(record_iri):
            raise ConfigError(f"no record {record_iri[:200]!r} in the catalog")
        cls = self.curation.by_uri.get(class_uri)
        if kind == "duplicate":
            if not self._is_record(class_uri):
                raise ConfigError(f"no record {class_uri[:200]!r} in the catalog")
        elif cls is None:
            raise ConfigError(f"the model has no class {class_uri[:200]!r}")
        if kind == "duplicate":
            if decision == "undo":
                undo_decision(self.catalog, record_iri, class_uri, reviewer, kind)
            else:
                record_decision(
                    self.catalog,
                    record_iri=record_iri,
                    class_uri=class_uri,
                    kind=kind,
                    decision=decision,
                    reviewer=reviewer,
                    comment=comment,
                )
        elif decision == "undo":
            undo_decision(self.catalog, record_iri, class_uri, reviewer, _stored_kind(kind))
        else:
            item = next(
                (i for i in self.items(class_uri, kind) if i.finding.record == record_iri), None
            )
            finding = item.finding if item is not None else None
            method = finding.method if finding is not None else None
            record_decision(
                self.catalog,
                record_iri=record_iri,
                class_uri=class_uri,
                class_label=cls.label,
                kind=_stored_kind(kind),
                decision=decision,
                reviewer=reviewer,
                comment=comment,
                model_id=self.model.id,
                model_name=self.model.name,
                score=finding.score if finding is not None else self._score(record_iri, cls),
                image_url=finding.image if finding is not None else None,
                method=SAMPLE if kind == SAMPLE else method,
                annotated=finding.annotated if finding is not None else None,
            )
        current = self.log.current()
        return current.get((record_iri, class_uri)) or FindingReview(record_iri, class_uri)

    def _is_record(self, iri: str) -> bool:
        try:
            check_iri(iri, "the record")
        except RecordError:
            return False
        with self.catalog.session() as session:
            return session.scalar(select(RecordRow.id).where(RecordRow.iri == iri)) is not None

    def _score(self, record_iri: str, cls: CurationClass) -> float | None:
        with self.catalog.session() as session:
            return session.scalar(
                select(func.max(PredictionRow.score))
                .join(ImageRow, ImageRow.id == PredictionRow.image_id)
                .join(RecordRow, RecordRow.id == ImageRow.record_id)
                .join(
                    ModelClassRow,
                    (ModelClassRow.model_id == PredictionRow.model_id)
                    & (ModelClassRow.class_index == PredictionRow.class_index),
                )
                .where(
                    RecordRow.iri == record_iri,
                    PredictionRow.model_id == self.model.id,
                    ModelClassRow.uri == cls.uri,
                )
            )


def _stored_kind(kind: str) -> str:
    """A decision on a sampled detection is a search decision made by the "sample" method."""
    return "search" if kind == SAMPLE else kind


__all__ = ["REVIEWED", "Decision", "Item", "Page", "Workbench"]
