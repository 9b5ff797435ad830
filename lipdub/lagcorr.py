"""Pearson correlation of two per-frame signals, alone and at each shift of one against the other
(frames where either is not finite are left out): the lip-sync figures of `lipdub eval` and the
speaker's lead (lipdub.motion.lead) are both read off it."""
from __future__ import annotations

import numpy as np


def corr(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation over frames where both are finite; 0 when either is constant, None
    when fewer than 3 frames are comparable."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    x, y = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 1e-12 else 0.0


def at_lags(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """[2 max_lag + 1] corr(x[t + k], y[t]) for k = -max_lag..max_lag (NaN where fewer than 3
    frames compare). k > 0: x moves k frames after y."""
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    out = np.full(2 * max_lag + 1, np.nan)
    for i, k in enumerate(range(-max_lag, max_lag + 1)):
        c = corr(x[k:], y[:n - k]) if k >= 0 else corr(x[:n + k], y[-k:])
        if c is not None:
            out[i] = c
    return out
