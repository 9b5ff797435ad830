"""Exemplar renderer on a real face (scikit-image's astronaut photo, shipped in its wheel)."""
from fractions import Fraction

import numpy as np
import pytest

from lipdub.face.landmarks import NOSE_TIP, mouth_opening
from lipdub.render.exemplar import choose_exemplars


def test_viterbi_follows_exact_matches_and_prefers_continuity():
    rng = np.random.default_rng(0)
    ex = rng.normal(0, 0.2, (30, 40, 2))
    frames = np.arange(30)
    target = ex[[3, 4, 5, 6, 20, 21, 22]]
    path = choose_exemplars(target, np.zeros((7, 3)), ex, np.zeros((30, 3)), frames)
    assert list(path) == [3, 4, 5, 6, 20, 21, 22]
    # two exemplars equally good for frame 1: the one continuing frame 0's video wins
    ex2 = np.stack([ex[0], ex[1], ex[1]])
    path = choose_exemplars(np.stack([ex[0], ex[1]]), np.zeros((2, 3)), ex2, np.zeros((3, 3)), np.array([10, 50, 11]))
    assert list(path) == [0, 2]


def test_an_exemplar_shut_tighter_than_the_target_loses_to_one_open_wider():
    """Equally far in lip shape, the wider one wins: warping it shut keeps its lips; stretching
    a tighter one open would smear its lips over where the teeth should show."""
    from lipdub.face.landmarks import LOWER_LIP

    ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    ring = np.c_[0.5 * np.cos(ang), 0.2 * np.sin(ang)]
    base = np.concatenate([ring, ring * 0.6])

    def dropped(d):
        lips = base.copy()
        lips[LOWER_LIP, 1] += d
        return lips

    target = dropped(0.04)[None]
    ex = np.stack([dropped(0.02), dropped(0.06)])  # the tighter one first: it would win a tie
    path = choose_exemplars(target, np.zeros((1, 3)), ex, np.zeros((2, 3)), np.array([0, 100]))
    assert list(path) == [1]
    assert mouth_opening(ex[1]) > mouth_opening(target[0]) > mouth_opening(ex[0])


def test_the_jaw_drops_for_a_wider_mouth_and_never_rises():
    from lipdub.face.landmarks import CHIN, JAW
    from lipdub.render.exemplar import jaw_line

    jaw = np.c_[np.linspace(-50, 50, len(JAW)), 60 - np.abs(np.linspace(-50, 50, len(JAW))) * 0.5]
    np.testing.assert_array_equal(jaw_line(jaw, -8.0), jaw)  # a closing mouth: no chin above the old one
    lowered = jaw_line(jaw, 10.0) - jaw
    assert np.all(lowered[:, 0] == 0) and np.all(lowered[:, 1] >= 0)
    assert lowered[JAW.index(CHIN), 1] == lowered[:, 1].max() == pytest.approx(7.0)
    assert lowered[0, 1] < 0.1 * lowered[:, 1].max()  # the cheeks stay


@pytest.fixture(scope="module")
def astronaut_setup():
    skimage = pytest.importorskip("skimage")
    from lipdub.face.detect import Landmarker
    from lipdub.face.track import build_track
    from lipdub.style.pack import _Exemplars, _make_pack
    from lipdub.face.align import CropSpace
    from lipdub.face import geometry as G
    from lipdub.face.landmarks import EYES, RIGID
    from lipdub.types import VideoInfo

    img = np.ascontiguousarray(skimage.data.astronaut()[:300, 100:400])
    lm = Landmarker()
    dets = [lm(img) for _ in range(6)]
    lm.close()
    assert all(len(d) == 1 for d in dets)
    track = build_track(list(dets))  # build_track consumes the list it is given
    f = dets[0][0]
    space = CropSpace.from_template(track.template, float(np.linalg.norm(f[EYES[0]] - f[EYES[1]])))
    ex = _Exemplars()
    for t, d in enumerate(dets):
        to_crop = space.frame_to_crop(G.fit_similarity(d[0][RIGID], track.template[RIGID]))
        ex.add(t, space.warp_in(img, G.fit_similarity(d[0][RIGID], track.template[RIGID])), G.apply(to_crop, d[0]).astype(np.float32), d[0])
    return img, track, ex, space


