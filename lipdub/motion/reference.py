"""Reference motion engine: lip shapes for new audio from the style reference, without weights.

The training-free form of the paper's audio-aware cross-attention: the reference's own
(audio, lips) pairs say how this speaker moves for given sounds. A ridge read-out fitted on the
reference maps audio context to the reference's principal lip motions (queries from the new
audio, keys and values from the reference); the result is rescaled to the speaker's own range
of motion, rests in the speaker's closed-mouth shape during silence, and is smoothed without lag.
Seconds of reference speech are too few to learn from alone, so the mouth opening is then
averaged with two speaker-independent priors read from the new audio: the opening typical of each
recognised phone (lipdub.audio.phones) and the loudness of the 1-3 kHz band, which follows mouth
opening in most speech. On ../shared/bench's 54 dubs the predicted opening (before rendering)
follows the real one at r = 0.333 with both priors, 0.325 with loudness alone and 0.285 with none;
the phones put the best lag within a frame of 0 in 52 % of the dubs, against 41 % without them.
When the reference has no usable speech (a still photo, a silent clip), the priors alone drive
the lips.
"""
from __future__ import annotations

import numpy as np
from ..smooth import gaussian_smooth

from ..face.landmarks import LIPS, LOWER_LIP, OUTER_LIPS, mouth_opening
from ..types import AudioFeatures, LipMotion, StylePack

CONTEXT = tuple(range(-6, 7, 2))  # frame offsets stacked as audio context
N_COMPONENTS = 8
RIDGE = 300.0  # regularisation, per 100 reference frames
# Band envelopes carry most of what predicts the lips; MFCCs only refine (tuned on ../shared/data).
FEATURE_WEIGHTS = (3.0,) * 8 + (0.2,) * 20
MIN_FRAMES = 40
MIN_OPENING_SD = 0.004  # canonical units: below this the reference mouth does not move (a still photo)
# weights of the standardised opening predictions averaged (reference read-out 1.0)
PHONE_WEIGHT = 1.0
ENVELOPE_WEIGHT = 0.5
# A rendered mouth shows about 0.8 of its target's change of opening (landmarks read off the
# dubbed frames of ../shared/bench, slope 0.82): targets get 1.25 times the speaker's spread so
# that the dubbed mouth opens as far as the speaker's own (bench open_std_ratio 0.90 -> 1.01).
RENDER_GAIN = 1.25


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
    if np.std(op) < MIN_OPENING_SD:  # no lip motion to learn from
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
        lips = _with_priors(lips, feats, pack.lips[:n][ok].astype(np.float64))
    g = _gate(feats.voiced)
    lips = g * lips + (1 - g) * pack.rest_lips[None]
    if smooth:
        lips = gaussian_smooth(lips, smooth)
    return LipMotion(lips=lips.astype(np.float32), engine="reference")


def _standard(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def _envelope(feats: AudioFeatures) -> np.ndarray:
    """[T] loudness of the 1-3 kHz band (zeros without band features)."""
    return feats.feats[:, 3:6].mean(1) if feats.feats.shape[1] >= 6 else np.zeros(len(feats))


def prior_opening(feats: AudioFeatures) -> np.ndarray:
    """[T] standardised mouth opening expected from the audio alone (phones and loudness)."""
    parts = [ENVELOPE_WEIGHT * _standard(gaussian_smooth(_envelope(feats), 1.0))]
    if feats.phone_opening is not None:
        parts.append(PHONE_WEIGHT * _standard(feats.phone_opening.astype(np.float64)))
    return sum(parts)


def _with_priors(lips: np.ndarray, feats: AudioFeatures, ref_lips: np.ndarray) -> np.ndarray:
    """[T,40,2] ``lips`` read from the reference, with their opening averaged with the audio
    priors: the opening changes along the reference's own lip motion per unit of opening (so the
    shape stays the speaker's), around the read-out's mean opening with the speaker's own spread
    (the read-out's is smaller: ridge and averaging both shrink it) times RENDER_GAIN."""
    op = mouth_opening(lips)
    if len(op) < 2 or op.std() < 1e-9:
        return lips
    mixed = _standard(_standard(gaussian_smooth(op, 1.0)) + prior_opening(feats))
    ref_op = mouth_opening(ref_lips)
    target = np.maximum(op.mean() + RENDER_GAIN * ref_op.std() * mixed, np.percentile(ref_op, 2))
    dy = ref_lips - ref_lips.mean(0)
    per_unit = np.tensordot(ref_op - ref_op.mean(), dy, 1) / max(((ref_op - ref_op.mean()) ** 2).sum(), 1e-12)
    return lips + (target - op)[:, None, None] * per_unit[None]


def generic(feats: AudioFeatures, pack: StylePack) -> np.ndarray:
    """[T, 40, 2] lips from the built-in priors: the 1-3 kHz loudness and the phones open the jaw
    and lips around the speaker's resting shape (used when the reference has no speech to learn from)."""
    rest = pack.rest_lips.astype(np.float64)
    amount = np.clip(gaussian_smooth(_envelope(feats), 1.0) * 1.1 - 0.1, 0, 1.2)  # ~0..1 of a wide-open mouth
    if feats.phone_opening is not None:
        amount = (amount + feats.phone_opening) / 2
    width = np.ptp(rest[:, 0])
    open_dir = np.zeros_like(rest)
    open_dir[LOWER_LIP, 1] = 0.35 * width  # the lower lip drops (a third of the width: a wide-open vowel)
    open_dir[len(OUTER_LIPS) + 11:, 1] = -0.05 * width  # the upper inner lip (corner excluded) lifts a little
    cx = rest[:, 0].mean()  # and the corners move slightly inward
    open_dir[:, 0] = -(rest[:, 0] - cx) * 0.12
    out = rest[None] + amount[:, None, None] * open_dir[None]
    return out
