"""YuvFrame: RGB of a box, a painted box and a partial warp equal what the whole-picture
conversion gives; pixels outside a painted box keep their YUV values exactly."""
import cv2
import numpy as np
import pytest

from lipdub.media import frame as F


@pytest.fixture
def picture():
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur((rng.random((64, 96, 3)) * 255).astype(np.uint8), (5, 5), 0)
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    return F.YuvFrame(yuv), cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)


@pytest.mark.parametrize("box", [(0, 0, 96, 64), (3, 5, 40, 33), (10, 10, 11, 11), (95, 63, 96, 64)])
def test_region_is_the_whole_conversion_cut(picture, box):
    f, rgb = picture
    x0, y0, x1, y1 = box
    assert np.array_equal(f.region(x0, y0, x1, y1), rgb[y0:y1, x0:x1])
    assert f.shape == rgb.shape and np.array_equal(F.as_rgb(f), rgb)


def test_replaced_box_changes_only_that_box(picture):
    f, rgb = picture
    patch = np.full((9, 12, 3), (200, 30, 90), np.uint8)
    new = F.paste(f, 7, 5, patch)
    assert isinstance(new, F.YuvFrame) and new.yuv is not f.yuv
    want = rgb.copy()
    want[5:14, 7:19] = patch
    # the whole-picture path: paint the RGB picture, convert it back
    ref = cv2.cvtColor(want, cv2.COLOR_RGB2YUV_I420)
    y_new, y_ref, y_old = new.yuv[:64], ref[:64], f.yuv[:64]
    assert np.abs(y_new.astype(int) - y_ref).max() <= 1  # within rounding of the round trip
    outside = np.ones((64, 96), bool)
    outside[4:14, 6:20] = False  # the box grown to even corners
    assert np.array_equal(y_new[outside], y_old[outside])
    assert np.array_equal(new.yuv[64:], f.yuv[64:]) is False  # its chroma changed too
    assert np.abs(F.as_rgb(new)[6:13, 8:18].astype(int) - patch[0, 0]).max() <= 6
    assert np.array_equal(f.rgb(), rgb)  # the source is never changed


def test_paste_on_rgb_copies(picture):
    _, rgb = picture
    out = F.paste(rgb, 2, 3, np.zeros((4, 4, 3), np.uint8))
    assert out is not rgb and out[3:7, 2:6].max() == 0 and np.array_equal(out[10:], rgb[10:])


@pytest.mark.parametrize("flags", [cv2.INTER_LINEAR, cv2.INTER_CUBIC])
@pytest.mark.parametrize("m", [[[1.1, 0.2, -10.3], [-0.2, 1.1, 4.7]],   # inside the picture
                               [[2.0, 0.0, 30.0], [0.0, 2.0, 20.0]],    # past its top-left corner
                               [[0.5, 0.0, -40.0], [0.0, 0.5, -25.0]]])  # past its bottom-right
def test_partial_warp_equals_warp_of_the_whole(picture, m, flags):
    f, rgb = picture
    m = np.array(m)
    want = cv2.warpAffine(rgb, m, (40, 36), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    assert np.array_equal(F.warp(f, m, (40, 36), flags), want)
    assert np.array_equal(F.warp(rgb, m, (40, 36), flags), want)


def test_same_picture(picture):
    f, rgb = picture
    assert F.same_picture(f, F.YuvFrame(f.yuv.copy())) and F.same_picture(rgb, rgb.copy())
    changed = f.yuv.copy()
    changed[40, 50] ^= 1
    assert not F.same_picture(f, F.YuvFrame(changed))
    assert not F.same_picture(f, rgb) and not F.same_picture(f, None)


def test_held_tells_a_repeated_picture_from_a_new_one(picture):
    f, rgb = picture
    box = (8, 8, 88, 56)
    rng = np.random.default_rng(1)
    noisy = f.yuv.astype(np.int16) + (rng.random(f.yuv.shape) < 0.15) * rng.choice([-1, 1], f.yuv.shape)
    recoded = F.YuvFrame(np.clip(noisy, 0, 255).astype(np.uint8))  # codec noise on a held picture
    assert F.change(f, F.YuvFrame(f.yuv.copy()), box) == 0 and F.change(rgb, rgb.copy(), box) == 0
    assert F.change(recoded, f, box) < F.HELD_CHANGE
    assert F.change(F.YuvFrame(np.roll(f.yuv, 1, axis=1)), f, box) > F.HELD_CHANGE  # moved by a pixel
    assert F.change(f, None, box) == np.inf and F.change(f, F.YuvFrame(f.yuv[:48, :64].copy()), box) == np.inf
    # a repeat stands out against the real steps around it; a slow zoom changes little everywhere
    assert F.held([np.inf, 6.0, 0.1, 5.0, 0.0, 0.2, 7.0]).tolist() == [False, False, True, False, True, True, False]
    assert not F.held([np.inf, 0.12, 0.1, 0.11, 0.13]).any() and not F.held([np.inf, 0, 0, 0]).any()