@pytest.fixture
def astronaut_pack(astronaut_setup, tmp_path):
    """(photo, its face track, a style pack of six identical frames of it)."""
    from lipdub.style.pack import _make_pack
    from lipdub.types import VideoInfo

    img, track, ex, space = astronaut_setup
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x")
    info = VideoInfo(path=src, width=img.shape[1], height=img.shape[0], fps=Fraction(25), n_frames=6, duration=0.24)
    return img, track, _make_pack(info, track, ex, space, None, None)


def test_render_changes_only_the_lower_face(astronaut_pack):
    from lipdub.render import make_renderer
    from lipdub.types import LipMotion

    img, track, pack = astronaut_pack
    lips = np.repeat(pack.rest_lips[None], 6, 0).copy()
    lower = lips[0, :, 1] > lips[0, :, 1].mean()
    lips[3:, lower, 1] += 0.25  # open the mouth wide in frames 3-5
    r = make_renderer("reference", pack, track, LipMotion(lips), np.arange(6))
    out_closed, out_open = r.render(img, 0, 0), r.render(img, 4, 4)
    nose_y = int(track.points[0, NOSE_TIP, 1])
    np.testing.assert_array_equal(out_open[:nose_y - 2], img[:nose_y - 2])  # upper face untouched
    assert np.abs(out_open.astype(int) - img).max() > 40  # the mouth did change
    # the opened mouth shows a dark oral cavity below the teeth, which the closed one does not
    mouth = track.points[0, [13, 14]].mean(0).astype(int)
    y, x = mouth[1], mouth[0]
    box = (slice(y, y + 14), slice(x - 10, x + 11))
    dark = lambda img: np.percentile(img[box].mean(-1), 10)  # noqa: E731
    assert dark(out_open) < dark(out_closed) - 20


def test_frame_without_face_passes_through(astronaut_pack):
    from dataclasses import replace

    from lipdub.render import make_renderer
    from lipdub.types import LipMotion

    img, track, pack = astronaut_pack
    found = track.found.copy()
    found[2] = False
    r = make_renderer("reference", pack, replace(track, found=found), LipMotion(np.repeat(pack.rest_lips[None], 6, 0)), np.arange(6))
    assert r.render(img, 2, 2) is img


def _mouth(h=100, w=160):
    """Inner lips [20, 2] of an open mouth in a [h, w] image: lower lip (left to right), then the
    upper lip (right corner to left), the order lipdub.face.landmarks.INNER_LIPS gives."""
    xs = np.linspace(30, 130, 11)[:10]
    lower = np.c_[xs, 50 + 30 * np.sin(np.pi * (xs - 30) / 100)]
    ux = np.linspace(130, 30, 11)[:10]
    upper = np.c_[ux, 50 - 5 * np.sin(np.pi * (ux - 30) / 100)]
    return np.concatenate([lower, upper])


def test_synthesised_mouth_has_upper_teeth_over_a_dark_cavity():
    from lipdub.render.exemplar import ExemplarRenderer

    skin = np.zeros((100, 160, 3), np.float32) + (200, 150, 140)  # a shut photo mouth: lips and skin only
    out = ExemplarRenderer._synth_mouth(skin, _mouth(), keep=0.0)
    col = out[:, 80]
    top = int(np.ceil(45 + 1))  # just below the upper inner lip at the middle
    teeth, cavity = col[top + 3], col[top + 20]
    assert teeth.min() > 150 and np.ptp(teeth) < 40  # light and nearly colourless
    assert cavity.mean() < 80 and cavity[0] > cavity[2]  # dark, reddish
    assert np.array_equal(out[:10], skin[:10])  # nothing outside the mouth changes


