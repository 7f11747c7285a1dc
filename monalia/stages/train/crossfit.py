"""Out-of-sample scores: K models, each trained without one fold of the dataset (cross-fitting).

A model that trained on a wrong annotation has partly learnt it, so the annotations it should
question are those it scores most confidently as right. `monalia train --folds K` scores every
labelled image of a dataset with a model that never saw it: the dataset's images (all splits)
are drawn into K folds like the dataset's own split (multi-label stratification with the
dataset's seed; one image per record, so a record's images stay together), fold k's model
trains on the other folds (the dataset's validation images among them stay its validation), and
it scores fold k. The scores are stored as a prediction set of their own, registered beside the
models as ``MODEL-oosK`` with a card that names the main model, the fold models and the folds.

Resumable: a fold whose images all have their scores is done; a fold killed mid-training resumes
from its checkpoint; each fold's scores are written in one transaction, so a kill leaves every
image with all of its scores or none.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from monalia.api.trainer import DatasetSpec, LoadOptions, Sample, TrainOptions, write_model_card
from monalia.catalog.database import Catalog
from monalia.catalog.lookups import find_model
from monalia.catalog.models import DatasetRow, ModelRow, PredictionRow, ScoredImageRow, utcnow
from monalia.catalog.queries import image_file
from monalia.catalog.reader import SCORE_SET_KIND, is_score_set, score_set_name
from monalia.catalog.run_tracking import DONE, RunInfo, RunTracker
from monalia.errors import MonaliaError
from monalia.project import Project
from monalia.stages.label.datasets import iter_members, stratified_split
from monalia.stages.train import register_model

MIN_FOLDS, MAX_FOLDS = 2, 20


@dataclass
class Member:
    sample: Sample
    image_id: int
    record_id: int
    split: str


@dataclass
class CrossfitOutcome:
    run: RunInfo
    name: str
    model_id: int
    folds: list[dict[str, Any]] = field(default_factory=list)


def _members(catalog: Catalog, dataset: DatasetRow, data_dir: Path, tracker) -> list[Member]:
    """The dataset's images on disk; the others are failed items of the run."""
    members = []
    for row in iter_members(catalog, dataset.id):
        path = image_file(data_dir, row["path"])
        if path is None or not path.is_file():
            tracker.fail_item(row["url"], "image not on disk (run `monalia images`)")
            continue
        members.append(
            Member(
                Sample(path, tuple(row["labels"]), row["sha256"]),
                row["image_id"],
                row["record_id"],
                row["split"],
            )
        )
    return members


def draw_folds(members: list[Member], uris: list[str], folds: int, seed: int) -> np.ndarray:
    """Each member's fold, drawn like the dataset's split: stratified on the labels."""
    column = {uri: index for index, uri in enumerate(uris)}
    matrix = np.zeros((len(members), len(uris)), dtype=np.int8)
    for row, member in enumerate(members):
        for uri in member.sample.labels:
            if uri in column:
                matrix[row, column[uri]] = 1
    return stratified_split(matrix, tuple([1.0 / folds] * folds), seed)


def fold_spec(
    dataset: DatasetRow, members: list[Member], assigned: np.ndarray, draw: str, fold: int
):
    """Fold `fold`'s model: trains on the other folds, validates on their validation images,
    is tested on (and scores) its own fold. Its hash covers the fold and the draw (the hash of
    `assigned`), so a checkpoint of another fold or of another draw is never resumed."""
    splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for member, where in zip(members, assigned, strict=True):
        if where == fold:
            splits["test"].append(member.sample)
        elif member.split == "val":
            splits["val"].append(member.sample)
        else:
            splits["train"].append(member.sample)
    classes = [{"uri": entry["uri"], "label": entry["label"]} for entry in dataset.classes]
    digest = hashlib.sha256(f"{dataset.hash} {draw} {fold}".encode()).hexdigest()
    return DatasetSpec(f"{dataset.name}-fold{fold + 1}", digest, classes, splits)


def _scored_images(catalog: Catalog, set_id: int) -> set[int]:
    with catalog.session() as session:
        return set(
            session.scalars(
                select(ScoredImageRow.image_id).where(ScoredImageRow.model_id == set_id)
            )
        )


