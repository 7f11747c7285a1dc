"""Heat maps of where a model sees a class: Grad-CAM (the `grad-cam` package) and their images.

Trainers call `grad_cam` from their predictor's `explain`; the workbench and the HTML report turn
the map into a picture with `heat_rgba` (a colour map whose transparency follows the heat, to lay
over the model's view of the image) or `blend` (one picture, for static pages).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

HEAT_OPACITY = 0.45


def grad_cam(model: Any, layer: Any, batch: Any, class_index: int) -> np.ndarray:
    """Grad-CAM of class `class_index` for a one-image normalised batch: float32 (S, S) in 0..1.

    `model` may return a tuple (inception's auxiliary output): the first element is the logits.
    """
    return grad_cam_batch(model, layer, batch, [class_index])[0]


def grad_cam_batch(
    model: Any, layer: Any, batch: Any, class_indices: list[int], flips: bool = True
) -> np.ndarray:
    """Grad-CAM of a normalised batch, image k for class `class_indices[k]`: float32 (N, S, S),
    each map scaled to 0..1. `layer` may be a list: the maps of its layers are averaged.

    With `flips`, each image is also explained mirrored left-right, top-bottom and both, and the
    four maps, mirrored back, are averaged (one forward and one backward pass over the four).
    Convolutions padded more on one side than the other (TensorFlow's "same", as in
    EfficientNet-Lite) shift a map towards the top left by a fraction of their stride; a
    mirrored image is shifted the other way, so the average points where the class is (on the
    demo's shapes, CorLoc 0.68 without, 0.79 with; bench/regions.py)."""
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixels):
            output = self.inner(pixels)
            return output[0] if isinstance(output, tuple) else output

    wrapped = Logits(model).eval()
    layers = list(layer) if isinstance(layer, list | tuple) else [layer]
    count = len(class_indices)
    views = [batch, batch.flip(-1), batch.flip(-2), batch.flip(-2, -1)] if flips else [batch]
    with torch.enable_grad(), GradCAM(model=wrapped, target_layers=layers) as cam:
        maps = cam(
            input_tensor=torch.cat(views) if flips else batch,
            targets=[ClassifierOutputTarget(int(index)) for index in class_indices] * len(views),
        )
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    if flips:
        maps = (
            maps[:count]
            + maps[count : 2 * count, :, ::-1]
            + maps[2 * count : 3 * count, ::-1, :]
            + maps[3 * count :, ::-1, ::-1]
        ) / 4
        low = maps.min(axis=(1, 2), keepdims=True)
        span = maps.max(axis=(1, 2), keepdims=True) - low
        maps = np.where(span > 0, (maps - low) / np.maximum(span, 1e-7), 0.0)
    return np.clip(maps, 0.0, 1.0).astype(np.float32)


def _colours(heat: np.ndarray) -> np.ndarray:
    """RGB uint8 (S, S, 3) of a heat map through matplotlib's "inferno"."""
    from matplotlib import colormaps

    return (colormaps["inferno"](heat)[..., :3] * 255).astype(np.uint8)


def heat_rgba(heat: np.ndarray, side: int | None = None) -> bytes:
    """A PNG of the heat map, transparent where the model does not look."""
    from PIL import Image

    rgba = np.dstack([_colours(heat), (np.clip(heat, 0, 1) * 255).astype(np.uint8)])
    image = Image.fromarray(rgba, "RGBA")
    if side is not None and side != image.width:
        image = image.resize((side, side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def view_jpeg(pixels: np.ndarray, side: int | None = None) -> bytes:
    """The model's view of an image (its decoded uint8 (3, S, S) square) as a JPEG."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), "RGB")
    if side is not None and side != image.width:
        image = image.resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def blend(pixels: np.ndarray, heat: np.ndarray, opacity: float = HEAT_OPACITY) -> bytes:
    """The model's view with the heat map laid over it, as one JPEG (for static pages)."""
    from PIL import Image

    view = pixels.transpose(1, 2, 0).astype(np.float32)
    weight = (np.clip(heat, 0, 1) * opacity)[..., None]
    mixed = view * (1 - weight) + _colours(heat).astype(np.float32) * weight
    buffer = io.BytesIO()
    Image.fromarray(mixed.clip(0, 255).astype(np.uint8), "RGB").save(buffer, "JPEG", quality=88)
    return buffer.getvalue()
