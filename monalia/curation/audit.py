"""`monalia audit`: pictures that are not the object, and datasets with problems of their own.

Two kinds of checks, both by maintained libraries rather than rules of our own:

- **Image problems** over every fetched image, by cleanvision (cleanlab's image auditor): dark,
  light, blurry, low information (blank or near blank), odd aspect ratio, odd size, grayscale,
  exact and near duplicates. Files with the same content hash are checked once; two records that
  carry the same file are exact duplicates by their hash.
- **Dataset problems** over a dataset and a model's out-of-sample scores, by cleanlab's Datalab:
  outliers and near duplicates in the feature vectors, data that is not independent and
  identically distributed (`non_iid`), classes far rarer than the others (`class_imbalance`) and
  groups of similar images the model does worse on (`underperforming_group`). Datalab checks the
  first three on multi-label data directly; the last two are defined for one label per image, so
  imbalance is checked over the (image, class) annotations and underperforming groups one class
  against the rest.

Every run replaces the stored findings of the checks it ran (`audit_findings`); `monalia label`
can leave out images with chosen problems (`[dataset] exclude_problems`).
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select

from monalia.catalog.models import AuditFindingRow, ImageRow, RecordRow, utcnow
from monalia.catalog.reader import image_file
from monalia.curation.problem_kinds import IMAGE_CHECKS, KINDS, MEANING
from monalia.errors import ConfigError


def scope_of(kind: str) -> str:
    return "image" if kind in IMAGE_CHECKS else "dataset"


@dataclass
class Problem:
    """One image found with one problem; `score` is the library's quality score (0 is worst,
    1 is clean), `detail` what else it said (the duplicates it goes with, the class)."""

    image_id: int
    record_id: int
    kind: str
    score: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditOutcome:
    checked: int = 0  # images (or dataset members) looked at
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # image id, reason
    problems: list[Problem] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def images_with_problems(self) -> int:
        return len({p.image_id for p in self.problems})


def checked_kinds(names, allowed: tuple[str, ...], what: str) -> list[str]:
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ConfigError(f"unknown {what} check {unknown[0]!r}: one of {', '.join(allowed)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class FetchedImage:
    image_id: int
    record_id: int
    sha256: str
    path: Path


def fetched_files(catalog, data_dir: Path) -> list[FetchedImage]:
    """Every fetched image of a record not deleted, with its local file."""
    from monalia.similarity.near_duplicates import fetched_images

    found = []
    for image in fetched_images(catalog):
        path = image_file(data_dir, image.path)
        if path is not None:
            found.append(FetchedImage(image.image_id, image.record_id, image.sha256, path))
    return found


def _quiet_libraries() -> None:
    # cleanvision and Datalab draw progress bars and print summaries of their own; monalia's
    # progress and summary say what the run does
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", module="cleanvision")
    warnings.filterwarnings("ignore", module="cleanlab")


@contextmanager
def _progress_into(progress):
    """cleanvision's own progress bars, counted into monalia's progress instead (the first pass,
    the image properties, is the one that reads every file)."""
    import cleanvision.issue_managers.duplicate_issue_manager as duplicates
    import cleanvision.issue_managers.image_property_issue_manager as properties

    def counted(iterable=None, *args, **kwargs):
        for item in iterable:
            yield item
            if progress is not None and kwargs.get("desc") == "Computing scores":
                progress.advance(1)

    def silent(iterable=None, *args, **kwargs):
        return iterable

    kept = properties.tqdm, duplicates.tqdm
    properties.tqdm, duplicates.tqdm = counted, silent
    try:
        yield
    finally:
        properties.tqdm, duplicates.tqdm = kept


def audit_images(
    images: list[FetchedImage],
    checks: list[str],
    thresholds: dict[str, float],
    workers: int = 1,
    progress=None,
) -> AuditOutcome:
    """cleanvision's checks over the images' files (each distinct content once)."""
    _quiet_libraries()
    outcome = AuditOutcome(checks=list(checks))
    by_content: dict[str, list[FetchedImage]] = defaultdict(list)
    for image in images:
        by_content[image.sha256].append(image)
    files: dict[str, str] = {}
    for sha256, group in by_content.items():
        path = group[0].path
        if not path.is_file():
            for image in group:
                outcome.unreadable.append((image.image_id, f"the fetched file is missing: {path}"))
            continue
        files[sha256] = str(path)
    outcome.checked = len(images)
    if "exact_duplicates" in checks:
        for sha256, group in by_content.items():
            records = {image.record_id for image in group}
            if len(records) < 2 or sha256 not in files:
                continue
            for image in group:
                others = sorted(
                    other.record_id for other in group if other.record_id != image.record_id
                )
                outcome.problems.append(
                    Problem(
                        image.image_id,
                        image.record_id,
                        "exact_duplicates",
                        0.0,
                        {"records": others, "by": "content hash"},
                    )
                )
    library_checks = {
        kind: ({"threshold": thresholds[kind]} if kind in thresholds else {}) for kind in checks
    }
    if len(files) < 2 or not library_checks:
        if files and library_checks:
            outcome.notes.append("one distinct image: nothing to compare it with")
        return outcome
    from cleanvision import Imagelab

    keys = list(files)
    paths = [files[key] for key in keys]
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(len(paths))
    lab = Imagelab(filepaths=paths)
    with warnings.catch_warnings(), _progress_into(progress):
        warnings.simplefilter("ignore")
        lab.find_issues(issue_types=library_checks, n_jobs=max(1, workers), verbose=False)
    issues = lab.issues
    key_of = {path: key for key, path in zip(keys, paths, strict=True)}
    unread = set(paths) - {str(index) for index in issues.index}
    for path in sorted(unread):
        for image in by_content[key_of[path]]:
            outcome.unreadable.append((image.image_id, "cleanvision could not open the file"))
    duplicate_sets = {}
    for kind in ("exact_duplicates", "near_duplicates"):
        if kind in checks:
            for members in lab.info.get(kind, {}).get("sets", []):
                for member in members:
                    duplicate_sets[kind, str(member)] = [str(m) for m in members if m != member]
    for kind in checks:
        column = f"is_{kind}_issue"
        if column not in issues.columns:
            continue
        score_column = f"{kind}_score"
        for path in issues.index[issues[column].astype(bool)]:
            path = str(path)
            key = key_of.get(path)
            if key is None:
                continue
            score = float(issues.at[path, score_column]) if score_column in issues.columns else 0.0
            same = [
                key_of[other] for other in duplicate_sets.get((kind, path), []) if other in key_of
            ]
            for image in by_content[key]:
                detail: dict[str, Any] = {}
                if same:
                    detail["records"] = sorted(
                        {other.record_id for key2 in same for other in by_content[key2]}
                    )
                if kind == "exact_duplicates" and any(
                    p.kind == kind and p.image_id == image.image_id for p in outcome.problems
                ):
                    continue  # already found by its hash
                outcome.problems.append(
                    Problem(image.image_id, image.record_id, kind, round(score, 4), detail)
                )
    return outcome


@dataclass
class DatasetInputs:
    """A dataset's members with the labels they were given, their feature vectors and a
    model's out-of-sample scores (rows in the same order)."""

    image_ids: list[int]
    record_ids: list[int]
    class_uris: list[str]
    labels: np.ndarray  # members x classes, 0/1
    scores: np.ndarray  # members x classes, out-of-sample
    features: np.ndarray  # members x dimensions


