from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

from lipdub.audio.io import SAMPLE_RATE, load_audio, load_video_audio, resample, write_wav
from lipdub.errors import InputError, LipdubError
from lipdub.types import AudioTrack, VideoInfo


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spec))
    # parabolic interpolation around the peak bin
    if 0 < k < len(spec) - 1:
        a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k * sr / len(x)


def check_track(t: AudioTrack, dur: float, tol: float = 0.001) -> None:
    assert isinstance(t, AudioTrack)
    assert t.sample_rate == SAMPLE_RATE
    assert t.samples.dtype == np.float32 and t.samples.ndim == 1
    assert np.all(np.isfinite(t.samples)) and np.abs(t.samples).max() <= 1.0
    assert abs(t.duration - dur) <= tol, (t.duration, dur)


@pytest.mark.parametrize(
    "rate,bits,encoding",
    [(16000, 16, None), (44100, 24, None), (48000, 16, None), (8000, 16, None),
     (22050, 32, "floating-point"), (32000, 32, "signed-integer")],
)
def test_wav_rates_and_depths(media, rate, bits, encoding):
    path = media.sine(rate, bits=bits, dur=1.5, freq=1000.0, encoding=encoding)
    t = load_audio(path)
    check_track(t, 1.5)
    assert t.source == path
    assert abs(dominant_freq(t.samples, SAMPLE_RATE) - 1000.0) < 2.0
    # amplitude kept (sine at 0.5): RMS 0.5/sqrt(2)
    rms = float(np.sqrt(np.mean(t.samples[800:-800] ** 2)))
    assert abs(rms - 0.5 / np.sqrt(2)) < 0.01


def test_16k_wav_is_bit_exact(media):
    path = media.sine(16000, bits=16, dur=0.5)
    ref, sr = sf.read(str(path), dtype="float32")
    t = load_audio(path)
    assert sr == 16000
    np.testing.assert_array_equal(t.samples, ref)


def test_resampled_sine_keeps_frequency(media):
    for rate, freq in [(44100, 3000.0), (8000, 440.0), (48000, 7000.0)]:
        t = load_audio(media.sine(rate, dur=1.0, freq=freq))
        assert abs(dominant_freq(t.samples, SAMPLE_RATE) - freq) < 2.0, (rate, freq)


def test_stereo_is_mixed_to_mono(media):
    t = load_audio(media.stereo_left_only(48000))
    check_track(t, 1.0)
    peak = float(np.abs(t.samples[1000:-1000]).max())
    assert abs(peak - 0.25) < 0.01  # (0.5 + 0) / 2


def test_stereo_identical_channels_keep_level(media):
    t = load_audio(media.sine(44100, channels=2, dur=1.0, freq=440.0))
    assert abs(float(np.abs(t.samples[1000:-1000]).max()) - 0.5) < 0.01


@pytest.mark.parametrize(
    "ext,codec,tol",
    [("flac", None, 0.001), ("mp3", None, 0.03), ("m4a", ["-c:a", "aac"], 0.03),
     ("ogg", ["-c:a", "libvorbis"], 0.03)],
)
def test_compressed_formats(media, ext, codec, tol):
    t = load_audio(media.encoded(ext, codec))
    check_track(t, 2.0, tol)
    assert abs(dominant_freq(t.samples, SAMPLE_RATE) - 440.0) < 2.0


def test_audio_of_video(media):
    path = media.video(with_audio=True)
    t = load_audio(path)
    check_track(t, 2.0, 0.03)
    assert abs(dominant_freq(t.samples, SAMPLE_RATE) - 440.0) < 2.0
    v = load_video_audio(path)
    assert v is not None
    np.testing.assert_array_equal(v.samples, t.samples)
    info = VideoInfo(path=path, width=64, height=64, fps=Fraction(25), n_frames=50,
                     duration=2.0, has_audio=True)
    assert load_video_audio(info) is not None


def test_audio_of_a_probed_video_needs_no_second_probe(media, monkeypatch):
    from lipdub.audio import io
    from lipdub.media.probe import probe

    path = media.video(with_audio=True)
    info = probe(path)
    want = load_video_audio(path)

    def no_probe(p):
        raise AssertionError("probed again")

    monkeypatch.setattr(io, "_probe_audio_streams", no_probe)
    got = load_video_audio(info)
    np.testing.assert_array_equal(got.samples, want.samples)


def test_video_without_audio(media):
    path = media.video(with_audio=False)
    assert load_video_audio(path) is None
    info = VideoInfo(path=path, width=64, height=64, fps=Fraction(25), n_frames=50,
                     duration=2.0, has_audio=False)
    assert load_video_audio(info) is None
    with pytest.raises(InputError, match="no audio stream") as e:
        load_audio(path)
    assert str(path) in str(e.value)


