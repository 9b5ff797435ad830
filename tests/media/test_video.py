"""Streamed decoding (frame-exact seeking, ping-pong order), encoding, muxing, atomic outputs."""
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from lipdub.errors import InputError
from lipdub.media import video as V
from lipdub.media.atomic import atomic_output, scratch_dir
from lipdub.media.mux import mux
from lipdub.media.probe import probe
from lipdub.types import AudioTrack
from tests.conftest import decode_all


def _clips(synth):
    return {"25": synth.video(rate="25"), "ntsc": synth.video(rate="30000/1001", audio=True),
            "ts": synth.transport_stream(), "vfr": synth.vfr(), "rotated": synth.rotated()}


@pytest.mark.parametrize("name", ["25", "ntsc", "ts", "vfr", "rotated"])
def test_seeking_is_frame_exact(synth, name):
    path = _clips(synth)[name]
    info = probe(path)
    full = decode_all(path)
    assert len(full) == info.n_frames
    assert full.dtype == np.uint8 and full.shape[1:] == (info.height, info.width, 3)
    # testsrc2 changes every frame, so a one-frame slip would show
    assert all(np.abs(full[i].astype(int) - full[i + 1]).mean() > 0.5 for i in range(len(full) - 1) if name != "vfr")
    for start in (1, info.n_frames // 2, info.n_frames - 2):
        got = list(V.iter_frames(info, start, start + 2))
        assert len(got) == 2
        np.testing.assert_array_equal(got[0], full[start])
        np.testing.assert_array_equal(got[1], full[start + 1])


def test_iter_frames_bounds_and_writable(synth):
    info = probe(synth.video())
    assert list(V.iter_frames(info, 5, 5)) == []
    frames = list(V.iter_frames(info, info.n_frames - 3, info.n_frames + 10))
    assert len(frames) == 3
    frames[0][0, 0] = 0  # renderers may write into frames


@pytest.mark.parametrize("policy_schedule", [
    lambda n: np.r_[np.arange(n), np.arange(n - 2, -1, -1), np.arange(1, n)],  # ping-pong
    lambda n: np.r_[np.arange(n), np.arange(n)],                                # loop
    lambda n: np.r_[np.arange(n), np.full(5, n - 1)],                          # freeze
    lambda n: np.array([3, 3, 2, 1, 9, 10, 0, 5, 4, 4, 3]),                    # anything
])
def test_read_frames_follows_schedule(synth, monkeypatch, policy_schedule):
    path = synth.video(rate="30000/1001", audio=True)
    info = probe(path)
    full = decode_all(path)
    monkeypatch.setattr(V, "BACKWARD_CHUNK_BYTES", info.width * info.height * 3 * 6)  # several chunks
    sched = policy_schedule(info.n_frames)
    out = list(V.read_frames(info, sched))
    assert len(out) == len(sched)
    for frame, i in zip(out, sched):
        np.testing.assert_array_equal(frame, full[i])


def test_read_frames_rejects_out_of_range(synth):
    info = probe(synth.video())
    with pytest.raises(ValueError):
        list(V.read_frames(info, [0, info.n_frames]))


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


def _smooth_frames(n, h, w):
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([(x * 2 + t) % 256, (y * 3) % 256, np.full_like(x, 90 + t)], -1).astype(np.uint8)
            for t in range(n)]


def test_writer_round_trip_keeps_pixels_rate_and_size(tmp_path):
    frames = _smooth_frames(12, 64, 96)
    out = tmp_path / "w.mp4"
    with V.VideoWriter(out, 96, 64, Fraction(30000, 1001), crf=12) as w:
        for f in frames:
            w.write(f)
    info = probe(out)
    assert (info.width, info.height, info.fps, info.n_frames) == (96, 64, Fraction(30000, 1001), 12)
    back = decode_all(out)
    assert _psnr(back, np.stack(frames)) > 38
    assert abs(back.astype(float).mean() - np.stack(frames).mean()) < 0.5  # no brightness drift


