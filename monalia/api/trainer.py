"""Base class of trainer plugins: from a dataset to a model with its card, and back to scores.

A trainer fits a model and evaluates it; the framework prepares the output folder, writes the
model card (classes, thresholds, metrics, settings, library versions) next to the weights and
registers the model in the catalog. To score, the framework asks the trainer that made a model
to `load` it: the `Predictor` it returns is all that enrich, evaluate and the Ray executor use.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from monalia.api.plugin import Plugin
from monalia.errors import MonaliaError
from monalia.hashing import file_sha256

T = TypeVar("T")
MODEL_CARD = "model_card.json"

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class Sample:
    """One image of a dataset: its file, its class URIs, its content hash (a cache key)."""

    path: Path
    labels: tuple[str, ...]
    key: str | None = None


@dataclass
class DatasetSpec:
    """The dataset a trainer receives: classes and, per split (train, val, test), its samples."""

    name: str
    hash: str
    classes: list[dict[str, str]]  # {"uri": ..., "label": ...}
    splits: dict[str, list[Sample]]


@dataclass
class TrainOptions:
    """How this training runs, apart from the model's settings: none of it changes the result."""

    device: str | None = None  # overrides the trainer's setting ("cpu", "cuda", "cuda:1")
    resume: bool = True  # continue from the last checkpoint in the output folder, if any
    say: Callable[[str], None] = field(default=lambda message: None)
    # progress(label, total, unit) -> a context manager with .advance(n)
    progress: Callable[[str, int, str], Any] | None = None
    cache_dir: Path | None = None  # resized copies of the images, shared between trainings


@dataclass
class TrainedModel:
    """What a trainer produced: where the weights are, thresholds per class, metrics."""

    weights: Path
    thresholds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    backbone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # split -> (targets, raw scores), classes in the dataset's order: with "val" there, the
    # framework calibrates the scores, picks the thresholds and computes the metrics itself
    # (`monalia.learning.evaluation.settle_model`), the same way for every trainer
    split_scores: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class ChunkScores(Generic[T]):
    """Scores of one chunk of images: `scores[k]` belongs to `items[indices[k]]`; the items at
    `unreadable` could not be decoded and have no scores."""

    items: Sequence[T]
    scores: np.ndarray
    indices: np.ndarray
    unreadable: list[int]
    # with `score_chunks(..., embed=True)`: each scored image's feature vector, in `scores` order
    embeddings: np.ndarray | None = None


@dataclass(frozen=True)
class LoadOptions:
    """How a loaded model runs: none of it changes its scores."""

    device: str = "auto"  # "cpu", "cuda", "cuda:1", or "auto" (CUDA when there is one)
    batch_size: int = 64
    workers: int | None = None  # image-reading processes; None: the predictor decides
    cache_dir: Path | None = None  # resized copies of the images, shared between runs


