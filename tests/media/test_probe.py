"""probe(): exact frame rates, rotation, odd sizes, pixel formats, VFR, audio, bad files."""
from fractions import Fraction

import pytest

from lipdub.errors import InputError, LipdubError
from lipdub.media.probe import probe
from tests.conftest import decode_all


@pytest.mark.parametrize("rate", ["25", "30000/1001", "30", "2213/100"])
def test_exact_fraction_fps_and_frame_count(synth, rate):
    path = synth.video(rate=rate)
    info = probe(path)
    assert info.fps == Fraction(rate)
    assert not info.vfr
    assert (info.width, info.height) == (96, 64)
    assert info.n_frames == len(decode_all(path))
    assert info.duration == pytest.approx(info.n_frames / float(info.fps), abs=0.05)


def test_audio_stream_detected(synth):
    assert probe(synth.video(audio=True)).has_audio
    assert not probe(synth.video(audio=False)).has_audio


def test_rotation_swaps_display_size(synth):
    info = probe(synth.rotated())
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (64, 96)
    frames = decode_all(synth.rotated())
    assert frames.shape[1:] == (96, 64, 3)


@pytest.mark.parametrize("pix_fmt,size", [("yuv444p", "853x480"), ("yuv420p10le", "96x64")])
def test_odd_size_and_high_bit_depth(synth, pix_fmt, size):
    path = synth.video(size=size, pix_fmt=pix_fmt, seconds=0.4)
    info = probe(path)
    w, h = map(int, size.split("x"))
    assert (info.width, info.height, info.pix_fmt) == (w, h, pix_fmt)
    frames = decode_all(path)
    assert frames.shape == (info.n_frames, h, w, 3)
    assert frames.std() > 10  # real pictures, not a blank


def test_variable_frame_rate(synth):
    info = probe(synth.vfr())
    assert info.vfr
    assert 20 <= float(info.fps) <= 30
    assert len(decode_all(synth.vfr())) == info.n_frames  # decoded at the constant rate info.fps


def _one_line(err: Exception, *words: str):
    msg = str(err)
    assert "\n" not in msg
    for w in words:
        assert w.lower() in msg.lower(), msg


def test_missing_file(tmp_path):
    p = tmp_path / "nope.mp4"
    with pytest.raises(InputError) as e:
        probe(p)
    _one_line(e.value, str(p), "no such file")


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError) as e:
        probe(p)
    _one_line(e.value, str(p), "not a readable video")


def test_audio_only_file_has_no_video_stream(synth):
    p = synth.wav()
    with pytest.raises(InputError) as e:
        probe(p)
    _one_line(e.value, str(p), "no video stream")


def test_truncated_file(synth, tmp_path):
    data = synth.video(audio=True).read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])  # moov atom at the end is lost
    with pytest.raises(InputError) as e:
        probe(p)
    _one_line(e.value, str(p))


def test_empty_file_and_folder(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        probe(empty)
    with pytest.raises(InputError, match="folder"):
        probe(tmp_path)


def test_still_image_is_not_a_video(synth):
    with pytest.raises(LipdubError, match="still image"):
        probe(synth.face_png())


def test_video_stream_after_the_audio_stream(synth, tmp_path):
    src = synth.video(audio=True)
    swapped = tmp_path / "audio first.mp4"
    from tests.conftest import ffmpeg

    ffmpeg("-i", str(src), "-map", "0:a", "-map", "0:v", "-c", "copy", str(swapped))
    info = probe(swapped)
    assert info.has_audio and (info.width, info.height) == (96, 64)
    assert (decode_all(swapped) == decode_all(src)).all()
