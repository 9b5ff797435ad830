"""Crop space: a square, upright, scale-normalised view of the lower face.

Every frame is mapped into the same crop through its canonical-space transform, so mouths of
different frames (and their exemplar images) line up pixel for pixel; the exact inverse maps a
rendered crop back into the frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import geometry as G
from .landmarks import CHIN, EYES, JAW, NOSE_TIP


@dataclass(frozen=True)
class CropSpace:
    """canon_to_crop: [2, 3] affine from canonical face space to crop pixels; size: S (pixels)."""

    canon_to_crop: np.ndarray
    size: int

    @classmethod
    def from_template(cls, template: np.ndarray, iod_px: float, oversample: float = 1.15,
                      min_size: int = 96, max_size: int = 320) -> "CropSpace":
        """Fit the crop box (nose tip to below the chin, jaw to jaw) of a [468, 2] template.

        iod_px: the face's typical inter-ocular distance in frame pixels, so that crop pixels
        are about as fine as frame pixels (times ``oversample``)."""
        jaw = template[JAW]
        top = template[NOSE_TIP, 1] - 0.05
        bottom = template[CHIN, 1] + 0.3 * (template[CHIN, 1] - template[NOSE_TIP, 1])
        x0, x1 = jaw[:, 0].min(), jaw[:, 0].max()
        side = max(x1 - x0, bottom - top) * 1.02
        cx, cy = (x0 + x1) / 2, (top + bottom) / 2
        iod = np.linalg.norm(template[EYES[0]] - template[EYES[1]])
        size = int(np.clip(round(side / iod * iod_px * oversample / 16) * 16, min_size, max_size))
        k = size / side
        m = np.array([[k, 0, size / 2 - k * cx], [0, k, size / 2 - k * cy]], np.float64)
        return cls(canon_to_crop=m, size=size)

    def frame_to_crop(self, to_canon: np.ndarray) -> np.ndarray:
        """[2, 3] affine from a frame's pixels to crop pixels."""
        return G.compose(self.canon_to_crop, to_canon.astype(np.float64))

    def crop_to_frame(self, to_canon: np.ndarray) -> np.ndarray:
        """Exact inverse of frame_to_crop."""
        return G.invert(self.frame_to_crop(to_canon))

    def warp_in(self, frame: np.ndarray, to_canon: np.ndarray) -> np.ndarray:
        """The crop [S, S, 3] of a frame (bicubic)."""
        import cv2

        return cv2.warpAffine(frame, self.frame_to_crop(to_canon), (self.size, self.size),
                              flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)

    def canon_to_pixels(self, pts: np.ndarray) -> np.ndarray:
        return G.apply(self.canon_to_crop, pts)
