"""Scoring many images with a trained model, a chunk at a time, loaders overlapping.

Images are read the way the model was trained to see them (its card's input size, mean and
std); each chunk's scores stay on the device until the chunk is done, so the GPU is never
stalled by a copy per batch; the next chunk's loader workers start while the current chunk is
scored, so a new chunk costs no start-up pause.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from monalia.api.trainer import ChunkScores, LoadOptions, Predictor
from monalia.learning.backbones import classifier_head
from monalia.plugins.trainers.cnn import data as data_module
from monalia.plugins.trainers.cnn.engine import _logits, choose_precision

T = TypeVar("T")


class Scorer:
    """A trained model ready to score image files."""

    def __init__(
        self,
        model,
        card: dict[str, Any],
        device: torch.device,
        batch_size: int = 64,
        workers: int | None = None,
        cache_dir: Path | None = None,
        amp: str = "auto",
    ):
        self.model = model.eval()
        self.device = device
        self.batch_size = batch_size
        self.workers = data_module.default_workers(device) if workers is None else workers
        self.size = card["input"]["size"]
        self.classes = len(card["classes"])
        self.transform = data_module.eval_transform(self.size)
        self.cache_dir = (
            cache_dir / f"side-{data_module.cache_side(self.size)}" if cache_dir else None
        )
        channels_last = card.get("settings", {}).get("channels_last", True)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.normalize = data_module.Normalizer(
            card["input"]["mean"], card["input"]["std"], device, channels_last
        )
        self.precision = choose_precision(device, amp)
        self.head = classifier_head(self.model, card["backbone"])

    def _batches(self, paths: Sequence[Path], keys: Sequence[str | None]):
        dataset = data_module.ImageListDataset(
            paths,
            keys,
            np.zeros((len(paths), 0), dtype=np.float32),
            self.size,
            self.transform,
            self.cache_dir,
        )
        loader = data_module.make_loader(
            dataset,
            self.batch_size,
            False,
            min(self.workers, max(1, len(paths) // self.batch_size)) if self.workers else 0,
            self.device.type == "cuda",
            seed=0,
        )
        return iter(loader)  # starts the worker processes now

    def forward(self, batch, embed: bool = False):
        """Logits of a normalised batch and, with `embed`, the features the classifier head
        read in the same pass (captured by a hook on the head's input)."""
        captured = []
        hook = None
        if embed:
            hook = self.head.register_forward_pre_hook(
                lambda _module, inputs: captured.append(inputs[0].detach())
            )
        try:
            with self.precision.autocast(self.device):
                logits, _ = _logits(self.model(batch))
        finally:
            if hook is not None:
                hook.remove()
        return logits, (torch.flatten(captured[0], 1).float() if embed else None)

    @torch.inference_mode()
    def _score(self, batches, progress, embed: bool = False):
        scores, vectors, indices = [], [], []
        unreadable: list[int] = []
        for pixels, _targets, index, ok in batches:
            if not bool(ok.all()):
                unreadable.extend(int(i) for i in index[~ok])
                pixels, index = pixels[ok], index[ok]
            if len(pixels):
                logits, features = self.forward(self.normalize(pixels), embed)
                scores.append(torch.sigmoid(logits.float()))
                if features is not None:
                    vectors.append(features)
                indices.append(index)
            if progress is not None:
                progress.advance(len(ok))
        if not scores:
            empty = np.zeros((0, 0), np.float32) if embed else None
            return np.zeros((0, self.classes), np.float32), np.zeros(0, int), unreadable, empty
        return (
            torch.cat(scores).cpu().numpy(),
            torch.cat(indices).numpy(),
            unreadable,
            torch.cat(vectors).cpu().numpy() if embed else None,
        )

    def score_chunks(
        self,
        chunks: Iterable[tuple[Sequence[T], Sequence[Path], Sequence[str | None]]],
        progress=None,
        embed: bool = False,
    ) -> Iterator[ChunkScores[T]]:
        """Score (items, paths, cache keys) chunks in order, one chunk's loader ahead."""
        pending = None
        for items, paths, keys in chunks:
            started = (items, self._batches(paths, keys))
            if pending is not None:
                yield self._finish(pending, progress, embed)
            pending = started
        if pending is not None:
            yield self._finish(pending, progress, embed)

    def _finish(self, pending, progress, embed: bool = False) -> ChunkScores:
        items, batches = pending
        scores, indices, unreadable, vectors = self._score(batches, progress, embed)
        return ChunkScores(items, scores, indices, unreadable, vectors)


class CnnPredictor(Predictor):
    """A trained CNN behind the plugin API: batches of decoded images, or image files read by
    loader processes (`Scorer`), one chunk's loader ahead."""

    def __init__(self, model, card: dict[str, Any], device: torch.device, options: LoadOptions):
        super().__init__(
            [entry["uri"] for entry in card["classes"]],
            card["input"]["size"],
            card["input"]["mean"],
            card["input"]["std"],
            str(device),
            options.batch_size,
            options.cache_dir,
        )
        self.scorer = Scorer(
            model, card, device, options.batch_size, options.workers, options.cache_dir
        )
        self.backbone = card["backbone"]

    @torch.inference_mode()
    def score_batch(self, pixels: np.ndarray) -> np.ndarray:
        scorer = self.scorer
        batch = torch.from_numpy(np.ascontiguousarray(pixels))
        with scorer.precision.autocast(scorer.device):
            logits, _ = _logits(scorer.model(scorer.normalize(batch)))
        return torch.sigmoid(logits.float()).cpu().numpy()

    @torch.inference_mode()
    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        return self.score_and_embed_batch(pixels)[1]

    @torch.inference_mode()
    def score_and_embed_batch(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scorer = self.scorer
        batch = scorer.normalize(torch.from_numpy(np.ascontiguousarray(pixels)))
        logits, features = scorer.forward(batch, embed=True)
        return torch.sigmoid(logits.float()).cpu().numpy(), features.cpu().numpy()

    def explain(self, pixels: np.ndarray, class_index: int) -> np.ndarray:
        """Grad-CAM on the backbone's last convolutional block (`monalia.learning.backbones`)."""
        from monalia.learning.backbones import cam_layer
        from monalia.learning.explain import grad_cam

        scorer = self.scorer
        batch = scorer.normalize(torch.from_numpy(np.ascontiguousarray(pixels[None])))
        return grad_cam(scorer.model, cam_layer(scorer.model, self.backbone), batch, class_index)

    def explain_batch(self, pixels: np.ndarray, class_indices) -> np.ndarray:
        """Grad-CAM of a batch in one pass, image k for class `class_indices[k]`."""
        from monalia.learning.backbones import cam_layer
        from monalia.learning.explain import grad_cam_batch

        scorer = self.scorer
        batch = scorer.normalize(torch.from_numpy(np.ascontiguousarray(pixels)))
        layer = cam_layer(scorer.model, self.backbone)
        return grad_cam_batch(scorer.model, layer, batch, [int(i) for i in class_indices])

    def score_chunks(self, chunks, progress=None, embed: bool = False) -> Iterator[ChunkScores]:
        return self.scorer.score_chunks(chunks, progress, embed)