def write_fold_scores(
    catalog: Catalog,
    set_id: int,
    members: list[Member],
    scores: np.ndarray,
    indices: np.ndarray,
    uris: list[str],
    run_id: int,
    tracker=None,
) -> None:
    """One fold's scores, in one transaction: every image has all its classes or none, and the
    run's counts (`tracker`) are written with them, so a kill leaves them true."""
    from monalia.catalog.bulk import prepare_model, write_scores

    chosen: dict[int, int] = {}  # image id -> its row in `scores` (an image is scored once)
    for row, index in enumerate(indices):
        chosen.setdefault(members[int(index)].image_id, row)
    rows = list(chosen.values())
    picked = [members[int(indices[row])] for row in rows]
    table = prepare_model(catalog.engine, set_id, uris)
    with catalog.session() as session:
        write_scores(
            session,
            table,
            set_id,
            [member.image_id for member in picked],
            [member.record_id for member in picked],
            [member.sample.key for member in picked],
            np.asarray(scores)[rows],
            run_id,
            utcnow(),
        )
        if tracker is not None:
            tracker.flush(session)


def crossfit(
    catalog: Catalog,
    project: Project,
    folds: int,
    hooks=None,
    model_ref: str | None = None,
    options: TrainOptions | None = None,
    retrain: bool = False,
    device: str = "auto",
) -> CrossfitOutcome:
    """Out-of-sample scores of every image of a model's dataset, from `folds` fold models."""
    if not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise MonaliaError(f"--folds must be between {MIN_FOLDS} and {MAX_FOLDS}, not {folds}")
    options = options or TrainOptions()
    main, dataset = model_and_dataset(catalog, model_ref, project.model_dataset)
    trainer = fold_trainer(project, main)
    name = score_set_name(main.name, folds)
    relative = Path("models") / name
    folder = project.data_dir / relative
    uris = [entry["uri"] for entry in dataset.classes]
    seed = int((dataset.settings or {}).get("seed", 0))
    settings = {"model": main.name, "folds": folds, "seed": seed, "dataset": dataset.hash}
    with RunTracker(catalog, "train", trainer.name, name, settings, hooks) as tracker:
        members = _members(catalog, dataset, project.data_dir, tracker)
        tracker.add(seen=len(members) + tracker.counts["failed"])
        if len(members) < folds:
            raise MonaliaError(
                f"dataset {dataset.name} has {len(members)} images on disk: too few for "
                f"{folds} folds"
            )
        assigned = draw_folds(members, uris, folds, seed)
        card = score_set_card(name, main, dataset, trainer)
        folder.mkdir(parents=True, exist_ok=True)
        draw = _assignment_hash(members, assigned)
        if _previous_card(catalog, name).get("fold_assignment_hash") not in (None, draw):
            retrain = True  # the dataset's images changed: the old folds mean nothing now
        card["fold_assignment_hash"] = draw
        set_id = register_model(catalog, card, name, main.trainer, dataset, relative, tracker.id)
        if retrain:
            forget_old_draw(catalog, set_id, folder)
        done = _scored_images(catalog, set_id)
        pending = []
        for fold in range(folds):
            held = [index for index, where in enumerate(assigned) if where == fold]
            fold_dir = folder / f"fold-{fold + 1}"
            if all(members[index].image_id in done for index in held):
                tracker.add(unchanged=len(held))
                entry = {"fold": fold + 1, "images": len(held), "folder": fold_dir.name}
                card["folds"].append({**entry, **_fold_summary(fold_dir)})
                options.say(f"fold {fold + 1}/{folds}: already scored")
                continue
            spec = fold_spec(dataset, members, assigned, draw, fold)
            pending.append(FoldJob(fold, held, spec, fold_dir))
        results = train_folds(project, trainer, pending, members, options, device)
        for job, fold_card, scores, indices, unreadable in results:
            for path in unreadable:
                tracker.fail_item(path, "image could not be decoded")
            tracker.add(new=len(indices))
            write_fold_scores(
                catalog,
                set_id,
                members,
                scores,
                np.array(indices, dtype=int),
                uris,
                tracker.id,
                tracker,
            )
            entry = {"fold": job.fold + 1, "images": len(job.held), "folder": job.folder.name}
            card["folds"].append({**entry, **_fold_summary(job.folder, fold_card)})
            options.say(f"fold {job.fold + 1}/{folds}: {len(indices)} images scored")
        card["confident_findings"] = store_confident_findings(
            catalog, set_id, name, dataset.id, uris
        )
        options.say(
            f"confident learning: {card['confident_findings']['noise']} suspect and "
            f"{card['confident_findings']['silence']} missing annotations stored"
        )
        finish_card(catalog, card, set_id, folder)
        set_id = register_model(catalog, card, name, main.trainer, dataset, relative, tracker.id)
        maps = [f["test_map"] for f in card["folds"] if f.get("test_map") is not None]
        mean = f", mean fold mAP {sum(maps) / len(maps):.3f}" if maps else ""
        run = tracker.finish(
            DONE, f"{name}: out-of-sample scores of {card['scored_images']} images{mean}"
        )
    return CrossfitOutcome(run, name, set_id, card["folds"])


