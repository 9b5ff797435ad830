"""Tiny synthetic talking-mouth data for tests and smoke runs: audio-like features that drive a lip
opening, and drawn mouth crops that follow it. Deterministic for a seed; no I/O."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from lipdub.face.landmarks import JAW, LIPS, N_POINTS, NOSE_BASE, NOSE_TIP, UPPER_BOUND
from lipdub.types import StylePack
from lipdub.train.motion import Clip

_ANGLES = np.linspace(0, 2 * np.pi, 20, endpoint=False)


def lips_for(opening: np.ndarray, width: float = 0.4) -> np.ndarray:
    """[T, 40, 2] canonical lips (outer ring, inner ring) for a [T] opening."""
    c, s = np.cos(_ANGLES), np.sin(_ANGLES)
    op = np.asarray(opening, np.float32)[:, None]
    outer = np.stack([width * c + 0 * op, 0.65 + (0.08 + op) * s], -1)
    inner = np.stack([0.8 * width * c + 0 * op, 0.65 + (0.005 + op) * s], -1)
    return np.concatenate([outer, inner], 1).astype(np.float32)


def synthetic_clip(T: int = 120, D: int = 12, seed: int = 0, speaker: str = "spk") -> Clip:
    """Smooth random features; the mouth opens with tanh of two of them while voiced."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    feats = np.sin(t * rng.uniform(0.05, 0.4, D) + rng.uniform(0, 6, D)).astype(np.float32)
    voiced = (np.sin(t[:, 0] * 0.07 + seed) > -0.5).astype(np.float32)
    opening = 0.05 * (1 + np.tanh(feats[:, 0] + feats[:, 1])) * voiced
    lips = lips_for(opening, width=0.4 + 0.03 * np.tanh(feats[:, 2:3])) + rng.normal(0, 0.002, (T, 40, 2))
    return Clip(feats, voiced, lips.astype(np.float32), speaker, f"synthetic{seed}")


def draw_crops(lips: np.ndarray, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """([K, S, S, 3] uint8 crops, [K, P, 2] crop points) of a skin patch with a dark mouth whose
    shape follows the [K, 40, 2] canonical lips (canonical -> crop: x*S + S/2, (y-0.45)*S + S/2)."""
    import cv2

    rng = np.random.default_rng(seed)
    K = len(lips)
    pts = np.zeros((K, N_POINTS, 2), np.float32) + size / 2
    crops = np.zeros((K, size, size, 3), np.uint8)
    for k in range(K):
        xy = np.stack([lips[k, :, 0] * size + size / 2, (lips[k, :, 1] - 0.45) * size + size / 2], -1)
        pts[k, LIPS] = xy
        pts[k, NOSE_BASE] = (size / 2, 0.35 * size)
        pts[k, UPPER_BOUND, 0] = np.linspace(0, size - 1, len(UPPER_BOUND))
        pts[k, UPPER_BOUND, 1] = 0.35 * size
        pts[k, NOSE_TIP] = (size / 2, 0.3 * size)
        u = np.linspace(0, 1, len(JAW))
        pts[k, JAW] = np.stack([u * (size - 1), (0.4 + 0.55 * np.sin(np.pi * u)) * size], -1)
        img = np.full((size, size, 3), (200, 150, 130), np.uint8) + rng.integers(0, 8, (size, size, 3), dtype=np.uint8)
        cv2.fillPoly(img, [np.round(xy[:20]).astype(np.int32)], (150, 60, 60))
        cv2.fillPoly(img, [np.round(xy[20:]).astype(np.int32)], (40, 10, 10))
        crops[k] = img
    return crops, pts


def synthetic_pack(T: int = 120, D: int = 12, seed: int = 0, n_crops: int = 8, size: int = 32) -> StylePack:
    clip = synthetic_clip(T, D, seed)
    idx = np.linspace(0, T - 1, n_crops).round().astype(np.int64)
    crops, pts = draw_crops(clip.lips[idx], size, seed)
    return StylePack(feats=clip.feats, voiced=clip.voiced, lips=clip.lips, pose=np.zeros((T, 3), np.float32),
                     rest_lips=lips_for(np.zeros(1))[0], template=np.zeros((N_POINTS, 2), np.float32),
                     crops=crops, crop_index=idx, crop_points=pts, fps=Fraction(25),
                     meta={"source": "synthetic", "crop_size": size,
                           "canon_to_crop": [[size, 0, size / 2], [0, size, size / 2 - 0.45 * size]]})
