"""A decoded picture kept as ffmpeg hands it over and the encoder takes it back: 8-bit I420
(limited-range BT.601), converted to RGB only where something looks at it.

A dub changes the lower face; the rest of every frame goes from decoder to encoder without a
conversion or a copy (at 4K the two full-frame conversions cost more than the mouth's rendering).
The helpers below take a YuvFrame or an RGB array [H, W, 3] alike. Frames are read-only: the same
picture may be handed out twice (a held frame, a ping-pong schedule); ``replaced`` copies.
"""
from __future__ import annotations

import cv2
import numpy as np


class YuvFrame:
    __slots__ = ("yuv", "height", "width", "_rgb")

    def __init__(self, yuv: np.ndarray):
        """``yuv``: uint8 [H * 3 / 2, W], the Y plane then U and V at half size (H and W even)."""
        self.yuv = yuv
        self.height, self.width = yuv.shape[0] * 2 // 3, yuv.shape[1]
        self._rgb = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, 3

    def rgb(self) -> np.ndarray:
        """The whole picture as RGB uint8 [H, W, 3] (converted once; treat it as read-only)."""
        if self._rgb is None:
            self._rgb = cv2.cvtColor(self.yuv, cv2.COLOR_YUV2RGB_I420)
        return self._rgb

    def _planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = self.height, self.width
        flat = self.yuv.reshape(-1)
        q = h * w // 4
        return (flat[:h * w].reshape(h, w), flat[h * w:h * w + q].reshape(h // 2, w // 2),
                flat[h * w + q:].reshape(h // 2, w // 2))

    def _even(self, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
        """The box grown to even corners (chroma is shared by 2x2 pixels), within the picture."""
        x0, y0 = max(0, x0 - x0 % 2), max(0, y0 - y0 % 2)
        return x0, y0, min(self.width, x1 + x1 % 2), min(self.height, y1 + y1 % 2)

    def _i420(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The planes of an even box packed as an I420 picture of its own."""
        y, u, v = self._planes()
        w, h = x1 - x0, y1 - y0
        out = np.empty((h * 3 // 2, w), np.uint8)
        flat = out.reshape(-1)
        q = h * w // 4
        flat[:h * w].reshape(h, w)[:] = y[y0:y1, x0:x1]
        flat[h * w:h * w + q].reshape(h // 2, w // 2)[:] = u[y0 // 2:y1 // 2, x0 // 2:x1 // 2]
        flat[h * w + q:].reshape(h // 2, w // 2)[:] = v[y0 // 2:y1 // 2, x0 // 2:x1 // 2]
        return out

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """RGB uint8 [y1 - y0, x1 - x0, 3] of a box inside the picture (a fresh array)."""
        if self._rgb is not None:
            return self._rgb[y0:y1, x0:x1].copy()
        ex0, ey0, ex1, ey1 = self._even(x0, y0, x1, y1)
        rgb = cv2.cvtColor(self._i420(ex0, ey0, ex1, ey1), cv2.COLOR_YUV2RGB_I420)
        return rgb[y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0]

    def replaced(self, x0: int, y0: int, rgb: np.ndarray) -> "YuvFrame":
        """A copy with the box at (x0, y0) painted with ``rgb`` (uint8 [h, w, 3]). Only that box
        (grown to even corners) is converted; every other pixel keeps its YUV values exactly."""
        h, w = rgb.shape[:2]
        ex0, ey0, ex1, ey1 = self._even(x0, y0, x0 + w, y0 + h)
        box = self.region(ex0, ey0, ex1, ey1)
        box[y0 - ey0:y0 - ey0 + h, x0 - ex0:x0 - ex0 + w] = rgb
        new = YuvFrame(self.yuv.copy())
        y, u, v = new._planes()
        i420 = cv2.cvtColor(box, cv2.COLOR_RGB2YUV_I420).reshape(-1)
        bh, bw = ey1 - ey0, ex1 - ex0
        q = bh * bw // 4
        y[ey0:ey1, ex0:ex1] = i420[:bh * bw].reshape(bh, bw)
        u[ey0 // 2:ey1 // 2, ex0 // 2:ex1 // 2] = i420[bh * bw:bh * bw + q].reshape(bh // 2, bw // 2)
        v[ey0 // 2:ey1 // 2, ex0 // 2:ex1 // 2] = i420[bh * bw + q:].reshape(bh // 2, bw // 2)
        return new


def as_rgb(frame) -> np.ndarray:
    """RGB uint8 [H, W, 3] of a YuvFrame or an RGB array (returned as it is)."""
    return frame.rgb() if isinstance(frame, YuvFrame) else frame


def region(frame, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """RGB of a box inside the picture (a view of an RGB array; a fresh array from a YuvFrame)."""
    return frame.region(x0, y0, x1, y1) if isinstance(frame, YuvFrame) else frame[y0:y1, x0:x1]


def paste(frame, x0: int, y0: int, rgb: np.ndarray):
    """A copy of ``frame`` (of its kind) with the box at (x0, y0) replaced by ``rgb``."""
    if isinstance(frame, YuvFrame):
        return frame.replaced(x0, y0, rgb)
    out = frame.copy()
    out[y0:y0 + rgb.shape[0], x0:x0 + rgb.shape[1]] = rgb
    return out


# A frame repeats the one before (a video made from fewer frames a second than it plays) when its
# luma changes by under HELD_CHANGE levels on average where the faces are (re-encoded copies of a
# held picture: 0.03-0.3; real frames of ../shared/data's clips: 0.7 and more) and by under
# HELD_SHARE of the larger change next to it: a repeat stands out against the real steps around
# it, while a slow zoom over a photo changes as little on every frame and is not one.
HELD_CHANGE = 0.3
HELD_SHARE = 0.25


def luma(frame, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """uint8 [y1 - y0, x1 - x0] brightness of a box: a YuvFrame's Y plane, an RGB array's grey."""
    if isinstance(frame, YuvFrame):
        return frame._planes()[0][y0:y1, x0:x1]
    return cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)


def change(a, b, box: tuple[int, int, int, int]) -> float:
    """Mean |change| of luma from picture ``b`` to ``a`` within ``box`` (x0, y0, x1, y1); inf when
    there is nothing to compare (no previous picture, another size, an empty box)."""
    if b is None or a.shape != b.shape:
        return float("inf")
    ya, yb = luma(a, *box)[::2, ::2], luma(b, *box)[::2, ::2]
    return float(np.abs(ya.astype(np.int16) - yb).mean()) if ya.size else float("inf")


def held(changes: np.ndarray) -> np.ndarray:
    """[T] bool: which frames repeat the one before, from each frame's ``change`` [T]."""
    c = np.asarray(changes, np.float64)
    prev, nxt = np.r_[np.inf, c[:-1]], np.r_[c[1:], np.inf]
    around = np.maximum(np.where(np.isfinite(prev), prev, 0), np.where(np.isfinite(nxt), nxt, 0))
    return (c < HELD_CHANGE) & (c < HELD_SHARE * around)


def same_picture(a, b) -> bool:
    """Whether two frames hold identical pixels (a coarse look first: most frames differ there)."""
    if b is None or type(a) is not type(b) or a.shape != b.shape:
        return False
    a, b = (a.yuv, b.yuv) if isinstance(a, YuvFrame) else (a, b)
    step = max(1, len(a) // 8)
    return np.array_equal(a[::step], b[::step]) and np.array_equal(a, b)


def warp(frame, m: np.ndarray, size: tuple[int, int], flags: int = cv2.INTER_LINEAR,
         border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """cv2.warpAffine(frame, m, size, ...) (m maps frame pixels to output pixels) that converts
    only the part of a YuvFrame the output reads (a margin of 3 pixels for cubic interpolation;
    borders beyond the picture as ``border`` makes them, as from the whole picture)."""
    if not isinstance(frame, YuvFrame) or frame._rgb is not None:
        return cv2.warpAffine(as_rgb(frame), m, size, flags=flags, borderMode=border)
    w, h = size
    inv = cv2.invertAffineTransform(np.asarray(m, np.float64))
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ inv.T
    x0, y0 = np.floor(corners.min(0)).astype(int) - 3
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 4
    x0, y0 = min(max(0, x0), frame.width - 1), min(max(0, y0), frame.height - 1)
    x1, y1 = max(min(frame.width, x1), x0 + 1), max(min(frame.height, y1), y0 + 1)
    shifted = np.asarray(m, np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ [x0, y0]
    return cv2.warpAffine(frame.region(x0, y0, x1, y1), shifted, size, flags=flags, borderMode=border)