def test_synthesised_mouth_keeps_the_photos_own_teeth():
    from lipdub.render.exemplar import ExemplarRenderer

    img = np.zeros((100, 160, 3), np.float32) + (200, 150, 140)
    img[44:58, 40:120] = (235, 232, 225)  # the photo shows its teeth in the top of the opening
    img[47:49, 40:120] = (120, 120, 118)  # with a darker line a painted band would cover
    out = ExemplarRenderer._synth_mouth(img, _mouth(), keep=0.3, teeth=False)
    assert np.allclose(out[48, 60:100], img[48, 60:100], atol=8)
    assert out[75, 80].mean() < 80  # the newly opened part below is the cavity


def test_shows_teeth():
    from lipdub.render.exemplar import shows_teeth

    inner = _mouth()
    xs = np.linspace(20, 140, 11)[:10]  # outer lips around the inner ones
    outer = np.concatenate([np.c_[xs, 50 + 38 * np.sin(np.pi * (xs - 20) / 120)],
                            np.c_[xs[::-1], 50 - 14 * np.sin(np.pi * (xs[::-1] - 20) / 120)]])
    lips = np.concatenate([outer, inner])
    img = np.zeros((100, 160, 3), np.uint8) + (170, 90, 90)  # red lips all over
    assert not shows_teeth(img, lips)  # a dark or lip-coloured inside: no teeth
    img[46:70, 35:125] = 235  # a light inside: teeth
    assert shows_teeth(img, lips)
    shut = lips.copy()
    shut[20:, 1] = 50  # inner lips together, the teeth still showing between them (a smile)
    assert shows_teeth(img, shut)
    img[46:70, 35:125] = (150, 60, 60)  # a dark lip line between shut lips: no teeth
    assert not shows_teeth(img, shut)


def test_the_mouth_holds_where_the_source_picture_is_held():
    from lipdub.render.exemplar import shown_frames

    held = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0], bool)  # a run of 3 is a freeze: it still talks
    assert shown_frames(np.arange(11), held).tolist() == [0, 1, 1, 3, 3, 3, 6, 7, 8, 9, 10]
    assert shown_frames(np.arange(11), None).tolist() == list(range(11))
    back = np.array([5, 4, 3, 2])  # played backwards (ping-pong): frame 5 repeats 4, and 3 repeats 2
    held = np.array([0, 0, 0, 1, 0, 1], bool)
    assert shown_frames(back, held).tolist() == [0, 0, 2, 2]
    assert shown_frames(np.array([0, 0, 1]), np.ones(3, bool), max_hold=2).tolist() == [0, 1, 2]  # no cadence


def test_a_clips_own_lips_render_back_onto_it(shared_data, tmp_path):
    """Drawn with its own lips, a real clip's mouth comes back as it was: the exemplars' points
    are the track's, so a frame's own mouth is not moved by the landmarker's jitter (mouth-box
    mean error 8.1 levels before, 1.1 after)."""
    import subprocess

    from lipdub.face.landmarks import LIPS
    from lipdub.media.probe import probe
    from lipdub.media.video import iter_frames
    from lipdub.render import make_renderer
    from lipdub.style.pack import analyse_video
    from lipdub.types import LipMotion

    cut = tmp_path / "cut.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(shared_data / "clips" / "styletalk_obama1.mp4"), "-t", "3",
                    "-an", "-c:v", "libx264", "-crf", "12", str(cut)], check=True)
    info = probe(cut)
    track, pack = analyse_video(info, None)
    r = make_renderer("reference", pack, track, LipMotion(pack.lips.copy()), np.arange(len(track)))
    errs = []
    for t, frame in enumerate(iter_frames(info)):
        p = track.points[t, LIPS]
        (x0, y0), (x1, y1) = p.min(0).astype(int) - 4, p.max(0).astype(int) + 4
        errs.append(np.abs(r.render(frame, t, t)[y0:y1, x0:x1].astype(float) - frame[y0:y1, x0:x1]).mean())
    assert np.mean(errs) < 2.5 and np.percentile(errs, 90) < 5.0
