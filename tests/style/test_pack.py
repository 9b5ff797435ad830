from fractions import Fraction

import numpy as np
import pytest

from lipdub.errors import InputError
from lipdub.style import load_pack, save_pack
from lipdub.style.pack import FORMAT_VERSION
from lipdub.types import StylePack


def make_pack(n=30, k=5, s=32, seed=0, d=512):
    rng = np.random.default_rng(seed)
    return StylePack(
        feats=rng.normal(size=(n, d)).astype(np.float16), voiced=rng.uniform(size=n).astype(np.float32),
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


def test_a_pack_of_an_older_lipdub_says_to_prepare_it_again(tmp_path):
    """Version 2 packs hold band-loudness features, not the Whisper states the motion model reads."""
    pack = make_pack(d=28)
    pack.meta["version"] = 2
    p = save_pack(pack, tmp_path / "old.lipstyle")
    with pytest.raises(InputError, match="old.lipstyle.*version 2.*Whisper.*prepare-style again"):
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


def _crafted(tmp_path, name, edit_meta=None, replace=None, drop=()):
    """A copy of a good pack with meta.json edited, members replaced or dropped."""
    import json
    import zipfile

    good = save_pack(make_pack(), tmp_path / "good.lipstyle")
    out = tmp_path / name
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            if item in drop:
                continue
            data = src.read(item)
            if item == "meta.json" and edit_meta:
                meta = json.loads(data)
                edit_meta(meta)
                data = json.dumps(meta).encode()
            dst.writestr(item, (replace or {}).get(item, data))
    return out


def _object_npy():
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (2,)})
    return buf.getvalue() + b"pickled things"


def _npy(arr):
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("case,words", [
    ("no_fps", "fps"), ("bad_jpeg", "crops/00001.jpg"), ("huge_count", "n_crops"), ("many_missing", "missing"),
    ("huge_size", "crop_size"), ("bad_shape", "lips.npy"), ("object_array", "feats.npy"),
    ("lying_header", "claims"), ("no_meta", "meta.json"), ("nan_rest", "rest_lips"), ("bad_index", "crop_index"),
    ("meta_list", "json object"), ("no_array", "pose.npy"), ("jpeg_size", "not 32x32"),
])
def test_crafted_packs_are_clear_input_errors(tmp_path, case, words):
    """A pack is untrusted: each field, shape and count is checked before anything is allocated;
    every problem is an InputError (exit 2) naming the pack and what is wrong."""
    import cv2

    big = np.lib.format.header_data_from_array_1_0(np.zeros((1, 40, 2), np.float32))
    big["shape"] = (10 ** 9, 40, 2)
    import io

    io_bytes = io.BytesIO()
    np.lib.format.write_array_header_1_0(io_bytes, big)
    hdr = io_bytes.getvalue() + b"\0" * 64
    cases = {
        "no_fps": dict(edit_meta=lambda m: m.pop("fps")),
        "bad_jpeg": dict(replace={"crops/00001.jpg": b"\xff\xd8 not really a jpeg"}),
        "huge_count": dict(edit_meta=lambda m: m.update(n_crops=10 ** 9)),
        "many_missing": dict(edit_meta=lambda m: m.update(n_crops=50)),
        "huge_size": dict(edit_meta=lambda m: m.update(crop_size=10 ** 6)),
        "bad_shape": dict(replace={"lips.npy": _npy(np.zeros((30, 3, 2), np.float32))}),
        "object_array": dict(replace={"feats.npy": _object_npy()}),
        "lying_header": dict(replace={"lips.npy": hdr}),
        "no_meta": dict(drop=("meta.json",)),
        "nan_rest": dict(replace={"rest_lips.npy": _npy(np.full((40, 2), np.nan, np.float32))}),
        "bad_index": dict(replace={"crop_index.npy": _npy(np.array([0, 2, 4, 6, 999]))}),
        "meta_list": dict(replace={"meta.json": b"[1, 2]"}),
        "no_array": dict(drop=("pose.npy",)),
        "jpeg_size": dict(replace={"crops/00000.jpg": cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()}),
    }
    p = _crafted(tmp_path, "speaker.lipstyle", **cases[case])
    with pytest.raises(InputError) as e:
        load_pack(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and len(msg.splitlines()) == 1, msg
    assert words.lower() in msg.lower(), msg


def test_crafted_pack_on_the_command_line(tmp_path, synth):
    from typer.testing import CliRunner

    from lipdub.cli import app

    p = _crafted(tmp_path, "speaker.lipstyle", edit_meta=lambda m: m.pop("fps"))
    r = CliRunner().invoke(app, ["run", str(synth.face_video()), "--audio", str(synth.wav()), "-o",
                                 str(tmp_path / "o.mp4"), "--style", str(p)])
    assert r.exit_code == 2, r.output
    line = [ln for ln in r.stderr.splitlines() if ln.strip()][-1]
    assert line.startswith(f"error: {p}: ") and "fps" in line and "internal error" not in line