def audit_dataset(
    inputs: DatasetInputs, checks: list[str], thresholds: dict[str, float]
) -> AuditOutcome:
    """Datalab's checks over a dataset (see the module's text for the multi-label forms)."""
    _quiet_libraries()
    from cleanlab import Datalab

    outcome = AuditOutcome(checked=len(inputs.image_ids), checks=list(checks))
    n = len(inputs.image_ids)
    if n < 10:
        outcome.notes.append(f"{n} images: too few for the dataset checks")
        return outcome

    def settings(kind: str) -> dict[str, Any]:
        return {"threshold": thresholds[kind]} if kind in thresholds else {}

    def add(kind: str, issues, detail_of=None) -> None:
        column, score_column = f"is_{kind}_issue", f"{kind}_score"
        if column not in issues.columns:
            return
        for row in np.flatnonzero(issues[column].to_numpy(dtype=bool)):
            detail = detail_of(int(row)) if detail_of else {}
            outcome.problems.append(
                Problem(
                    inputs.image_ids[row],
                    inputs.record_ids[row],
                    kind,
                    round(float(issues[score_column].iloc[row]), 4),
                    detail,
                )
            )

    features = np.ascontiguousarray(inputs.features, dtype=np.float32)
    multilabel = [k for k in ("outlier", "near_duplicate", "non_iid") if k in checks]
    if multilabel:
        given = [list(np.flatnonzero(row)) for row in inputs.labels]
        lab = Datalab(data={"label": given}, label_name="label", task="multilabel", verbosity=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lab.find_issues(
                features=features,
                pred_probs=inputs.scores,
                issue_types={kind: settings(kind) for kind in multilabel},
            )
        issues = lab.get_issues()
        sets = {}
        if "near_duplicate" in multilabel:
            info = lab.get_info("near_duplicate")
            sets = info.get("near_duplicate_sets", [])

        def near_detail(row: int) -> dict[str, Any]:
            if not len(sets):
                return {}
            return {"records": sorted(inputs.record_ids[int(m)] for m in sets[row])}

        for kind in multilabel:
            add(kind, issues, near_detail if kind == "near_duplicate" else None)
    if "class_imbalance" in checks:
        _class_imbalance(inputs, settings("class_imbalance"), outcome)
    if "underperforming_group" in checks:
        _underperforming_groups(inputs, features, settings("underperforming_group"), outcome)
    return outcome


def _class_imbalance(inputs: DatasetInputs, settings: dict, outcome: AuditOutcome) -> None:
    """Datalab's class-imbalance check over every (image, class) annotation: an image carrying
    a class whose share is far below an even share is found, once, for its rarest class."""
    from cleanlab import Datalab

    rows, columns = np.nonzero(inputs.labels)
    present = sorted(set(columns.tolist()))
    if len(present) < 2:
        return
    position = {column: i for i, column in enumerate(present)}
    lab = Datalab(data={"label": [position[c] for c in columns]}, label_name="label", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab.find_issues(issue_types={"class_imbalance": settings})
    issues = lab.get_issues("class_imbalance")
    flagged = issues["is_class_imbalance_issue"].to_numpy(dtype=bool)
    scores = issues["class_imbalance_score"].to_numpy()
    best: dict[int, tuple[float, int]] = {}
    for i in np.flatnonzero(flagged):
        row, column = int(rows[i]), int(columns[i])
        if row not in best or scores[i] < best[row][0]:
            best[row] = (float(scores[i]), column)
    for row, (score, column) in sorted(best.items()):
        outcome.problems.append(
            Problem(
                inputs.image_ids[row],
                inputs.record_ids[row],
                "class_imbalance",
                round(score, 4),
                {"class": inputs.class_uris[column]},
            )
        )


def _underperforming_groups(
    inputs: DatasetInputs, features: np.ndarray, settings: dict, outcome: AuditOutcome
) -> None:
    """Datalab's underperforming-group check one class against the rest, over one clustering of
    the feature vectors (made by the first class's check, reused by the others)."""
    from cleanlab import Datalab

    cluster_ids = None
    found: dict[int, tuple[float, str]] = {}
    for column, uri in enumerate(inputs.class_uris):
        truth = inputs.labels[:, column].astype(int)
        if truth.sum() < 2 or truth.sum() > len(truth) - 2:
            continue
        probability = np.clip(inputs.scores[:, column], 0.0, 1.0)
        pred_probs = np.stack([1 - probability, probability], axis=1)
        lab = Datalab(data={"label": truth}, label_name="label", verbosity=0)
        options = dict(settings)
        if cluster_ids is not None:
            options["cluster_ids"] = cluster_ids
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                lab.find_issues(
                    features=None if cluster_ids is not None else features,
                    pred_probs=pred_probs,
                    issue_types={"underperforming_group": options},
                )
            except ValueError as exc:  # no cluster large enough: nothing to compare
                outcome.notes.append(f"underperforming groups: {exc}")
                return
        if "underperforming_group" not in lab.issue_summary["issue_type"].tolist():
            continue
        info = lab.get_info("underperforming_group")
        if cluster_ids is None and info.get("cluster_ids") is not None:
            cluster_ids = np.asarray(info["cluster_ids"])
        issues = lab.get_issues("underperforming_group")
        flagged = issues["is_underperforming_group_issue"].to_numpy(dtype=bool)
        scores = issues["underperforming_group_score"].to_numpy()
        for row in np.flatnonzero(flagged):
            if row not in found or scores[row] < found[row][0]:
                found[int(row)] = (float(scores[row]), uri)
    for row, (score, uri) in sorted(found.items()):
        outcome.problems.append(
            Problem(
                inputs.image_ids[row],
                inputs.record_ids[row],
                "underperforming_group",
                round(score, 4),
                {"class": uri},
            )
        )


def store_problems(
    catalog,
    outcome: AuditOutcome,
    run_id: int | None,
    dataset_id: int | None = None,
    model_id: int | None = None,
) -> None:
    """Replace the stored findings of the checks this run made with its own."""
    now = utcnow()
    with catalog.session() as session:
        if outcome.checks:
            session.execute(delete(AuditFindingRow).where(AuditFindingRow.kind.in_(outcome.checks)))
        rows = [
            {
                "image_id": p.image_id,
                "record_id": p.record_id,
                "kind": p.kind,
                "scope": scope_of(p.kind),
                "score": p.score,
                "detail": p.detail or None,
                "dataset_id": dataset_id if scope_of(p.kind) == "dataset" else None,
                "model_id": model_id if scope_of(p.kind) == "dataset" else None,
                "run_id": run_id,
                "found_at": now,
            }
            for p in outcome.problems
        ]
        for start in range(0, len(rows), 1000):
            session.execute(insert(AuditFindingRow), rows[start : start + 1000])
        session.commit()


@dataclass
class StoredProblem:
    image_id: int
    record_id: int
    record: str
    reference: str
    title: str | None
    kind: str
    scope: str
    score: float
    detail: dict[str, Any]
    image: str
    image_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "reference": self.reference,
            "title": self.title,
            "kind": self.kind,
            "scope": self.scope,
            "score": self.score,
            "meaning": MEANING.get(self.kind, self.kind),
            "image": self.image,
            "image_path": self.image_path,
            "detail": self.detail,
        }


# the fields of an audit finding in JSON and CSV, in this order
PROBLEM_FIELDS = [
    "record",
    "reference",
    "title",
    "kind",
    "scope",
    "score",
    "meaning",
    "image",
    "image_path",
    "detail",
]


def stored_problems(
    catalog, kinds: list[str] | None = None, data_dir: Path | None = None
) -> list[StoredProblem]:
    """The stored findings (of `kinds`), worst score first within each kind."""
    query = (
        select(
            AuditFindingRow.image_id,
            AuditFindingRow.record_id,
            RecordRow.iri,
            RecordRow.source_id,
            RecordRow.title,
            AuditFindingRow.kind,
            AuditFindingRow.scope,
            AuditFindingRow.score,
            AuditFindingRow.detail,
            ImageRow.url,
            ImageRow.path,
        )
        .join(RecordRow, RecordRow.id == AuditFindingRow.record_id)
        .join(ImageRow, ImageRow.id == AuditFindingRow.image_id)
    )
    if kinds:
        query = query.where(AuditFindingRow.kind.in_(kinds))
    with catalog.session() as session:
        rows = session.execute(query).all()
    order = {kind: i for i, kind in enumerate(KINDS)}
    found = []
    for row in rows:
        path = image_file(data_dir, row.path) if data_dir is not None else None
        found.append(
            StoredProblem(
                row.image_id,
                row.record_id,
                row.iri,
                row.source_id,
                row.title,
                row.kind,
                row.scope,
                float(row.score),
                row.detail or {},
                row.url,
                str(path) if path is not None and path.is_file() else None,
            )
        )
    found.sort(key=lambda p: (order.get(p.kind, 99), p.score, p.record))
    return found


def problem_counts(catalog) -> dict[str, int]:
    """How many images each kind of problem was found in."""
    from sqlalchemy import func

    with catalog.session() as session:
        rows = session.execute(
            select(
                AuditFindingRow.kind, func.count(func.distinct(AuditFindingRow.image_id))
            ).group_by(AuditFindingRow.kind)
        ).all()
    return {kind: int(count) for kind, count in rows}


def images_with_problems(catalog, kinds: list[str]) -> dict[int, list[str]]:
    """Image id -> the chosen kinds of problem found in it."""
    if not kinds:
        return {}
    found: dict[int, list[str]] = defaultdict(list)
    with catalog.session() as session:
        for image_id, kind in session.execute(
            select(AuditFindingRow.image_id, AuditFindingRow.kind).where(
                AuditFindingRow.kind.in_(kinds)
            )
        ):
            if kind not in found[image_id]:
                found[image_id].append(kind)
    return dict(found)