def _one_line_error(path, match: str, **kw) -> InputError:
    with pytest.raises(InputError, match=match) as e:
        load_audio(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert isinstance(e.value, ValueError) and isinstance(e.value, LipdubError)
    return e.value


def test_missing_file(tmp_path):
    _one_line_error(tmp_path / "nope.wav", "no such file")


def test_directory(tmp_path):
    _one_line_error(tmp_path, "directory")


def test_corrupt_files(tmp_path, capfd):
    rng = np.random.default_rng(0)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    _one_line_error(garbage, "not a readable|no audio stream|cannot decode")
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 10)
    _one_line_error(text, "not a readable|no audio stream|cannot decode")
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no decoder chatter on the console


def test_truncated_header(tmp_path, media):
    src = media.sine(16000, dur=1.0).read_bytes()
    bad = tmp_path / "trunc.wav"
    bad.write_bytes(src[:30])  # header cut mid-way
    _one_line_error(bad, "not a readable|no audio stream|cannot decode|zero length|empty")


def test_zero_length(tmp_path, media):
    _one_line_error(media.empty_wav(), "zero length")
    zero = tmp_path / "zero.wav"
    zero.write_bytes(b"")
    _one_line_error(zero, "empty")


def test_shorter_than_a_frame(tmp_path):
    short = tmp_path / "short.wav"
    sf.write(str(short), np.full(480, 0.1, np.float32), 48000)  # 10 ms
    _one_line_error(short, "too short")
    ok = tmp_path / "ok.wav"
    sf.write(str(ok), np.full(1440, 0.1, np.float32), 48000)  # 30 ms: fine at 60 fps, not at 25
    assert len(load_audio(ok).samples) == 480
    _one_line_error(ok, "too short", fps=Fraction(25))


def test_silence_is_not_an_error(media):
    t = load_audio(media.silence(2.0))
    check_track(t, 2.0)
    assert not t.samples.any()


def test_float_wav_over_full_scale_and_nan(tmp_path):
    x = np.sin(2 * np.pi * 300 * np.arange(16000) / 16000).astype(np.float32) * 2.0
    x[100] = np.nan
    p = tmp_path / "hot.wav"
    sf.write(str(p), x, 16000, subtype="FLOAT")
    t = load_audio(p)
    assert np.all(np.isfinite(t.samples)) and np.abs(t.samples).max() <= 1.0
    assert np.abs(t.samples).max() > 0.99


def test_write_wav_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    x = (rng.uniform(-1.2, 1.2, 8000)).astype(np.float32)
    p = write_wav(AudioTrack(x, 16000), tmp_path / "out.wav")
    info = sf.info(str(p))
    assert info.subtype == "PCM_16" and info.samplerate == 16000 and info.channels == 1
    y, _ = sf.read(str(p), dtype="float32")
    np.testing.assert_allclose(y, np.clip(x, -1, 1), atol=1.0 / 32767)
    with pytest.raises(InputError, match="cannot write"):
        write_wav(AudioTrack(x, 16000), tmp_path / "no_such_dir" / "out.wav")


@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (48000, 16000), (8000, 16000),
                                          (22050, 16000), (11025, 16000), (16000, 44100)])
def test_resample_matches_scipy_resample_poly(sr_in, sr_out):
    from math import gcd

    from scipy.signal import resample_poly

    rng = np.random.default_rng(2)
    g = gcd(sr_in, sr_out)
    for n in (1, 7, 4999):
        x = rng.standard_normal(n).astype(np.float32) * 0.3
        ref = resample_poly(x.astype(np.float64), sr_out // g, sr_in // g)
        got = resample(x, sr_in, sr_out)
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=2e-5)


def test_loading_does_not_import_scipy_signal_or_torch(media, tmp_path):
    import subprocess
    import sys

    path = media.sine(44100, dur=0.5)
    code = (
        "import sys; from lipdub.audio.io import load_audio; t = load_audio(sys.argv[1]); "
        "print(t.sample_rate, 'scipy.signal' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    assert out == ["16000", "False", "False"]


def test_shared_data_audio(shared_audio):
    jfk = load_audio(shared_audio / "en_jfk.flac")
    check_track(jfk, 11.0, 0.01)
    teaser = load_audio(shared_audio / "en_teaser_45s.mp3")
    assert teaser.sample_rate == SAMPLE_RATE and 44.0 < teaser.duration < 47.0
    assert np.abs(teaser.samples).max() > 0.05
