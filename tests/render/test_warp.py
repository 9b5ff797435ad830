import numpy as np

from lipdub.render.warp import coarse_map, tps_eval, tps_fit


def test_tps_interpolates_its_control_points_and_keeps_affine_maps():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (30, 2))
    dst = src + rng.normal(0, 3, (30, 2))
    m = tps_fit(src, dst, reg=1e-9)
    np.testing.assert_allclose(tps_eval(m, src), dst, atol=1e-4)
    a = np.array([[1.1, 0.2], [-0.1, 0.9]])
    m = tps_fit(src, src @ a.T + [5, -3])
    q = rng.uniform(0, 100, (50, 2))
    np.testing.assert_allclose(tps_eval(m, q), q @ a.T + [5, -3], atol=1e-3)


def test_coarse_map_of_identity():
    pts = np.array([[0, 0], [64, 0], [0, 64], [64, 64], [32, 20]], float)
    mx, my, step = coarse_map(tps_fit(pts, pts), 64)
    g = np.arange(0, 64 + step, step)
    np.testing.assert_allclose(mx, np.broadcast_to(g[None], mx.shape), atol=1e-3)
    np.testing.assert_allclose(my, np.broadcast_to(g[:, None], my.shape), atol=1e-3)
