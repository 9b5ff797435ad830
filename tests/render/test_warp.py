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


def _opened_gap(maps):
    """Dark rows down the middle of a 1 px mouth gap between two lips (the crop of a small
    face), warped by ``maps``."""
    import cv2

    img = np.full((96, 96, 3), 180, np.uint8)
    img[40:48] = img[49:57] = (150, 60, 60)
    img[48] = (20, 10, 10)
    out = cv2.remap(img, *maps, cv2.INTER_CUBIC).astype(float)
    return np.clip((90 - out[35:62, 48].mean(1)) / 77, 0, 1).sum()


def test_part_lips_opens_a_gap_of_a_few_pixels_as_wide_as_the_target():
    from lipdub.render.warp import part_lips, warp_maps

    xs = np.arange(30, 67, 4.0)
    rows = lambda *ys: np.concatenate([np.c_[xs, np.full_like(xs, y)] for y in ys])
    corners = np.array([[0, 0], [96, 0], [0, 96], [96, 96]], float)
    # the inverse map: output (target) pixel -> exemplar pixel; inner lips 1 px apart open to 3
    m = tps_fit(np.concatenate([rows(46.5, 49.5, 39, 58), corners]), np.concatenate([rows(47.5, 48.5, 40, 57), corners]))
    mx, my = warp_maps(m, 96)
    assert mx.shape == my.shape == (97, 97)
    assert _opened_gap((mx, my)) < 2.0  # interpolated from an 8 px grid, the gap barely opens
    part_lips(mx, my, (20, 30, 76, 66), (rows(46.5), rows(49.5)), (rows(47.5), rows(48.5)))
    assert _opened_gap((mx, my)) > 2.5


def test_part_lips_shuts_an_open_exemplar_and_opens_onto_its_mouth():
    """Teeth 5 px tall between the exemplar's lips: a target shut to a 0.5 px gap shows at most
    the one pixel row inside that gap (a smooth warp alone leaves 3 px of teeth between closed
    lips); a target open 8 px shows teeth over most of it."""
    import cv2

    from lipdub.render.warp import part_lips, warp_maps

    img = np.full((144, 144, 3), 180, np.uint8)
    img[60:68] = img[73:81] = (150, 60, 60)
    img[68:73] = 240  # the mouth's inside, its inner lips at y 67.5 and 72.5
    xs = np.arange(50, 95, 3.0)
    rows = lambda *ys: np.concatenate([np.c_[xs, np.full_like(xs, y)] for y in ys])
    corners = np.array([[0, 0], [144, 0], [0, 144], [144, 144]], float)
    box = (30, 40, 110, 100)

    def teeth(gap, part):
        m = tps_fit(np.concatenate([rows(70 - gap / 2, 70 + gap / 2, 59, 81), corners]),
                    np.concatenate([rows(67.5, 72.5, 60, 81), corners]))
        mx, my = warp_maps(m, 144)
        if part:
            part_lips(mx, my, box, (rows(70 - gap / 2), rows(70 + gap / 2)), (rows(67.5), rows(72.5)))
        out = cv2.remap(img, mx, my, cv2.INTER_CUBIC).astype(float)
        return np.clip((out[50:90, 72].mean(1) - 180) / 60, 0, 1).sum()

    assert teeth(0.5, part=False) > 2.5
    assert teeth(0.5, part=True) < 1.5
    assert teeth(8.0, part=True) > 6.5
