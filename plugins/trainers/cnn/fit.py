"""The training loop around `engine`: settings, seeding, checkpoints, early stopping, thresholds.

Every epoch ends with a checkpoint (``last.pt``); the best epoch by validation mAP is kept apart
(``best.pt``). Randomness is drawn from the seed and the epoch number (shuffling, dropout) and
from the seed, epoch and image (augmentations), never from what ran before, so a training
resumed from its last checkpoint follows the same path as one that was never interrupted, with
any number of loader workers.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monalia.api.trainer import DatasetSpec, TrainedModel, TrainOptions
from monalia.errors import ConfigError, MonaliaError
from monalia.learning.backbones import (
    backbone_spec,
    build_model,
    freeze_backbone,
)
from monalia.learning.devices import resolve_device
from monalia.learning.metrics import (
    evaluate_scores,
    json_safe,
)
from monalia.plugins.trainers.cnn import data as data_module
from monalia.plugins.trainers.cnn.checkpoint import load_checkpoint, save_checkpoint
from monalia.plugins.trainers.cnn.engine import (
    MultiLabelLoss,
    choose_precision,
    evaluate,
    train_one_epoch,
)
from monalia.plugins.trainers.cnn.settings import CnnSettings

LAST = "last.pt"
BEST = "best.pt"
FINAL = "model.pt"


def augmentation_of(settings: CnnSettings) -> data_module.Augmentation:
    return data_module.Augmentation(
        settings.augment,
        tuple(settings.crop_scale),
        settings.flip,
        settings.rotation,
        settings.color_jitter,
        settings.grayscale,
    )


def settings_hash(settings: CnnSettings, dataset_hash: str) -> str:
    payload = json.dumps(
        {"dataset": dataset_hash, "settings": settings.identity()}, sort_keys=True
    ).encode()
    return hashlib.sha256(payload).hexdigest()


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919) % 2**63


class SeededImages(data_module.ImageListDataset):
    """Augmentations drawn from (seed, epoch, image): the same whichever worker decodes it."""

    seed = 0

    def __getitem__(self, index: int):
        with torch.random.fork_rng(devices=[]):
            # the CPU generator alone: torch.manual_seed would also reseed the GPU's, which
            # drives dropout, and with no loader workers this runs in the training process
            torch.random.default_generator.manual_seed(self.seed * 1_000_003 + index)
            return super().__getitem__(index)


@dataclass
class SplitData:
    name: str
    dataset: SeededImages
    paths: list[Path]


def _targets(samples, class_index: dict[str, int]) -> np.ndarray:
    matrix = np.zeros((len(samples), len(class_index)), dtype=np.float32)
    for row, sample in enumerate(samples):
        for uri in sample.labels:
            if uri in class_index:
                matrix[row, class_index[uri]] = 1.0
    return matrix


def _pos_weight(settings: CnnSettings, targets: np.ndarray, uris: list[str]) -> torch.Tensor | None:
    if settings.pos_weight == "none":
        return None
    if settings.pos_weight == "auto":
        positives = targets.sum(axis=0)
        negatives = len(targets) - positives
        weights = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
        return torch.tensor(np.clip(weights, 1.0, settings.pos_weight_max), dtype=torch.float32)
    unknown = sorted(set(settings.pos_weight) - set(uris))
    if unknown:
        raise ConfigError(f"[trainer] pos_weight names classes not in the dataset: {unknown}")
    return torch.tensor([settings.pos_weight.get(uri, 1.0) for uri in uris], dtype=torch.float32)


class Training:
    """One training of one dataset into one output folder."""

    def __init__(
        self,
        spec: DatasetSpec,
        output_dir: Path,
        settings: CnnSettings,
        options: TrainOptions,
        weights_path: Path | None = None,
    ):
        self.spec = spec
        self.output_dir = output_dir
        self.settings = settings
        self.options = options
        self.say = options.say
        self.device = resolve_device(options.device or settings.device)
        self.backbone = backbone_spec(settings.backbone)
        self.input_size = settings.input_size or self.backbone.input_size
        self.uris = [entry["uri"] for entry in spec.classes]
        self.identity = settings_hash(settings, spec.hash)
        self.weights_path = weights_path
        if not spec.splits.get("train"):
            raise MonaliaError(f"dataset {spec.name} has no training images")
        if settings.backbone == "inception_v3" and self.input_size < 75:
            raise ConfigError("inception_v3 needs input_size >= 75")
        class_index = {uri: i for i, uri in enumerate(self.uris)}
        cache = options.cache_dir if settings.cache else None
        if cache is not None:
            cache = cache / f"side-{data_module.cache_side(self.input_size)}"
        self.splits: dict[str, SplitData] = {}
        for name, samples in spec.splits.items():
            if not samples:
                continue
            transform = (
                data_module.train_transform(self.input_size, augmentation_of(settings))
                if name == "train"
                else data_module.eval_transform(self.input_size)
            )
            dataset = SeededImages(
                [sample.path for sample in samples],
                [sample.key for sample in samples],
                _targets(samples, class_index),
                self.input_size,
                transform,
                cache,
            )
            self.splits[name] = SplitData(name, dataset, [sample.path for sample in samples])
        self.workers = (
            settings.workers
            if settings.workers is not None
            else data_module.default_workers(self.device)
        )
        self.unreadable: dict[str, set[int]] = {name: set() for name in self.splits}

    # -- building blocks ----------------------------------------------------------------------

    def _model(self):
        weights: str | Path | None
        if self.settings.weights == "none":
            weights = None
        elif self.settings.weights == "imagenet":
            weights = "imagenet"
        else:
            weights = self.weights_path or Path(self.settings.weights)
        model = build_model(
            self.settings.backbone, len(self.uris), self.settings.dropout, weights=weights
        )
        frozen = (
            freeze_backbone(model, self.settings.backbone) if self.settings.freeze_backbone else []
        )
        model.to(self.device)
        # channels-last is faster for these networks on CUDA and on the CPU alike
        self.channels_last = self.settings.channels_last
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model, frozen

    def _loader(self, split: str, seed: int):
        split_data = self.splits[split]
        split_data.dataset.seed = seed
        return data_module.make_loader(
            split_data.dataset,
            self.settings.batch_size,
            shuffle=split == "train",
            workers=self.workers,
            pin_memory=self.device.type == "cuda",
            seed=seed,
        )

    def _progress(self, label: str, total: int, unit: str = "images"):
        if self.options.progress is None:
            return nullcontext(None)
        return self.options.progress(label, total, unit)

    def _score(self, model, split: str, criterion, precision, normalize):
        with self._progress(f"evaluate {split}", len(self.splits[split].dataset)) as progress:
            scores = evaluate(
                model,
                self._loader(split, 0),
                criterion,
                normalize,
                self.device,
                precision,
                progress,
            )
        self.unreadable[split].update(scores.unreadable)
        return scores

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> TrainedModel:
        settings = self.settings
        self.output_dir.mkdir(parents=True, exist_ok=True)
        # autotuned kernels differ from run to run; a resumed training must match
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.manual_seed(settings.seed)
        model, frozen = self._model()
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        optimizer = torch.optim.Adam(
            trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=settings.lr_step, gamma=settings.lr_gamma
        )
        criterion = self._criterion()
        precision = choose_precision(self.device, settings.amp)
        normalize = data_module.Normalizer(
            self.backbone.mean, self.backbone.std, self.device, self.channels_last
        )
        state = self._resume(model, optimizer, scheduler)
        self.resumed_from = state["epoch"]
        has_val = "val" in self.splits
        if state["epoch"] == 0:
            self.say(
                f"training {settings.backbone} on {self.device} for {settings.epochs} epochs: "
                f"{len(self.splits['train'].dataset)} training images, {len(self.uris)} classes"
                f", {self.workers} loader workers"
                + (f", {precision.dtype} autocast" if precision.dtype else "")
            )
        for epoch in range(state["epoch"], settings.epochs):
            if state["stale"] >= (settings.patience or math.inf):
                break
            torch.manual_seed(epoch_seed(settings.seed, epoch))  # dropout
            label = f"train epoch {epoch + 1}/{settings.epochs}"
            with self._progress(label, len(self.splits["train"].dataset)) as progress:
                result = train_one_epoch(
                    model,
                    self._loader("train", epoch_seed(settings.seed, epoch)),
                    criterion,
                    optimizer,
                    normalize,
                    self.device,
                    precision,
                    progress,
                    frozen,
                )
            self.unreadable["train"].update(result.unreadable)
            record = {
                "epoch": epoch + 1,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": result.loss,
                "images_per_second": round(result.images_per_second, 2),
                "seconds": round(result.seconds, 2),
            }
            scheduler.step()
            if has_val:
                quality = self._validate(model, criterion, precision, normalize, record)
            else:
                quality = -result.loss
            state["history"].append(record)
            loss = record.get("val_loss", result.loss)
            self._end_epoch(state, quality, model, optimizer, scheduler, epoch + 1, loss)
            self.say(self._epoch_line(record, settings.epochs))
        if state["stale"] >= (settings.patience or math.inf) and state["epoch"] < settings.epochs:
            self.say(
                f"early stop after epoch {state['epoch']}: validation mAP and loss have not "
                "improved for "
                f"{state['stale']} epochs; keeping epoch {state['best_epoch']}"
            )
        return self._finish(model, state, criterion, precision, normalize)

    def _criterion(self) -> MultiLabelLoss:
        settings = self.settings
        train_targets = self.splits["train"].dataset.targets.numpy()
        pos_weight = _pos_weight(settings, train_targets, self.uris)
        return MultiLabelLoss(
            settings.loss,
            pos_weight.to(self.device) if pos_weight is not None else None,
            settings.focal_gamma,
            settings.focal_alpha,
        )

    def _validate(self, model, criterion, precision, normalize, record: dict[str, Any]) -> float:
        """Score the validation split; its mAP (its loss, negated, when mAP is undefined) is
        the epoch's quality. The figures go into the epoch's record."""
        scores = self._score(model, "val", criterion, precision, normalize)
        _, summary = evaluate_scores(scores.targets, scores.scores)
        record["val_loss"] = scores.loss
        record["val_map"] = summary["map"]
        return summary["map"] if not math.isnan(summary["map"]) else -scores.loss

    def _end_epoch(
        self, state, quality: float, model, optimizer, scheduler, epochs: int, loss: float
    ) -> None:
        """Keep the best weights so far, count epochs without progress, write the checkpoint
        a killed training resumes from.

        Better is a higher validation mAP; at an equal mAP, a lower validation loss. A small
        validation split is ranked perfectly after one epoch (mAP 1.0) long before the model
        is good: without the loss to break the tie, every later epoch would be thrown away."""
        best, best_loss = state["best"], state.get("best_loss")
        margin = self.settings.min_delta  # the least gain that counts, in mAP or in loss
        improved = best is None or quality > best + margin
        tied = best is not None and not improved and quality >= best
        if improved or (tied and (best_loss is None or loss < best_loss - margin)):
            state["best"], state["best_epoch"], state["stale"] = (
                max(quality, best or quality),
                epochs,
                0,
            )
            state["best_loss"] = loss
            torch.save(model.state_dict(), self.output_dir / BEST)
        else:
            state["stale"] += 1
        state["epoch"] = epochs
        save_checkpoint(
            self.output_dir / LAST,
            model,
            optimizer,
            scheduler,
            epochs,
            self._checkpoint_config(),
            self.spec.classes,
            extra={
                key: state.get(key)
                for key in ("history", "best", "best_epoch", "best_loss", "stale")
            },
        )

    def _checkpoint_config(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "dataset_hash": self.spec.hash,
            "settings": self.settings.identity(),
        }

    def _resume(self, model, optimizer, scheduler) -> dict[str, Any]:
        fresh = {
            "epoch": 0,
            "history": [],
            "best": None,
            "best_epoch": 0,
            "best_loss": None,
            "stale": 0,
        }
        last = self.output_dir / LAST
        if not last.exists():
            return fresh
        if not self.options.resume:
            last.unlink()
            return fresh
        checkpoint = load_checkpoint(last)
        if checkpoint["config"].get("identity") != self.identity:
            raise MonaliaError(
                f"{last} is a checkpoint of another dataset or other settings: "
                "start again with --restart"
            )
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        state = {"epoch": checkpoint["epoch"], **checkpoint["extra"]}
        self.say(
            f"resuming from {last}: {state['epoch']} of {self.settings.epochs} epochs done"
            + (
                f", best validation mAP {state['best']:.3f} at epoch {state['best_epoch']}"
                if state.get("best") is not None and "val" in self.splits
                else ""
            )
        )
        return state

    @staticmethod
    def _epoch_line(record: dict[str, Any], epochs: int) -> str:
        line = f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}"
        if "val_loss" in record:
            line += f", val loss {record['val_loss']:.4f}, val mAP {record['val_map']:.3f}"
        return line + f", {record['images_per_second']:.1f} images/s, lr {record['lr']:.2g}"

    def _finish(self, model, state, criterion, precision, normalize) -> TrainedModel:
        best = self.output_dir / BEST
        if best.exists():
            model.load_state_dict(torch.load(best, map_location=self.device, weights_only=True))
        beta = self.settings.beta
        metrics: dict[str, Any] = {"history": state["history"], "best_epoch": state["best_epoch"]}
        # the raw scores of validation and test: the framework calibrates them, picks the
        # thresholds and computes the metrics (monalia.learning.evaluation.settle_model)
        split_scores = {}
        for split in ("val", "test"):
            if split in self.splits:
                scores = self._score(model, split, criterion, precision, normalize)
                split_scores[split] = (scores.targets, scores.scores)
        final = self.output_dir / FINAL
        partial = final.with_name(FINAL + ".partial")
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, partial)
        partial.replace(final)
        (self.output_dir / "history.json").write_text(
            json.dumps(state["history"], indent=2), encoding="utf-8"
        )
        unreadable = sorted(
            str(self.splits[split].paths[index])
            for split, indices in self.unreadable.items()
            for index in indices
        )
        return TrainedModel(
            weights=final,
            thresholds=dict.fromkeys(self.uris, 0.5),
            metrics=json_safe(metrics),
            split_scores=split_scores,
            backbone=self.settings.backbone,
            extra={
                "input": {
                    "size": self.input_size,
                    "mean": list(self.backbone.mean),
                    "std": list(self.backbone.std),
                },
                "identity": self.identity,
                "device": str(self.device),
                "precision": str(precision.dtype or torch.float32).removeprefix("torch."),
                "epochs_run": state["epoch"],
                "resumed_from_epoch": self.resumed_from,
                "beta": beta,
                "images": {name: len(split.dataset) for name, split in self.splits.items()},
                "unreadable": unreadable,
                "trained_seconds": round(sum(r["seconds"] for r in state["history"]), 1),
            },
        )
