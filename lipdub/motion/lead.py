"""The speaker's timing: how far their lips lead (or trail) the sound, read off the style reference.

Some speakers open the mouth well before the sound comes (the two Obama clips of ../shared/bench:
about 0.2 s), and some recordings carry a fixed offset between picture and sound. A model
trained on many speakers predicts the average timing, so such a speaker's real lips are shifted
against it by the same amount all through the video. The reference shows it: its own audio
gives a prediction (the model's generic path, without the reference's style) whose opening is
compared with the reference's real opening at each lead up to MAX_LEAD_S; the best lead, refined
between frames, moves the dub's motion by as much.

Measured on ../shared/bench's 54 directions (motion only, each half the other's reference):
mean r 0.464 -> 0.513; any maximum lead from 0.12 to 0.28 s and any MIN_R from 0.25 to 0.4 gave
0.49-0.51.
"""
from __future__ import annotations

import numpy as np

MAX_LEAD_S = 0.2
# The lead is trusted only where the reference's real opening follows the prediction this well at
# it; below, the reference says nothing about timing and the motion is not moved.
MIN_R = 0.3
MIN_FRAMES = 25
MAX_FRAMES = 3000  # the reference frames compared (the first ones; two minutes at 25 fps)


def lag_curve(predicted: np.ndarray, real: np.ndarray, max_lag: int) -> np.ndarray:
    """[2 max_lag + 1] Pearson r of ``real[t]`` with ``predicted[t + k]`` for k = -max_lag..max_lag
    (frames where either is not finite are left out; too few or a constant gives 0)."""
    out = np.zeros(2 * max_lag + 1)
    n = len(predicted)
    for i, k in enumerate(range(-max_lag, max_lag + 1)):
        a = predicted[max(k, 0):n + min(k, 0)]
        b = real[max(-k, 0):n - max(k, 0)]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 3 and a[ok].std() > 1e-9 and b[ok].std() > 1e-9:
            out[i] = np.corrcoef(a[ok], b[ok])[0, 1]
    return out


def estimate(predicted: np.ndarray, real: np.ndarray, fps: float) -> float:
    """Seconds by which the real opening leads the predicted one (negative: it trails), 0.0 when the
    two do not agree at any lead within MAX_LEAD_S (best r < MIN_R) or there are too few frames."""
    predicted = np.asarray(predicted, np.float64)[:MAX_FRAMES]
    real = np.asarray(real, np.float64)[:MAX_FRAMES]
    m = int(round(MAX_LEAD_S * fps))
    if min(len(predicted), len(real)) < max(MIN_FRAMES, 2 * m + 3) or m < 1:
        return 0.0
    r = lag_curve(predicted, real, m)
    b = int(np.argmax(r))
    if r[b] < MIN_R:
        return 0.0
    lead = float(b - m)
    if 0 < b < 2 * m:  # the parabola through the peak and its neighbours
        den = r[b - 1] - 2 * r[b] + r[b + 1]
        if den < 0:
            lead += 0.5 * (r[b - 1] - r[b + 1]) / den
    return lead / fps


def shifted(x: np.ndarray, frames: float) -> np.ndarray:
    """``x[t + frames]`` along axis 0 for every t (linear between frames, the ends held)."""
    x = np.asarray(x)
    if not frames or len(x) < 2:
        return x
    t = np.clip(np.arange(len(x)) + frames, 0, len(x) - 1)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (t - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return ((1 - w) * x[lo] + w * x[hi]).astype(x.dtype)
