import numpy as np

from lipdub.face import geometry as G
from lipdub.face.align import CropSpace
from lipdub.face.landmarks import EYES, RIGID


def _template():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1.5, 2.0, (468, 2))
    pts[EYES[0]], pts[EYES[1]] = (-0.5, 0.0), (0.5, 0.0)
    pts -= pts[RIGID].mean(0)
    return pts


def test_similarity_fit_recovers_transform():
    src = np.random.default_rng(1).normal(size=(30, 2))
    ang, s, t = 0.3, 2.5, np.array([10.0, -4.0])
    R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = s * src @ R.T + t
    m = G.fit_similarity(src, dst)
    np.testing.assert_allclose(G.apply(m, src), dst, atol=1e-9)
    np.testing.assert_allclose(G.apply(G.invert(m), dst), src, atol=1e-9)


def test_crop_then_paste_is_exact_inverse():
    tmpl = _template()
    space = CropSpace.from_template(tmpl, iod_px=60)
    to_canon = G.fit_similarity(tmpl * 60 + [200, 150], tmpl)
    pts = np.random.default_rng(2).uniform(0, 400, (50, 2))
    there = G.apply(space.frame_to_crop(to_canon), pts)
    back = G.apply(space.crop_to_frame(to_canon), there)
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_warp_in_samples_the_right_pixels():
    tmpl = _template()
    space = CropSpace.from_template(tmpl, iod_px=40, oversample=1.0)
    to_canon = G.fit_similarity(tmpl * 40 + [160, 120], tmpl)
    yy, xx = np.mgrid[0:300, 0:320].astype(np.float32)
    frame = np.stack([xx * 0.5, yy * 0.5, (xx + yy) * 0.25], -1).astype(np.uint8)  # smooth ramps
    crop = space.warp_in(frame, to_canon)
    back = G.apply(space.crop_to_frame(to_canon), np.array([[space.size / 2, space.size / 2]]))[0]
    c = space.size // 2
    np.testing.assert_allclose(crop[c, c].astype(float), frame[int(round(back[1])), int(round(back[0]))].astype(float), atol=2)