class Predictor:
    """A trained model ready to score images: one probability per class and image.

    It names what it expects: `input_size` (images are square, uint8 RGB, decoded by
    `monalia.learning.image_decode.decode_for_model`) and the normalisation it applies itself
    (`mean`, `std`, per channel on values in 0..1). `score_batch` is the one method a trainer must
    write; `score_chunks` reads image files and may be overridden with a faster reader.
    """

    def __init__(
        self,
        classes: Sequence[str],
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: str = "cpu",
        batch_size: int = 64,
        cache_dir: Path | None = None,
    ):
        self.classes = list(classes)
        self.input_size = input_size
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.device = device
        self.batch_size = batch_size
        self.cache_dir = cache_dir

    def score_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Scores of a batch of decoded images: uint8 (N, 3, S, S) in, float32 (N, classes) out."""
        raise NotImplementedError(f"{type(self).__name__} must implement score_batch()")

    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Feature vectors of a batch of decoded images (what the model's classifier reads):
        uint8 (N, 3, S, S) in, float32 (N, D) out. An optional capability: `can_embed` tells."""
        raise NotImplementedError(f"models of {type(self).__name__} cannot embed images")

    @property
    def can_embed(self) -> bool:
        return type(self).embed_batch is not Predictor.embed_batch

    def score_and_embed_batch(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and feature vectors of a batch; override to get both from one forward pass."""
        return self.score_batch(pixels), self.embed_batch(pixels)

    def explain(self, pixels: np.ndarray, class_index: int) -> np.ndarray:
        """Where in one decoded image the model sees a class (Grad-CAM, say): uint8 (3, S, S)
        in, float32 (S, S) in 0..1 out. An optional capability: `can_explain` tells."""
        raise NotImplementedError(f"models of {type(self).__name__} cannot explain their scores")

    @property
    def can_explain(self) -> bool:
        return type(self).explain is not Predictor.explain

    def explain_batch(self, pixels: np.ndarray, class_indices: Sequence[int]) -> np.ndarray:
        """Heat maps of a batch: image k's map for class `class_indices[k]`, uint8 (N, 3, S, S)
        in, float32 (N, S, S) out. Override with a batched computation; this one loops."""
        import numpy as np

        return np.stack(
            [
                self.explain(image, int(index))
                for image, index in zip(pixels, class_indices, strict=True)
            ]
        ).astype(np.float32)

    def score_chunks(
        self,
        chunks: Iterable[tuple[Sequence[T], Sequence[Path], Sequence[str | None]]],
        progress=None,
        embed: bool = False,
    ) -> Iterator[ChunkScores[T]]:
        """Score (items, image paths, cache keys) chunks in order; `progress.advance(n)` as it
        goes. An image that cannot be decoded is listed in the chunk's `unreadable`. With
        `embed`, each chunk also carries its images' feature vectors (`embed_batch`)."""
        import numpy as np

        from monalia.learning.image_decode import decode_batches

        for items, paths, keys in chunks:
            scores, vectors, indices, unreadable = [], [], [], []
            for pixels, kept, bad in decode_batches(
                paths, keys, self.input_size, self.batch_size, self.cache_dir
            ):
                if pixels is not None:
                    if embed:
                        batch_scores, batch_vectors = self.score_and_embed_batch(pixels)
                        vectors.append(np.asarray(batch_vectors, np.float32))
                    else:
                        batch_scores = self.score_batch(pixels)
                    scores.append(np.asarray(batch_scores, np.float32))
                    indices.extend(kept)
                unreadable.extend(bad)
                if progress is not None:
                    progress.advance(len(kept) + len(bad))
            yield ChunkScores(
                items,
                np.concatenate(scores) if scores else np.zeros((0, len(self.classes)), np.float32),
                np.array(indices, dtype=int),
                unreadable,
                (np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32))
                if embed
                else None,
            )


def read_model_card(folder: Path) -> dict[str, Any]:
    """The model card in a trained model's folder; a clear error when there is none."""
    path = folder / MODEL_CARD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MonaliaError(f"no model card at {path}: is it a trained model's folder?") from None