def store_confident_findings(
    catalog: Catalog, set_id: int, name: str, dataset_id: int, uris: list[str]
) -> dict[str, int]:
    """Confident learning over the set's scores, once, its findings stored in place of any
    earlier ones: the reports and the workbench only read them. How many of each kind."""
    from monalia.catalog.models import ConfidentFindingRow
    from monalia.catalog.orm_reader import OrmReader
    from monalia.curation.confident_learning import issue_rows, read_score_set

    rows = issue_rows(read_score_set(OrmReader(catalog), set_id, name, dataset_id, uris), uris)
    with catalog.session() as session:
        session.execute(
            delete(ConfidentFindingRow).where(ConfidentFindingRow.score_set_id == set_id)
        )
        if rows:
            session.execute(
                ConfidentFindingRow.__table__.insert(),
                [
                    {
                        "score_set_id": set_id,
                        "kind": row.kind,
                        "class_uri": row.class_uri,
                        "image_id": row.image_id,
                        "rank": row.rank,
                        "score": row.score,
                    }
                    for row in rows
                ],
            )
    return {kind: sum(row.kind == kind for row in rows) for kind in ("noise", "silence")}


def model_and_dataset(
    catalog: Catalog, model_ref: str | None, dataset_name: str | None = None
) -> tuple[ModelRow, DatasetRow]:
    """The model whose folds to train (not a set of scores) and the dataset it learned from."""
    main = find_model(catalog, model_ref, dataset_name)
    if is_score_set(main.card):
        raise MonaliaError(f"{main.name} is a set of out-of-sample scores, not a model")
    with catalog.session() as session:
        dataset = session.get(DatasetRow, main.dataset_id) if main.dataset_id else None
        if dataset is None:
            raise MonaliaError(f"model {main.name} has no dataset in this catalog")
        session.expunge(dataset)
    return main, dataset


def fold_trainer(project: Project, main: ModelRow):
    """A trainer for the folds: it learns as the model did (its settings, whatever the project
    file says today) and runs as the project says (device, workers, caches)."""
    if project.trainer is None or project.trainer.info.name != main.trainer:
        raise MonaliaError(
            f"model {main.name} was made by trainer {main.trainer}: the project's [trainer] "
            "must be that plugin to train its folds"
        )
    instance = project.trainer
    trainer = instance.create()
    recorded = (main.card or {}).get("settings")
    if recorded:
        runtime = set(type(trainer).runtime_settings)
        today = trainer.describe_settings()
        merged = {key: today[key] if key in runtime else value for key, value in recorded.items()}
        trainer = instance.info.cls(
            settings=instance.info.cls.Settings(**merged), context=instance.context
        )
    return trainer


def score_set_card(name: str, main: ModelRow, dataset: DatasetRow, trainer) -> dict[str, Any]:
    """The card of a set of out-of-sample scores, before its folds are filled in."""
    return {
        "kind": SCORE_SET_KIND,
        "name": name,
        "model": main.name,
        "trainer": trainer.name,
        "backbone": main.backbone,
        "dataset": {"name": dataset.name, "hash": dataset.hash},
        "classes": [dict(entry) for entry in main.classes],
        "thresholds": main.thresholds,
        "metrics": {},
        "folds": [],
        "fold_of": "stratified on the labels with the dataset's seed, one image per record",
        "settings": trainer.describe_settings(),
    }


def _previous_card(catalog: Catalog, name: str) -> dict[str, Any]:
    with catalog.session() as session:
        existing = session.scalar(select(ModelRow).where(ModelRow.name == name))
        return dict(existing.card or {}) if existing is not None else {}


