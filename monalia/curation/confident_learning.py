"""Noise and silence by confident learning (Northcutt et al.) over out-of-sample scores.

Per class, cleanlab compares each labelled image's given annotation with its out-of-sample
score: it estimates the joint distribution of given and true labels from per-class confident
thresholds (the mean score of the images annotated with the class), and flags as label issues
the images whose annotation that distribution says is most likely wrong (pruned by the
estimated noise rate). A flagged image annotated with the class is *noise* (the annotation is
suspect); a flagged image without it is *silence* (the annotation is missing). Both are ranked
by cleanlab's self-confidence: the score of the given annotation, lowest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClassIssues:
    """One class's label issues: row indices, most suspect first, with their scores."""

    noise: list[int]
    silence: list[int]


def find_issues(labels: np.ndarray, scores: np.ndarray) -> list[ClassIssues]:
    """Per class (column), the rows whose annotation confident learning flags.

    `labels` is 0/1 (images x classes), `scores` the out-of-sample probabilities, same shape.
    A class without both annotated and unannotated images has no issue.
    """
    import warnings

    from cleanlab.multilabel_classification.filter import find_multilabel_issues_per_class

    labels = np.asarray(labels, dtype=int)
    scores = np.clip(np.asarray(scores, dtype=float), 1e-6, 1 - 1e-6)
    count, classes = labels.shape
    found = [ClassIssues([], []) for _ in range(classes)]
    if count == 0:
        return found
    # cleanlab wants every class seen, annotated and not: the others are left out of its call
    usable = [c for c in range(classes) if 0 < labels[:, c].sum() < count]
    if not usable:
        return found
    given = [[k for k, c in enumerate(usable) if labels[row, c]] for row in range(count)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its notes on small classes are for notebooks
        # n_jobs=1: cleanlab's default forks a process pool, and a fork taken while another
        # thread holds a lock (the workbench's server threads, a test's local servers) can
        # hang the pool for good; per class the work is a few array passes
        masks = find_multilabel_issues_per_class(
            labels=given, pred_probs=scores[:, usable], low_memory=False, n_jobs=1
        )
    masks = np.asarray(masks, dtype=bool)  # images x the classes it was given
    for k, column in enumerate(usable):
        flagged = np.flatnonzero(masks[:, k])
        annotated = labels[flagged, column] == 1
        noise = flagged[annotated]
        silence = flagged[~annotated]
        found[column] = ClassIssues(
            # self-confidence: the score of the given annotation, lowest first
            noise=[int(i) for i in noise[np.argsort(scores[noise, column], kind="stable")]],
            silence=[int(i) for i in silence[np.argsort(-scores[silence, column], kind="stable")]],
        )
    return found


def ranking(labels: np.ndarray, scores: np.ndarray, issues: list[ClassIssues], kind: str):
    """Every (row, class) pair that could be a `kind` finding, in the confident method's order:
    the flagged ones first (as ranked), then the others by self-confidence."""
    labels = np.asarray(labels, dtype=int)
    order: list[tuple[int, int]] = []
    for column, entry in enumerate(issues):
        for row in entry.noise if kind == "noise" else entry.silence:
            order.append((row, column))
    flagged = set(order)
    ranked_flagged = sorted(
        order,
        key=lambda pair: scores[pair] if kind == "noise" else -scores[pair],
    )
    wanted = 1 if kind == "noise" else 0
    rest = [
        (row, column)
        for row, column in zip(*np.nonzero(labels == wanted), strict=True)
        if (int(row), int(column)) not in flagged
    ]
    rest.sort(key=lambda pair: scores[pair] if kind == "noise" else -scores[pair])
    return ranked_flagged + [(int(r), int(c)) for r, c in rest]


@dataclass
class ScoreSet:
    """A model's newest out-of-sample scores over its dataset, one row per dataset image (in
    the dataset's order): `images` as `dataset_images` gives them, `scores` NaN where the folds
    could not read an image, `labels` 0/1 as the dataset gave them."""

    name: str
    images: list[tuple[int, str, str, list[str]]]  # image id, record IRI, URL, class URIs
    scores: np.ndarray
    labels: np.ndarray


def newest_score_set(reader, model, class_uris: list[str]) -> ScoreSet | None:
    """The newest out-of-sample score set made for `model` (`monalia train --folds K`) over
    `class_uris`, read through a catalog reader; None without one."""
    found = [entry for entry in reader.score_sets() if entry[2].get("model") == model.name]
    if not found or model.dataset_id is None:
        return None
    set_id, set_name, _ = found[0]
    return read_score_set(reader, set_id, set_name, model.dataset_id, class_uris)


def read_score_set(
    reader, set_id: int, set_name: str, dataset_id: int, class_uris: list[str]
) -> ScoreSet:
    """A set of out-of-sample scores over its dataset's images, in the dataset's order."""
    images = reader.dataset_images(dataset_id)
    row_of = {image: row for row, (image, *_rest) in enumerate(images)}
    column_of = {uri: column for column, uri in enumerate(class_uris)}
    scores = np.full((len(images), len(class_uris)), np.nan)
    for image, uri, score in reader.set_scores(set_id):
        row, column = row_of.get(image), column_of.get(uri)
        if row is not None and column is not None:
            scores[row, column] = score
    labels = np.zeros(scores.shape, dtype=int)
    for row, (_image, _iri, _url, given) in enumerate(images):
        for uri in given:
            if uri in column_of:
                labels[row, column_of[uri]] = 1
    return ScoreSet(set_name, images, scores, labels)


@dataclass(frozen=True)
class IssueRow:
    """One finding of confident learning, as the catalog stores it (`confident_findings`)."""

    kind: str  # "noise" or "silence"
    class_uri: str
    image_id: int
    record: str
    url: str
    rank: int  # within the class and kind, most suspect first
    score: float


def issue_rows(found: ScoreSet, class_uris: list[str]) -> list[IssueRow]:
    """Every label issue of a score set, class by class, noise then silence, most suspect
    first; images the folds could not read (no scores) are left out."""
    scored = ~np.isnan(found.scores).any(axis=1)
    kept = np.flatnonzero(scored)
    issues = find_issues(found.labels[kept], found.scores[kept])
    rows = []
    for kind in ("noise", "silence"):
        for column, entry in enumerate(issues):
            for rank, index in enumerate(entry.noise if kind == "noise" else entry.silence):
                row = int(kept[index])
                image, record, url, _given = found.images[row]
                rows.append(
                    IssueRow(
                        kind,
                        class_uris[column],
                        int(image),
                        record,
                        url,
                        rank,
                        float(found.scores[row, column]),
                    )
                )
    return rows
