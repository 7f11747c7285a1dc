"""The train stage: a catalog dataset through the project's trainer into a registered model.

A model's name comes from its dataset and the settings that decide what it learns, so training
the same dataset with the same settings again finds the model already made ("unchanged"), and a
training that was killed resumes from its folder's last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from monalia.api.trainer import DatasetSpec, Sample, TrainOptions, write_model_card
from monalia.catalog.database import Catalog
from monalia.catalog.models import DatasetRow, ModelRow, utcnow
from monalia.catalog.queries import image_file
from monalia.catalog.run_tracking import DONE, RunInfo, RunTracker
from monalia.errors import ConfigError, MonaliaError
from monalia.project import Project
from monalia.stages.label.datasets import find_dataset, iter_members

SPLITS = ("train", "val", "test")


@dataclass
class DatasetImages:
    """A dataset as a trainer sees it, and the members whose image file is not there."""

    spec: DatasetSpec
    missing: list[tuple[str, str]] = field(default_factory=list)  # (image, reason)


def dataset_images(catalog: Catalog, dataset: DatasetRow, data_dir: Path) -> DatasetImages:
    """The dataset's samples per split, each with its file and content hash."""
    splits: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    missing = []
    for member in iter_members(catalog, dataset.id):
        path = image_file(data_dir, member["path"])
        if path is None:
            missing.append((member["url"], "not fetched yet (run `monalia images`)"))
            continue
        if not path.is_file():
            missing.append((str(path), "image file is missing"))
            continue
        splits.setdefault(member["split"], []).append(
            Sample(path, tuple(member["labels"]), member["sha256"])
        )
    classes = [{"uri": entry["uri"], "label": entry["label"]} for entry in dataset.classes]
    spec = DatasetSpec(dataset.name, dataset.hash, classes, splits)
    return DatasetImages(spec, missing)


