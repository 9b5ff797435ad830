"""Thin-plate-spline warps evaluated on a coarse grid (smooth, so a coarse grid is exact enough)."""
from __future__ import annotations

import numpy as np


def _u(r2: np.ndarray) -> np.ndarray:
    return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


def tps_fit(src: np.ndarray, dst: np.ndarray, reg: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Thin-plate spline mapping src [N,2] -> dst [N,2]; returns (control points, coefficients)."""
    n = len(src)
    scale = max(np.ptp(src, 0).max(), 1e-6)
    s = src / scale
    K = _u(((s[:, None] - s[None]) ** 2).sum(-1)) + reg * np.eye(n)
    P = np.c_[np.ones(n), s]
    L = np.zeros((n + 3, n + 3))
    L[:n, :n], L[:n, n:], L[n:, :n] = K, P, P.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = dst
    return s * 1.0, np.linalg.solve(L, rhs), scale


def tps_eval(model, pts: np.ndarray) -> np.ndarray:
    """Evaluate a tps_fit model at pts [M,2] -> [M,2]."""
    ctrl, coef, scale = model
    p = pts / scale
    U = _u(((p[:, None] - ctrl[None]) ** 2).sum(-1))
    n = len(ctrl)
    return U @ coef[:n] + coef[n] + p @ coef[n + 1:]


def coarse_map(model, size: int, step: int = 8) -> tuple[np.ndarray, np.ndarray, int]:
    """The warp sampled every ``step`` pixels over [0, size]^2: (map_x, map_y) [g, g] float32."""
    g = np.arange(0, size + step, step, dtype=np.float64)
    gx, gy = np.meshgrid(g, g)
    out = tps_eval(model, np.c_[gx.ravel(), gy.ravel()])
    return out[:, 0].reshape(gx.shape).astype(np.float32), out[:, 1].reshape(gx.shape).astype(np.float32), step
