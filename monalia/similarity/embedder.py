"""An ImageNet backbone as an embedder: feature vectors for similarity before any training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monalia.api.trainer import Predictor


class BackboneEmbedder(Predictor):
    """A frozen ImageNet backbone whose pooled features are the vectors; it scores nothing."""

    def __init__(
        self, backbone: str, weights: str | Path | None, device: str = "auto", batch_size=32
    ):
        import torch

        from monalia.learning.backbones import backbone_spec, feature_extractor
        from monalia.learning.devices import resolve_device

        spec = backbone_spec(backbone)
        resolved = resolve_device(device)
        super().__init__([], spec.input_size, spec.mean, spec.std, str(resolved), batch_size)
        self.model, self.dimensions = feature_extractor(backbone, weights)
        self.model.to(resolved).eval()
        self.torch_device = resolved
        self.scale_mean = torch.tensor(spec.mean, device=resolved).view(1, 3, 1, 1) * 255
        self.scale_std = torch.tensor(spec.std, device=resolved).view(1, 3, 1, 1) * 255

    def score_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.zeros((len(pixels), 0), np.float32)

    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.torch_device).float()
            output = self.model((batch - self.scale_mean) / self.scale_std)
            if isinstance(output, tuple):
                output = output[0]
        return output.float().cpu().numpy()

    def pixels_of(self, path: Path) -> np.ndarray:
        """An image as this embedder sees it: uniform borders trimmed and colour dropped (a
        frame or a greyscale copy is the same picture), then centre-cropped like the model."""
        return similarity_pixels(Path(path), self.input_size)

    def score_chunks(self, chunks, progress=None, embed: bool = False):
        from monalia.api.trainer import ChunkScores

        for items, paths, _keys in chunks:
            vectors, indices, unreadable = [], [], []
            batch, batch_rows = [], []
            for row, path in enumerate(paths):
                try:
                    batch.append(self.pixels_of(path))
                    batch_rows.append(row)
                except Exception:
                    unreadable.append(row)
                if len(batch) == self.batch_size or (row == len(paths) - 1 and batch):
                    vectors.append(self.embed_batch(np.stack(batch)))
                    indices.extend(batch_rows)
                    if progress is not None:
                        progress.advance(len(batch))
                    batch, batch_rows = [], []
            if progress is not None and unreadable:
                progress.advance(len(unreadable))
            embeddings = np.concatenate(vectors) if vectors else np.zeros((0, self.dimensions))
            yield ChunkScores(
                items,
                np.zeros((len(indices), 0), np.float32),
                np.array(indices, dtype=int),
                unreadable,
                embeddings.astype(np.float32) if embed else None,
            )


BORDER_TOLERANCE = 18  # grey levels from the corner's colour still counted as border


def trim_border(image):
    """The image without a uniform frame around it (the corner's colour); unchanged when what
    is left would be less than a third of it (a picture whose edges merely look plain)."""
    from PIL import Image, ImageChops

    grey = image.convert("L")
    plain = Image.new("L", grey.size, grey.getpixel((0, 0)))
    mask = ImageChops.difference(grey, plain).point(lambda v: 255 if v > BORDER_TOLERANCE else 0)
    box = mask.getbbox()
    if box and (box[2] - box[0]) * (box[3] - box[1]) > grey.width * grey.height / 3:
        return image.crop(box)
    return image


def similarity_pixels(path: Path, input_size: int) -> np.ndarray:
    """uint8 (3, S, S): the image at `path` trimmed of its border, in grey, centre-cropped."""
    from PIL import ImageOps

    from monalia.learning.image_decode import cache_side, load_resized, resize_and_crop

    image = load_resized(path, None, cache_side(input_size) * 2, None)
    image = ImageOps.grayscale(trim_border(image)).convert("RGB")
    return resize_and_crop(image, input_size)
