from fractions import Fraction

import numpy as np
import pytest

from lipdub.errors import InputError
from lipdub.style import load_pack, save_pack
from lipdub.style.pack import FORMAT_VERSION
from lipdub.types import StylePack


def make_pack(n=30, k=5, s=32, seed=0, d=28):
    rng = np.random.default_rng(seed)
    return StylePack(
        feats=rng.normal(size=(n, d)).astype(np.float32), voiced=rng.uniform(size=n).astype(np.float32),
        lips=rng.normal(size=(n, 40, 2)).astype(np.float32), pose=rng.normal(size=(n, 3)).astype(np.float32),
        rest_lips=rng.normal(size=(40, 2)).astype(np.float32), template=rng.normal(size=(468, 2)).astype(np.float32),
        crops=(np.linspace(0, 200, s)[None, :, None, None] + rng.integers(0, 20, (k, s, s, 3))).astype(np.uint8).swapaxes(1, 2), crop_index=np.arange(k, dtype=np.int64) * 2,
        crop_points=rng.uniform(0, s, (k, 468, 2)).astype(np.float32), fps=Fraction(30000, 1001),
        meta={"version": FORMAT_VERSION, "canon_to_crop": [[10.0, 0, 16], [0, 10.0, 16]], "crop_size": s, "source": "x.mp4"})


def test_round_trip(tmp_path):
    pack = make_pack()
    p = save_pack(pack, tmp_path / "a.lipstyle")
    back = load_pack(p)
    for name in ("feats", "voiced", "lips", "pose", "rest_lips", "template", "crop_index", "crop_points"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pack, name))
    assert np.abs(back.crops.astype(int) - pack.crops).mean() < 8  # JPEG: lossy but close
    assert back.fps == Fraction(30000, 1001)
    assert back.meta["source"] == "x.mp4"
    assert not list(tmp_path.glob(".*part"))


def test_large_packs_keep_the_most_varied_exemplars(tmp_path):
    from lipdub.style.pack import diverse

    pts = np.r_[np.zeros((50, 2)), np.ones((50, 2)), [[5.0, 5.0]]]
    pick = diverse(pts, 3)
    assert {tuple(pts[i]) for i in pick} == {(0.0, 0.0), (1.0, 1.0), (5.0, 5.0)}


def test_other_version_is_a_clear_error(tmp_path):
    pack = make_pack()
    pack.meta["version"] = FORMAT_VERSION + 1
    p = save_pack(pack, tmp_path / "b.lipstyle")
    with pytest.raises(InputError, match="b.lipstyle.*version"):
        load_pack(p)


def test_not_a_pack(tmp_path):
    p = tmp_path / "c.lipstyle"
    p.write_bytes(b"nonsense")
    with pytest.raises(InputError, match="c.lipstyle: not a lipdub style pack"):
        load_pack(p)


def test_a_held_frame_is_analysed_once(synth, tmp_path, monkeypatch):
    """A photo's video (lipdub.media.still) repeats one frame: the landmarker sees it once, and
    every frame still gets the face; a moving video is looked at frame by frame."""
    from lipdub.face import detect
    from lipdub.media.probe import probe
    from lipdub.media.still import still_video
    from lipdub.style.pack import analyse_video

    calls = []
    real = detect.Landmarker.__call__
    monkeypatch.setattr(detect.Landmarker, "__call__", lambda self, frame: calls.append(1) or real(self, frame))
    track, _ = analyse_video(probe(still_video(synth.face_png(), 12, tmp_path)), None, want_pack=False)
    assert len(calls) == 1 and track.found.all() and len(track) == 12
    calls.clear()
    moving = probe(synth.face_video(seconds=0.5, audio=False))
    analyse_video(moving, None, want_pack=False)
    assert len(calls) == moving.n_frames
