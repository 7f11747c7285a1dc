"""Where in a picture a class is seen: boxes around the hot part of its Grad-CAM map.

A detection's heat map (`Predictor.explain_batch`) covers what the model saw: the centre square
of the image, shrunk to the model's input size. The region is the bounding box of each connected
area where the heat is at least `REGION_FRACTION` of the map's peak, the strongest first (at most
`MAX_BOXES`; an area holding less than `MIN_MASS_SHARE` of the strongest one's heat is left
out), mapped back to the pixels of the image file. The parts of a wide or tall image outside the
centre square are never seen by the model, so no box reaches into them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGION_FRACTION = 0.75  # of the map's peak: where the heat is this high, the class is seen
MAX_BOXES = 3  # boxes kept per detection, the strongest first
MIN_MASS_SHARE = 0.25  # an area with less heat than this share of the strongest one is dropped


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: left, top, width, height (a media fragment's ``xywh``)."""

    x: int
    y: int
    w: int
    h: int

    def xywh(self) -> str:
        return f"xywh={self.x},{self.y},{self.w},{self.h}"

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    @classmethod
    def of(cls, values) -> Box:
        x, y, w, h = (round(float(v)) for v in values)
        return cls(x, y, w, h)

    def scaled(self, sx: float, sy: float) -> Box:
        """The same rectangle in a space `sx` times wider and `sy` times taller (a canvas)."""
        left, top = round(self.x * sx), round(self.y * sy)
        return Box(left, top, max(1, round((self.x + self.w) * sx) - left),
                   max(1, round((self.y + self.h) * sy) - top))  # fmt: skip

    def iou(self, other: Box) -> float:
        """Intersection over union of two rectangles."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.w, other.x + other.w)
        bottom = min(self.y + self.h, other.y + other.h)
        inter = max(0, right - left) * max(0, bottom - top)
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


def heat_boxes(
    heat: np.ndarray,
    fraction: float = REGION_FRACTION,
    max_boxes: int = MAX_BOXES,
    min_mass_share: float = MIN_MASS_SHARE,
) -> list[tuple[int, int, int, int]]:
    """Boxes (left, top, right, bottom; right and bottom exclusive) in the map's own pixels
    around its areas at or above `fraction` of its peak, the one with most heat first."""
    from scipy import ndimage

    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    peak = float(heat.max()) if heat.size else 0.0
    if peak <= 0.0:
        return []  # the model saw nothing for the class: no place to point at
    mask = heat >= fraction * peak
    labels, count = ndimage.label(mask)
    if not count:
        return []
    masses = ndimage.sum(heat, labels, index=np.arange(1, count + 1))
    slices = ndimage.find_objects(labels)
    order = np.argsort(-masses)
    strongest = float(masses[order[0]])
    boxes = []
    for index in order[:max_boxes]:
        if masses[index] < min_mass_share * strongest:
            break
        rows, cols = slices[index]
        boxes.append((cols.start, rows.start, cols.stop, rows.stop))
    return boxes


def seen_square(width: int, height: int) -> tuple[float, float, float]:
    """(left, top, side) of the part of a `width` x `height` image a model sees: its centre
    square (`monalia.learning.image_decode.resize_and_crop`)."""
    side = min(width, height)
    return (width - side) / 2.0, (height - side) / 2.0, float(side)


def image_boxes(
    heat: np.ndarray,
    width: int,
    height: int,
    fraction: float = REGION_FRACTION,
    max_boxes: int = MAX_BOXES,
) -> list[Box]:
    """The detection's boxes in the pixels of a `width` x `height` image file."""
    map_side = heat.shape[-1]
    left, top, side = seen_square(width, height)
    scale = side / map_side
    found = []
    for x0, y0, x1, y1 in heat_boxes(heat, fraction, max_boxes):
        bx0 = max(0, min(width, round(left + x0 * scale)))
        by0 = max(0, min(height, round(top + y0 * scale)))
        bx1 = max(0, min(width, round(left + x1 * scale)))
        by1 = max(0, min(height, round(top + y1 * scale)))
        if bx1 > bx0 and by1 > by0:
            found.append(Box(bx0, by0, bx1 - bx0, by1 - by0))
    return found