def write_model_card(folder: Path, card: dict[str, Any]) -> None:
    """Write a model card into a model's folder, as `read_model_card` reads it."""
    (folder / MODEL_CARD).write_text(
        json.dumps(card, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8"
    )


def model_weights(folder: Path, card: dict[str, Any]) -> Path:
    """The weights file a model card names, checked against the SHA-256 the card recorded."""
    path = folder / card["weights"]
    if not path.is_file():
        raise MonaliaError(f"the weights of model {card.get('name')} are missing: {path}")
    expected = card.get("weights_sha256")
    if expected and file_sha256(path) != expected:
        raise MonaliaError(
            f"{path} is not the file its model card describes (SHA-256 differs): "
            "retrain the model or restore its weights"
        )
    return path


class Trainer(Plugin):
    """Base of every trainer plugin. Subclasses implement `fit`, and `load` to score."""

    kind: ClassVar[str] = "trainer"
    # settings that change how training runs, not what it makes (devices, workers, caches):
    # left out of the model's name, so changing them does not make a new model
    runtime_settings: ClassVar[tuple[str, ...]] = ()

    def load(self, folder: Path, options: LoadOptions) -> Predictor:
        """The model this trainer wrote into `folder`, ready to score.

        Everything needed is in the folder (its card and weights): the trainer's own settings
        are those of the project, not necessarily the model's.
        """
        raise NotImplementedError(
            f"trainer {self.name} cannot score its models: it does not implement load()"
        )

    def fit(self, dataset: DatasetSpec, output_dir: Path, options: TrainOptions) -> TrainedModel:
        """Train on `dataset`, write the weights under `output_dir`, return what was made."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit()")

    def library_versions(self) -> dict[str, str]:
        """Versions of the libraries the model depends on, for the model card."""
        return {"python": platform.python_version()}

    def train(
        self, dataset: DatasetSpec, output_dir: Path, options: TrainOptions | None = None
    ) -> dict[str, Any]:
        """Fit, then write the model card beside the weights; return the card."""
        from monalia.version import __version__

        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.json").write_text(
            json.dumps(self.describe_settings(), indent=2, sort_keys=True), encoding="utf-8"
        )
        model = self.fit(dataset, output_dir, options or TrainOptions())
        settled = None
        if model.split_scores:
            from monalia.learning.evaluation import settle_model

            settled = settle_model(
                dataset.classes,
                model.split_scores,
                float(getattr(self.settings, "beta", 1.0)),
                str(getattr(self.settings, "calibration", "auto")),
            )
            model.thresholds = settled.thresholds
            model.metrics = {**model.metrics, **settled.metrics}
            model.extra = {**model.extra, "calibration": settled.calibration}
        card = {
            "name": output_dir.name,
            "trainer": self.name,
            "backbone": model.backbone,
            "dataset": {"name": dataset.name, "hash": dataset.hash},
            "dataset_hash": dataset.hash,
            "classes": [
                {**entry, "threshold": model.thresholds.get(entry["uri"])}
                for entry in dataset.classes
            ],
            "thresholds": model.thresholds,
            "metrics": model.metrics,
            "settings": self.describe_settings(),
            "weights": model.weights.name,
            "weights_sha256": file_sha256(model.weights),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"monalia": __version__, **self.library_versions()},
            **model.extra,
        }
        if settled is not None and settled.evaluation is not None:
            # the plots where `monalia report html` finds them, as `monalia evaluate` leaves them
            from monalia.learning.evaluation import write_report

            split = settled.evaluation.split
            card["plots"] = [
                path.relative_to(output_dir).as_posix()
                for path in write_report(
                    settled.evaluation, card, output_dir / f"evaluation-{split}"
                )
            ]
        write_model_card(output_dir, card)
        return card

    def scorer(self, folder: Path, options: LoadOptions) -> Predictor:
        """The model in `folder`, ready to score, its scores calibrated as its card says.

        Everything that scores with a registered model (enrich, evaluate, the Ray executor,
        cross-fitting) loads it through here, so calibrated scores are the only ones written.
        """
        predictor = self.load(folder, options)
        from monalia.learning.calibration import Calibration

        calibration = Calibration.from_card(
            read_model_card(folder).get("calibration"), list(predictor.classes)
        )
        return predictor if calibration is None else CalibratedPredictor(predictor, calibration)


class CalibratedPredictor(Predictor):
    """A predictor whose scores go through the model's calibration."""

    def __init__(self, inner: Predictor, calibration: Any):
        super().__init__(
            inner.classes,
            inner.input_size,
            inner.mean,
            inner.std,
            inner.device,
            inner.batch_size,
            inner.cache_dir,
        )
        self.inner = inner
        self.calibration = calibration

    def score_batch(self, pixels: np.ndarray) -> np.ndarray:
        return self.calibration.apply(self.inner.score_batch(pixels))

    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        return self.inner.embed_batch(pixels)

    @property
    def can_embed(self) -> bool:
        return self.inner.can_embed

    def score_and_embed_batch(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, vectors = self.inner.score_and_embed_batch(pixels)
        return self.calibration.apply(scores), vectors

    def explain(self, pixels: np.ndarray, class_index: int) -> np.ndarray:
        # calibration is monotone per class: where the model looks does not change
        return self.inner.explain(pixels, class_index)

    def explain_batch(self, pixels: np.ndarray, class_indices: Sequence[int]) -> np.ndarray:
        return self.inner.explain_batch(pixels, class_indices)

    @property
    def can_explain(self) -> bool:
        return self.inner.can_explain

    def score_chunks(self, chunks, progress=None, embed: bool = False):
        for chunk in self.inner.score_chunks(chunks, progress, embed):
            chunk.scores = self.calibration.apply(chunk.scores)
            yield chunk
