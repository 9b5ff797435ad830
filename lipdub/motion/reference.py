"""Reference motion engine: lip shapes for new audio from the style reference, without weights.

The training-free form of the paper's audio-aware cross-attention: the reference's own
(audio, lips) pairs say how this speaker moves for given sounds. A ridge read-out fitted on the
reference maps audio context to the reference's principal lip motions (queries from the new
audio, keys and values from the reference); the result is rescaled to the speaker's own range
of motion, rests in the speaker's closed-mouth shape during silence, and is smoothed without lag.
When the reference has no usable speech (a still photo, a silent clip), a generic prior drives
the lips from the loudness of the 1-3 kHz band, which follows mouth opening in most speech.
"""
from __future__ import annotations

import numpy as np
from ..smooth import gaussian_smooth

from ..face.landmarks import LIPS, OUTER_LIPS, mouth_opening
from ..types import AudioFeatures, LipMotion, StylePack

CONTEXT = tuple(range(-6, 7, 2))  # frame offsets stacked as audio context
N_COMPONENTS = 8
RIDGE = 300.0  # regularisation, per 100 reference frames
# Band envelopes carry most of what predicts the lips; MFCCs only refine (tuned on ../shared/data).
FEATURE_WEIGHTS = (3.0,) * 8 + (0.2,) * 20
MIN_FRAMES = 40


CHUNK = 8192  # frames of audio context built at a time (an hour at 25 fps is 90k frames)


def context(feats: np.ndarray, offsets=CONTEXT, start: int = 0, stop: int | None = None) -> np.ndarray:
    """[T, D] -> rows start..stop of [T, D * len(offsets) + 1]: neighbouring frames
    (edge-clamped) and a bias."""
    T = len(feats)
    rows = np.arange(start, T if stop is None else min(stop, T))
    w = np.asarray(FEATURE_WEIGHTS, feats.dtype) if feats.shape[1] == len(FEATURE_WEIGHTS) else 1
    cols = [feats[np.clip(rows + o, 0, max(T - 1, 0))] * w for o in offsets]
    return np.concatenate(cols + [np.ones((len(rows), 1), feats.dtype)], 1)


def _ridge(feats: np.ndarray, ok: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Ridge read-out W from the audio context of the frames ``ok`` of ``feats`` [n, D] to C
    [ok.sum(), k], accumulated CHUNK frames at a time (memory independent of the length)."""
    D = feats.shape[1] * len(CONTEXT) + 1
    A = RIDGE * int(ok.sum()) / 100 * np.eye(D)
    B = np.zeros((D, C.shape[1]))
    i = 0
    for a in range(0, len(feats), CHUNK):
        X = context(feats, start=a, stop=a + CHUNK)[ok[a:a + CHUNK]]
        A += X.T @ X
        B += X.T @ C[i:i + len(X)]
        i += len(X)
    return np.linalg.solve(A, B)


def _usable(pack: StylePack) -> np.ndarray:
    ok = np.isfinite(pack.lips[:, 0, 0])
    if pack.feats.shape[1] == 0 or ok.sum() < MIN_FRAMES:
        return np.zeros_like(ok)
    op = mouth_opening(pack.lips[ok])
    if np.std(op) < 0.01:  # no lip motion to learn from
        return np.zeros_like(ok)
    return ok


def _gate(voiced: np.ndarray) -> np.ndarray:
    return np.clip(gaussian_smooth(voiced, 1.0), 0, 1)[:, None, None]


def predict(feats: AudioFeatures, pack: StylePack, smooth: float = 1.0) -> LipMotion:
    """LipMotion [T, 40, 2] for the frames of ``feats`` in the pack's canonical space."""
    ok = _usable(pack)
    if not ok.any():
        lips = generic(feats, pack)
    else:
        n = min(len(pack.feats), len(pack.lips))
        ok = ok[:n]
        Y = pack.lips[:n][ok].reshape(ok.sum(), -1).astype(np.float64)
        mean = Y.mean(0)
        _, s, vt = np.linalg.svd(Y - mean, full_matrices=False)
        k = min(N_COMPONENTS, len(s))
        comps = vt[:k]
        C = (Y - mean) @ comps.T
        W = _ridge(pack.feats[:n].astype(np.float64), ok, C)
        new = feats.feats.astype(np.float64)
        P = np.concatenate([context(new, start=a, stop=a + CHUNK) @ W for a in range(0, max(len(new), 1), CHUNK)])
        # ridge shrinks: give the prediction the speaker's own range of motion
        v = feats.voiced > 0.5
        ref_sd = C.std(0)
        pred_sd = P[v].std(0) if v.sum() > 5 else P.std(0)
        P = P.mean(0) + (P - P.mean(0)) * np.clip(ref_sd / np.maximum(pred_sd, 1e-9), 1.0, 3.0)
        lips = (mean + P @ comps).reshape(len(P), len(LIPS), 2)
    g = _gate(feats.voiced)
    lips = g * lips + (1 - g) * pack.rest_lips[None]
    if smooth:
        lips = gaussian_smooth(lips, smooth)
    return LipMotion(lips=lips.astype(np.float32), engine="reference")


def generic(feats: AudioFeatures, pack: StylePack) -> np.ndarray:
    """[T, 40, 2] lips from a built-in prior: the 1-3 kHz loudness opens the jaw and lips around
    the speaker's resting shape (used when the reference has no speech to learn from)."""
    rest = pack.rest_lips.astype(np.float64)
    env = feats.feats[:, 3:6].mean(1) if feats.feats.shape[1] >= 6 else np.zeros(len(feats))
    amount = np.clip(gaussian_smooth(env, 1.0) * 1.1 - 0.1, 0, 1.2)  # ~0..1 of a wide-open mouth
    width = np.ptp(rest[:, 0])
    open_dir = np.zeros_like(rest)
    lower = np.zeros(len(LIPS), bool)
    # points below the mouth's horizontal midline move down; corners move slightly inward
    mid_y = rest[:, 1].mean()
    lower[:] = rest[:, 1] > mid_y
    lower[LIPS.index(61)] = lower[LIPS.index(291)] = False
    inner = np.zeros(len(LIPS), bool)
    inner[len(OUTER_LIPS):] = True
    open_dir[lower, 1] = 0.45 * width
    open_dir[inner & ~lower, 1] -= 0.05 * width
    cx = rest[:, 0].mean()
    open_dir[:, 0] = -(rest[:, 0] - cx) * 0.12
    out = rest[None] + amount[:, None, None] * open_dir[None]
    return out