def model_name(
    dataset: DatasetRow,
    trainer_name: str,
    settings: dict[str, Any],
    runtime_settings: tuple[str, ...] = (),
) -> str:
    """`DATASET-BACKBONE-HASH`: the hash covers the dataset and the settings that matter."""
    decisive = {key: value for key, value in settings.items() if key not in runtime_settings}
    payload = json.dumps(
        {"dataset": dataset.hash, "trainer": trainer_name, "settings": decisive}, sort_keys=True
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
    backbone = settings.get("backbone") or trainer_name
    return f"{dataset.name}-{backbone}-{digest}"


@dataclass
class TrainOutcome:
    run: RunInfo
    name: str
    card: dict[str, Any] | None
    model_id: int | None
    unchanged: bool = False
    missing: list[tuple[str, str]] = field(default_factory=list)


def train_model(
    catalog: Catalog,
    project: Project,
    hooks=None,
    dataset_ref: str | None = None,
    options: TrainOptions | None = None,
    retrain: bool = False,
) -> TrainOutcome:
    """Train the project's trainer on a dataset (default: the newest) and register the model."""
    options = options or TrainOptions()
    project = project.for_task()
    if project.trainer is None:
        raise ConfigError(
            'no trainer: add a [trainer] table (plugin = "cnn") or install monalia[train]'
        )
    if options.device:
        from monalia.learning.devices import resolve_device

        resolve_device(options.device)  # before a run is recorded: a wrong device is a typo
    task = project.task
    if not dataset_ref and task is not None and task.explicit:
        dataset_ref = task.dataset  # the task's newest dataset
    dataset = find_dataset(catalog, dataset_ref or None)
    trainer = project.trainer.create()
    settings = trainer.describe_settings()
    name = model_name(dataset, trainer.name, settings, type(trainer).runtime_settings)
    relative = Path("models") / name
    output_dir = project.data_dir / relative
    run_settings = {
        "dataset": dataset.hash,
        "model": name,
        "trainer": settings,
        "device": options.device,
    }
    with RunTracker(catalog, "train", trainer.name, dataset.name, run_settings, hooks) as tracker:
        existing = registered_model(catalog, name)
        if existing is not None and not retrain and (output_dir / "model_card.json").exists():
            # the dataset's images, each seen and left as it was (seen = new + ... + failed)
            images_in = int((dataset.stats or {}).get("images") or 1)
            tracker.add(seen=images_in, unchanged=images_in)
            run = tracker.finish(
                DONE,
                f"unchanged: model {name} was already trained on dataset {dataset.name} "
                f"{dataset.hash[:12]} with these settings (--retrain to train it again)",
            )
            return TrainOutcome(run, name, existing.card, existing.id, unchanged=True)
        images = dataset_images(catalog, dataset, project.data_dir)
        for item, reason in images.missing:
            tracker.fail_item(item, reason)
        usable = sum(len(samples) for samples in images.spec.splits.values())
        tracker.add(seen=usable + len(images.missing))
        if not images.spec.splits["train"]:
            raise MonaliaError(
                f"dataset {dataset.name} {dataset.hash[:12]}: none of its training images is on "
                "disk (run `monalia images`)"
            )
        if images.missing:
            options.say(
                f"{len(images.missing)} of the dataset's images are not on disk and are left "
                f"out (`monalia runs show {tracker.id}` lists them)"
            )
        card = train_with_heartbeat(trainer, images.spec, output_dir, options, catalog, tracker)
        if card.get("resumed_from_epoch"):
            tracker.event(
                f"resumed from the checkpoint after epoch {card['resumed_from_epoch']}",
                level="info",
            )
        for path in card.get("unreadable", []):
            tracker.fail_item(path, "image could not be decoded; left out of training")
        card["task"] = task_of_dataset(project, dataset.name)
        if output_dir.is_dir():  # the folder's card says its task too
            write_model_card(output_dir, card)
        model_id = register_model(catalog, card, name, trainer.name, dataset, relative, tracker.id)
        # the images the model learnt from are new; the missing and unreadable ones failed
        tracker.add(new=max(0, usable - len(card.get("unreadable", []))))
        summary = card["metrics"].get(card["metrics"].get("evaluated_on", ""), {})
        scored = (
            f", {card['metrics']['evaluated_on']} mAP {summary['map']:.3f}"
            if summary.get("map") is not None
            else ""
        )
        run = tracker.finish(DONE, f"model {name}{scored}")
        return TrainOutcome(run, name, card, model_id, missing=images.missing)


def task_of_dataset(project: Project, dataset_name: str) -> dict[str, Any]:
    """The task a dataset was made for, as a model's card keeps it: its name, fields and the
    vocabulary id its enrichment graph carries."""
    from monalia.project import DEFAULT_TASK, DEFAULT_VOCAB_ID

    for task in project.tasks.values():
        if task.dataset == dataset_name:
            return {"name": task.name, "fields": list(task.fields), "vocab_id": task.vocab_id}
    return {"name": DEFAULT_TASK, "fields": [], "vocab_id": DEFAULT_VOCAB_ID}


def registered_model(catalog: Catalog, name: str) -> ModelRow | None:
    with catalog.session() as session:
        existing = session.scalar(select(ModelRow).where(ModelRow.name == name))
        if existing is not None:
            session.expunge(existing)
        return existing


def train_with_heartbeat(trainer, spec, output_dir: Path, options: TrainOptions, catalog, tracker):
    """Train, saving the run's counts each time the trainer reports progress: a run that
    stops reporting for long is one whose process died."""
    say = options.say

    def say_and_beat(message: str) -> None:
        say(message)
        with catalog.session() as session:
            tracker.flush(session)

    options.say = say_and_beat
    try:
        return trainer.train(spec, output_dir, options)
    finally:
        options.say = say


def register_model(
    catalog: Catalog,
    card: dict[str, Any],
    name: str,
    trainer: str,
    dataset: DatasetRow,
    relative: Path,
    run_id: int,
) -> int:
    """Insert the model, or update it when it was trained again."""
    values = {
        "trainer": trainer,
        "backbone": card.get("backbone"),
        "dataset_id": dataset.id,
        "classes": card["classes"],
        "thresholds": card["thresholds"],
        "metrics": {
            key: value for key, value in card["metrics"].items() if key not in ("history",)
        },
        "card": card,
        "path": relative.as_posix(),
        "created_at": utcnow(),
        "run_id": run_id,
    }
    with catalog.session() as session:
        row = session.scalar(select(ModelRow).where(ModelRow.name == name))
        if row is None:
            row = ModelRow(name=name, **values)
            session.add(row)
        else:
            for key, value in values.items():
                setattr(row, key, value)
        session.flush()
        return row.id
