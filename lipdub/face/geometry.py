"""Similarity transforms between frame pixels and canonical face space."""
import numpy as np


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity [2, 3] (scale, rotation, translation) mapping src [N,2] onto dst [N,2]."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s)
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ flip @ vt
    scale = (sig * np.diag(flip)).sum() / max((s ** 2).sum(), 1e-12)
    m = np.empty((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a [2,3] affine (or a stack [...,2,3] broadcast against [...,N,2]) to points."""
    return pts @ np.swapaxes(m[..., :, :2], -1, -2) + m[..., None, :, 2]


def invert(m: np.ndarray) -> np.ndarray:
    """Exact inverse of a [2,3] affine."""
    a = np.linalg.inv(m[:, :2])
    return np.concatenate([a, -(a @ m[:, 2])[:, None]], axis=1)


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine x -> a(b(x))."""
    return np.concatenate([a[:, :2] @ b[:, :2], (a[:, :2] @ b[:, 2] + a[:, 2])[:, None]], axis=1)


def scale_of(m: np.ndarray) -> np.ndarray:
    """Scale factor of similarity matrices [...,2,3] -> [...]."""
    return np.sqrt(np.abs(np.linalg.det(m[..., :, :2])))
