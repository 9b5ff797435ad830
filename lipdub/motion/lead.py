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

from ..lagcorr import at_lags

MAX_LEAD_S = 0.2
# The lead is trusted only where the reference's real opening follows the prediction this well at
# it; below, the reference says nothing about timing and the motion is not moved.
MIN_R = 0.3
MIN_FRAMES = 25
MAX_FRAMES = 3000  # reference frames compared (stage1.speaker_lead takes the first ones: 2 min at 25 fps)


def estimate(predicted: np.ndarray, real: np.ndarray, fps: float) -> float:
    """Seconds by which the real opening leads the predicted one (negative: it trails), 0.0 when the
    two do not agree at any lead within MAX_LEAD_S (best r < MIN_R) or there are too few frames."""
    predicted, real = np.asarray(predicted, np.float64), np.asarray(real, np.float64)
    m = int(round(MAX_LEAD_S * fps))
    if min(len(predicted), len(real)) < max(MIN_FRAMES, 2 * m + 3) or m < 1:
        return 0.0
    r = np.nan_to_num(at_lags(predicted, real, m), nan=0.0)  # r of real[t] with predicted[t + lead]
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
