"""The audit stage: image problems over the fetched images, dataset problems over a model's
dataset and out-of-sample scores (monalia.curation.audit), as one tracked run.

Counts: every fetched image is seen; one with a problem is `new`, a clean one `unchanged`, one
whose file cannot be read `failed` with the reason. The dataset checks add their findings to the
same images (a dataset member is a fetched image), so the counts stay those of the images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monalia.catalog.database import Catalog
from monalia.catalog.run_tracking import DONE, RunTracker
from monalia.curation.audit import (
    AuditOutcome,
    DatasetInputs,
    audit_dataset,
    audit_images,
    fetched_files,
    store_problems,
)
from monalia.errors import ConfigError, MonaliaError
from monalia.project import Project


@dataclass
class AuditRun:
    info: object | None = None
    images: AuditOutcome | None = None
    dataset: AuditOutcome | None = None
    model: str | None = None
    score_set: str | None = None  # the out-of-sample scores the dataset checks read
    notes: list[str] = field(default_factory=list)


def dataset_inputs(catalog: Catalog, project: Project, model_ref: str | None, say=None):
    """The model's dataset with its labels, out-of-sample scores and feature vectors; with
    the model's and the score set's names. None (and why) when there are no out-of-sample
    scores."""
    from sqlalchemy import select

    from monalia.catalog.lookups import find_model
    from monalia.catalog.models import ModelClassRow
    from monalia.catalog.orm_reader import reader_of
    from monalia.curation.confident_learning import newest_score_set
    from monalia.similarity.near_duplicates import embed_unseen, embedding, fetched_images

    try:
        model = find_model(catalog, model_ref or project.file.enrich.model, project.model_dataset)
    except MonaliaError as exc:  # no model yet, or none of that name
        if model_ref:
            raise
        return None, None, f"{exc}: the dataset checks need a model with out-of-sample scores"
    with catalog.session() as session:
        uris = list(
            session.scalars(
                select(ModelClassRow.uri)
                .where(ModelClassRow.model_id == model.id)
                .order_by(ModelClassRow.class_index)
            )
        )
    found = newest_score_set(reader_of(catalog), model, uris)
    if found is None:
        return (
            None,
            model,
            (
                f"model {model.name} has no out-of-sample scores: the dataset checks need them "
                "(`monalia train --folds 5`)"
            ),
        )
    members, scores, labels = found.images, found.scores, found.labels
    images = {ref.image_id: ref for ref in fetched_images(catalog)}
    vectors_of = embedding(catalog, project)
    wanted = [images[image] for image, *_ in members if image in images]
    embed_unseen(project, vectors_of, wanted, say=say)
    keys, matrix = vectors_of.store.load()
    position = {key: i for i, key in enumerate(keys)}
    kept, features = [], []
    for row, (image, *_rest) in enumerate(members):
        ref = images.get(image)
        at = position.get(ref.sha256) if ref is not None else None
        if at is None or np.isnan(scores[row]).any():
            continue  # not fetched, not readable, or not scored by the folds
        kept.append(row)
        features.append(matrix[at])
    inputs = DatasetInputs(
        [members[row][0] for row in kept],
        [images[members[row][0]].record_id for row in kept],
        uris,
        labels[kept],
        scores[kept],
        np.asarray(features, dtype=np.float32).reshape(len(kept), -1),
    )
    note = None
    if len(kept) < len(members):
        note = (
            f"{len(members) - len(kept)} of the dataset's {len(members)} images have no vector "
            "or no out-of-sample score: left out of the dataset checks"
        )
    return (inputs, found.name), model, note


def run_audit(
    catalog: Catalog,
    project: Project,
    images: bool = True,
    dataset: bool = True,
    model_ref: str | None = None,
    hooks=None,
    progress=None,
    say=None,
) -> AuditRun:
    """Run the chosen checks as one tracked run and store what they found."""
    section = project.file.audit
    image_checks = section.image_checks if images else []
    dataset_checks = section.dataset_checks if dataset else []
    if not image_checks and not dataset_checks:
        raise ConfigError("nothing to check: both the image and the dataset checks are off")
    files = fetched_files(catalog, project.data_dir)
    settings = {
        "image_checks": image_checks,
        "dataset_checks": dataset_checks,
        "thresholds": section.thresholds,
    }
    outcome = AuditRun()
    with RunTracker(
        catalog, "audit", "cleanvision", "fetched images", settings, hooks, exclusive="stage"
    ) as tracker:
        problems_in: set[int] = set()
        unreadable: dict[int, str] = {}
        if image_checks:
            found = audit_images(files, image_checks, section.thresholds, section.workers, progress)
            store_problems(catalog, found, tracker.id)
            outcome.images = found
            problems_in |= {p.image_id for p in found.problems}
            unreadable.update(dict(found.unreadable))
            outcome.notes += found.notes
        if dataset_checks:
            prepared, model, note = dataset_inputs(catalog, project, model_ref, say)
            outcome.model = model.name if model is not None else None
            if note:
                outcome.notes.append(note)
                tracker.event(note, level="info" if prepared else "warning")
            if prepared is not None:
                inputs, outcome.score_set = prepared
                found = audit_dataset(inputs, dataset_checks, section.thresholds)
                store_problems(catalog, found, tracker.id, model.dataset_id, model.id)
                outcome.dataset = found
                outcome.notes += found.notes
                problems_in |= {p.image_id for p in found.problems}
        seen = len(files)
        for image_id, reason in sorted(unreadable.items()):
            tracker.fail_item(f"image {image_id}", reason)
        failed = len(unreadable)
        with_problems = len(problems_in - set(unreadable))
        # fail_item counted the failed ones
        tracker.add(seen=seen, new=with_problems, unchanged=seen - with_problems - failed)
        message = f"{seen:,} images audited: {with_problems:,} with problems"
        if failed:
            message += f", {failed:,} unreadable"
        outcome.info = tracker.finish(DONE, message)
    return outcome