def test_decode_encode_preserves_source_yuv(synth, tmp_path):
    """Frames left alone come back as they were (the colour path adds no shift)."""
    src = synth.face_video(audio=False)
    info = probe(src)
    out = tmp_path / "copy.mp4"
    with V.VideoWriter(out, info.width, info.height, info.fps, crf=10, like=info) as w:
        for f in V.iter_frames(info):
            w.write(f)

    def yuv(p):
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(p), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                             capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).astype(np.float64)

    a, b = yuv(src), yuv(out)
    assert len(a) == len(b)
    assert abs((b - a).mean()) < 0.1
    assert _psnr(a, b) > 42


def test_writer_pads_odd_sizes(tmp_path):
    frames = _smooth_frames(3, 65, 97)
    out = tmp_path / "odd.mp4"
    with V.VideoWriter(out, 97, 65, 25) as w:
        for f in frames:
            w.write(f)
    info = probe(out)
    assert (info.width, info.height) == (98, 66)
    back = decode_all(out)
    assert _psnr(back[:, :65, :97], np.stack(frames)) > 35


def test_writer_rejects_wrong_frames_and_stops_ffmpeg(tmp_path):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError):
        with V.VideoWriter(out, 32, 32, 25) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            proc = w._proc
            w.write(np.zeros((16, 32, 3), np.uint8))
    assert proc.poll() is not None  # no ffmpeg left running


def test_truncated_video_is_an_input_error(synth, tmp_path):
    src = synth.video(seconds=2.0)
    fast = tmp_path / "fast.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-c", "copy", "-movflags", "+faststart", str(fast)],
                   check=True)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    info = probe(cut)  # the index is intact, the frames are not
    with pytest.raises(InputError, match="ends early"):
        list(V.iter_frames(info))


def test_mux_adds_aac_audio(synth, tmp_path):
    video = synth.video(rate="25", seconds=1.0)
    sr = 16000
    tone = AudioTrack((0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32), sr)
    out = tmp_path / "muxed.mp4"
    mux(video, tone, out)
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,duration",
                        "-of", "csv=p=0", str(out)], capture_output=True, text=True, check=True)
    rows = [line.split(",") for line in r.stdout.split()]
    assert ["h264", "video"] == rows[0][:2]
    assert rows[1][:2] == ["aac", "audio"] and float(rows[1][2]) == pytest.approx(1.0, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["muxed.mp4"]  # the temporary wav is gone


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_output_leaves_nothing_on_failure(tmp_path, exc):
    final = tmp_path / "out.mp4"
    final.write_bytes(b"old")
    with pytest.raises(exc):
        with atomic_output(final) as tmp:
            # hidden, beside the output, and never with a video suffix (a partial file is not a video)
            assert tmp.parent == tmp_path and tmp.name.startswith(".") and not tmp.name.endswith(".mp4")
            tmp.write_bytes(b"partial")
            raise exc()
    assert final.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_atomic_output_renames_on_success(tmp_path):
    final = tmp_path / "dir with space é" / "out.mp4"
    final.parent.mkdir()
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"
    assert [p.name for p in final.parent.iterdir()] == ["out.mp4"]


def test_scratch_dir_is_removed(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with scratch_dir(tmp_path / "x.mp4") as d:
            (d / "big.bin").write_bytes(b"1" * 100)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_writer_encodes_audio_in_the_same_pass(synth, tmp_path):
    out = tmp_path / "av.mp4"
    with V.VideoWriter(out, 96, 64, 25, audio=synth.wav(seconds=1.0)) as w:
        for f in _smooth_frames(25, 64, 96):
            w.write(f)
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,duration", "-of", "csv=p=0",
                        str(out)], capture_output=True, text=True, check=True)
    (vc, vd), (ac, ad) = [line.split(",") for line in r.stdout.split()]
    assert (vc, ac) == ("h264", "aac")
    assert float(vd) == pytest.approx(1.0, abs=0.01) and float(ad) == pytest.approx(1.0, abs=0.05)