def train_folds(project: Project, trainer, pending, members, options: TrainOptions, device: str):
    """Train and score the pending folds: side by side on a Ray cluster with GPUs enough, else
    one after the other here. Yields each fold's results as it finishes."""
    if pending and parallel_folds(project, len(pending), options):
        from monalia.executors.ray_executor import train_folds_on_ray

        return train_folds_on_ray(project, trainer, pending, members, options, device, train_fold)
    return (
        train_fold(trainer, job, members, options, LoadOptions(device, cache_dir=options.cache_dir))
        for job in pending
    )


def forget_old_draw(catalog: Catalog, set_id: int, folder: Path) -> None:
    """The dataset's images changed since the folds were drawn: their scores and checkpoints
    mean nothing now."""
    with catalog.session() as session:
        for row in (PredictionRow, ScoredImageRow):
            session.execute(delete(row).where(row.model_id == set_id))
    for fold_dir in folder.glob("fold-*"):
        shutil.rmtree(fold_dir)


def finish_card(catalog: Catalog, card: dict[str, Any], set_id: int, folder: Path) -> None:
    """The card completed with what was scored, written beside the folds."""
    card["folds"].sort(key=lambda entry: entry["fold"])
    card["scored_images"] = len(_scored_images(catalog, set_id))
    card["created_at"] = utcnow().isoformat(timespec="seconds")
    write_model_card(folder, card)


@dataclass
class FoldJob:
    """One fold to train and score: its members' indices, its dataset, its folder."""

    fold: int
    held: list[int]
    spec: DatasetSpec
    folder: Path


def train_fold(trainer, job: FoldJob, members: list[Member], options: TrainOptions, load):
    """Train fold `job.fold`'s model (resuming from its checkpoint) and score its own images:
    (job, the fold model's card, scores in the dataset's class order, member indices, paths
    that could not be decoded)."""
    from monalia.learning.evaluation import score_samples

    options.say(f"fold {job.fold + 1}: training without its {len(job.held)} images")
    fold_card = trainer.train(job.spec, job.folder, options)
    predictor = trainer.scorer(job.folder, load)
    samples = [members[index].sample for index in job.held]
    if options.progress is not None:
        with options.progress(f"score fold {job.fold + 1}", len(samples), "images") as bar:
            scored = score_samples(predictor, samples, bar)
    else:
        scored = score_samples(predictor, samples)
    uris = [entry["uri"] for entry in job.spec.classes]
    columns = [list(predictor.classes).index(uri) for uri in uris]
    indices = [job.held[int(index)] for index in scored.indices]
    unreadable = [str(samples[index].path) for index in scored.unreadable]
    return job, fold_card, np.asarray(scored.scores)[:, columns], indices, unreadable


def parallel_folds(project: Project, pending: int, options: TrainOptions) -> bool:
    """Whether the folds train side by side: on the Ray executor, when its cluster has a GPU
    for each of at least two folds (on CPUs they would only fight over the same cores)."""
    if project.file.executor.kind != "ray" or pending < 2:
        return False
    from monalia.executors.ray_executor import cluster_resources, connect

    ray = connect(project.file.executor)
    _cpus, gpus = cluster_resources(ray)
    if gpus < 2:
        options.say(f"the Ray cluster has {gpus} GPU(s): the folds train one after another")
        return False
    options.say(f"{min(gpus, pending)} folds train at a time, one per GPU of the Ray cluster")
    return True


def _assignment_hash(members: list[Member], assigned: np.ndarray) -> str:
    text = ",".join(
        f"{member.image_id}:{int(where)}" for member, where in zip(members, assigned, strict=True)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fold_summary(fold_dir: Path, card: dict[str, Any] | None = None) -> dict[str, Any]:
    if card is None:
        path = fold_dir / "model_card.json"
        if not path.is_file():
            return {}
        card = json.loads(path.read_text(encoding="utf-8"))
    metrics = card.get("metrics") or {}
    return {
        "test_map": (metrics.get("test") or {}).get("map"),
        "calibration": (card.get("calibration") or {}).get("method"),
    }


def score_set_of(catalog: Catalog, model_name: str) -> ModelRow | None:
    """The newest set of out-of-sample scores made for a model, or None."""
    with catalog.session() as session:
        rows = session.scalars(
            select(ModelRow)
            .where(ModelRow.name.like(f"{model_name}-oos%"))
            .order_by(ModelRow.id.desc())
        ).all()
        for row in rows:
            if is_score_set(row.card) and row.card.get("model") == model_name:
                session.expunge(row)
                return row
    return None
