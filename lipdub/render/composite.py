"""The compositor both engines share: where the lower face may change, a feathered mask that
follows the jaw line, colour matching along the border, and the blend into the source frame.
Outside the mask every source pixel is returned unchanged."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face import geometry as G
from ..face.landmarks import JAW, LIPS, NOSE_TIP, UPPER_BOUND
from ..media.frame import paste
from ..media.frame import region as box_of


@dataclass(frozen=True)
class Region:
    """poly: [N, 2] lower-face polygon in frame pixels; box: (x0, y0, x1, y1) of the ROI holding it."""

    poly: np.ndarray
    box: tuple

    @property
    def size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


def lower_face(tgt: np.ndarray, jaw: np.ndarray, crop_to_frame: np.ndarray, crop_size: int,
               frame_shape, pad: int = 4) -> Region | None:
    """The region to regenerate: below the cheek-nose line (never above the nose tip) and down to
    the lower of the source's jaw and the new jaw, a little outside them so no old chin shows.

    tgt: [468, 2] the source face in crop pixels; jaw: [len(JAW), 2] the new jaw line in crop
    pixels. Returns None when the region falls outside the frame."""
    jaw_low = np.maximum(jaw, tgt[JAW])
    centre = tgt[LIPS].mean(0)
    jaw_low = centre + (jaw_low - centre) * 1.06
    upper = tgt[UPPER_BOUND].copy()
    upper[:, 1] = np.maximum(upper[:, 1], tgt[NOSE_TIP, 1] + 0.03 * crop_size)
    poly = G.apply(crop_to_frame, np.concatenate([upper, jaw_low[::-1]]))
    H, W = frame_shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - pad
    x1, y1 = np.ceil(poly.max(0)).astype(int) + pad
    box = (max(x0, 0), max(y0, 0), min(x1, W), min(y1, H))
    if box[2] - box[0] < 4 or box[3] - box[1] < 4:
        return None
    return Region(poly=poly, box=box)


def feather(region: Region) -> np.ndarray:
    """[h, w] float32 mask in the ROI: 1 well inside the polygon, fading to 0 at its edge."""
    import cv2

    x0, y0, x1, y1 = region.box
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillPoly(mask, [np.round(region.poly - [x0, y0]).astype(np.int32)], 1.0)
    sig = max(1.0, float(np.linalg.norm(np.ptp(region.poly, 0))) / 40)
    r = max(1, int(2 * sig))
    inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1)))
    return cv2.GaussianBlur(inner, (0, 0), sig) * mask  # exactly 0 outside the polygon


def crop_to_roi(crop: np.ndarray, crop_to_frame: np.ndarray, region: Region) -> np.ndarray:
    """An [S, S, 3] crop resampled into the region's ROI (float32)."""
    import cv2

    m = crop_to_frame.copy()
    m[:, 2] -= region.box[:2]
    return cv2.warpAffine(crop, m, region.size, flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


class Compositor:
    """Blends regenerated ROIs into frames; the colour correction is smoothed over time."""

    def __init__(self, memory: float = 0.7):
        self.memory = memory
        self._offset = None

    @property
    def state(self) -> np.ndarray:
        """The running colour correction ([3], empty before the first blend): what a render
        restarted after frame t needs (``restore``) to go on exactly as if it had not stopped."""
        return np.zeros(0, np.float32) if self._offset is None else np.array(self._offset)

    def restore(self, state: np.ndarray) -> None:
        self._offset = np.array(state) if len(state) else None

    def match_colour(self, new: np.ndarray, old: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Shift ``new``'s colour to ``old``'s along the feathered border band."""
        sub = (slice(None, None, 2), slice(None, None, 2))  # every other pixel is plenty for a mean
        band = (mask[sub] > 0.02) & (mask[sub] < 0.7)
        if band.sum() < 10:
            return new
        off = old[sub][band].mean(0) - new[sub][band].mean(0)
        self._offset = off if self._offset is None else self.memory * self._offset + (1 - self.memory) * off
        return new + self._offset

    def blend(self, frame: np.ndarray, region: Region, new: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """frame (RGB or a YuvFrame; a new one of its kind) with ``new`` ([h, w, 3] float32 over the
        region's ROI) blended in."""
        x0, y0, x1, y1 = region.box
        mask = feather(region) if mask is None else mask
        old = box_of(frame, x0, y0, x1, y1).astype(np.float32)
        new = self.match_colour(new, old, mask)
        return paste(frame, x0, y0, np.clip(old + mask[..., None] * (new - old) + 0.5, 0, 255).astype(np.uint8))
