"""Thin-plate-spline warps, evaluated on a coarse grid (smooth, so a coarse grid is exact enough)
except across the mouth, where upper and lower lip move apart across a gap of a few pixels: no
smooth warp opens a 1 px gap to 3 px or shuts an open mouth's teeth away (part_lips does)."""
from __future__ import annotations

import numpy as np

EDGE = 0.5  # exemplar pixels kept between a lip sampled outside the mouth and its inner edge (soft)


def _u(r2: np.ndarray) -> np.ndarray:
    return r2 * np.log(np.maximum(r2, 1e-12))


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[M, N] squared distances between rows of a [M,2] and b [N,2]."""
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T, 0.0)


def tps_fit(src: np.ndarray, dst: np.ndarray, reg: float = 1e-3) -> tuple[np.ndarray, np.ndarray, float]:
    """Thin-plate spline mapping src [N,2] -> dst [N,2]: (scaled control points, coefficients
    [N+3, 2], scale)."""
    n = len(src)
    scale = max(np.ptp(src, 0).max(), 1e-6)
    s = src / scale
    L = np.zeros((n + 3, n + 3))
    L[:n, :n] = _u(_sqdist(s, s)) + reg * np.eye(n)
    L[:n, n] = L[n, :n] = 1.0
    L[:n, n + 1:] = s
    L[n + 1:, :n] = s.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = dst
    return s, np.linalg.solve(L, rhs), scale


def tps_eval(model, pts: np.ndarray) -> np.ndarray:
    """Evaluate a tps_fit model at pts [M,2] -> [M,2]."""
    ctrl, coef, scale = model
    p = pts / scale
    n = len(ctrl)
    return _u(_sqdist(p, ctrl)) @ coef[:n] + coef[n] + p @ coef[n + 1:]


def coarse_map(model, size: int, step: int = 8) -> tuple[np.ndarray, np.ndarray, int]:
    """The warp sampled every ``step`` pixels over [0, size]^2: (map_x, map_y) [g, g] float32."""
    g = np.arange(0, size + step, step, dtype=np.float64)
    gx, gy = np.meshgrid(g, g)
    out = tps_eval(model, np.c_[gx.ravel(), gy.ravel()])
    return out[:, 0].reshape(gx.shape).astype(np.float32), out[:, 1].reshape(gx.shape).astype(np.float32), step


def warp_maps(model, size: int, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The warp at every pixel of [0, size]^2, interpolated from a coarse grid: (map_x, map_y)
    [size + 1, size + 1] float32."""
    import cv2

    mx, my, step = coarse_map(model, size, step)
    up = np.array([[1.0 / step, 0, 0], [0, 1.0 / step, 0]])  # full pixel -> coarse grid, corners aligned
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return tuple(cv2.warpAffine(m, up, (size + 1, size + 1), flags=flags, borderMode=cv2.BORDER_REPLICATE)
                 for m in (mx, my))


def _curve(pts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y of the polyline through ``pts`` [N, 2] at ``x`` (ends held)."""
    o = np.argsort(pts[:, 0])
    return np.interp(x, pts[o, 0], pts[o, 1])


def part_lips(mx: np.ndarray, my: np.ndarray, box: tuple, tgt: tuple, ex: tuple) -> None:
    """Make the warp maps (output crop pixel -> exemplar pixel, [size + 1, size + 1], changed in
    place inside ``box``) part the lips where the target parts them. A smooth warp cannot squeeze
    an exemplar's open mouth into a target's shut one (its teeth show between the closed lips) nor
    open a shut one: between the target's inner lips, each column now samples the exemplar's
    mouth between its inner lips, top to bottom, and outside them never samples inside it.

    tgt, ex: (upper, lower) inner-lip polylines [N, 2] in output and exemplar pixels, each running
    from mouth corner to mouth corner."""
    x0, y0, x1, y1 = (int(np.clip(v, 0, n)) for v, n in zip(np.round(box), 2 * my.shape[::-1]))
    lo, hi = max(x0, int(np.ceil(tgt[0][:, 0].min()))), min(x1, int(np.floor(tgt[0][:, 0].max())) + 1)
    if hi <= lo or y1 <= y0:
        return
    cols = np.arange(lo, hi, dtype=np.float64)
    top, bot = _curve(tgt[0], cols), np.maximum(_curve(tgt[1], cols), _curve(tgt[0], cols))
    y = np.arange(y0, y1, dtype=np.float64)[:, None]
    t = (y - top) / np.maximum(bot - top, 1e-3)  # 0 at the target's upper inner lip, 1 at its lower
    sx = mx[y0:y1, lo:hi].astype(np.float64)
    sy = my[y0:y1, lo:hi].astype(np.float64)
    e_top, e_bot = _curve(ex[0], sx), _curve(ex[1], sx)
    e_bot = np.maximum(e_bot, e_top)
    my[y0:y1, lo:hi] = np.where(t <= 0, np.minimum(sy, e_top - EDGE),
                                np.where(t >= 1, np.maximum(sy, e_bot + EDGE), e_top + t * (e_bot - e_top)))
