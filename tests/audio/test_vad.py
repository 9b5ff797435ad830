from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from lipdub.audio import vad
from lipdub.audio.io import load_audio
from lipdub.errors import InputError
from lipdub.types import AudioTrack

SR = 16000


@pytest.fixture
def energy_backend():
    vad._reset_backend_for_tests(force_energy=True)
    yield
    vad._reset_backend_for_tests()


@pytest.fixture(scope="module")
def speech(media) -> AudioTrack:
    """espeak-ng speech with exactly 1 s of silence before and after."""
    return load_audio(media.speech())


def _check_speech_vs_silence(v: np.ndarray, fps: float, dur: float) -> None:
    t = np.arange(len(v)) / fps
    # silent parts, leaving room for pre-roll / hangover and espeak's own leading/trailing quiet
    silent = (t < 0.8) | ((t > dur - 0.7) & (t < dur))
    talking = (t > 1.3) & (t < dur - 1.3)
    assert v[silent].max() < 0.5, v[silent]
    assert v[silent].mean() < 0.1
    assert np.mean(v[talking] >= 0.5) > 0.8
    assert v[talking].mean() > 0.7


def test_backend_is_silero():
    assert vad.vad_backend() == "silero-onnx"
    assert vad.vad_note() is None


def test_speech_flanked_by_silence(speech):
    n = int(np.ceil(speech.duration * 25))
    v = vad.voice_activity(speech, Fraction(25), n)
    assert v.shape == (n,) and v.dtype == np.float32
    assert v.min() >= 0.0 and v.max() <= 1.0
    _check_speech_vs_silence(v, 25.0, speech.duration)
    assert not vad.is_silent(speech)


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction("22.13"), 22.13,
                                 "30000/1001", 60, Fraction(10)])
def test_frame_alignment_gives_n_frames(speech, fps):
    f = Fraction(str(fps)) if not isinstance(fps, Fraction) else fps
    n = int(speech.duration * f)
    for count in (n, n + 17, 3, 1):  # also longer than the audio and very short
        v = vad.voice_activity(speech, fps, count)
        assert v.shape == (count,) and v.dtype == np.float32
    v = vad.voice_activity(speech, fps, n + 17)
    assert np.all(v[n + 2 :] < 0.5)  # past the end of the audio: silence
    _check_speech_vs_silence(vad.voice_activity(speech, fps, n), float(f), speech.duration)


def test_frame_times_are_exact():
    """A window-level step at exactly 2.0 s lands on frame boundary 2 * fps."""
    values = np.zeros(125, np.float64)  # 125 windows * 32 ms = 4 s
    values[62:] = 1.0  # 62.5 windows = 2.0 s is not a window edge: half of window 62
    values[62] = 0.5
    for fps in (Fraction(25), Fraction(50), Fraction(30000, 1001)):
        n = int(4 * fps)
        m = vad._frame_means(values, fps, n)
        edge = 2 * fps
        t = np.arange(len(m))
        before = t + 1 <= edge  # frames that end by 2.0 s
        after = t >= edge  # frames that start at or after 2.0 s
        np.testing.assert_allclose(m[before & (t + 1 < edge - 1)], 0.0, atol=1e-9)
        np.testing.assert_allclose(m[after & (t > edge + 1)], 1.0, atol=1e-9)
        # area preserved: frames cover [0, n / fps) s, of which everything after 2.0 s is 1
        assert abs(m.sum() - (n - 2.0 * float(fps))) < 1e-6


def test_zero_frames_and_bad_args(speech):
    assert vad.voice_activity(speech, 25, 0).shape == (0,)
    for fps in (0, -25, "abc", None):
        with pytest.raises(InputError):
            vad.voice_activity(speech, fps, 10)
    for n in (-1, 2.5):
        with pytest.raises(InputError):
            vad.voice_activity(speech, 25, n)


def test_empty_track():
    v = vad.voice_activity(AudioTrack(np.zeros(0, np.float32), SR), 25, 5)
    np.testing.assert_array_equal(v, np.zeros(5, np.float32))
    assert vad.is_silent(AudioTrack(np.zeros(0, np.float32), SR))


def test_silence_and_quiet_noise_are_silent():
    assert vad.is_silent(AudioTrack(np.zeros(SR * 2, np.float32), SR))
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(SR * 2) * 10 ** (-70 / 20)).astype(np.float32)
    assert vad.is_silent(AudioTrack(hiss, SR))
    v = vad.voice_activity(AudioTrack(np.zeros(SR * 2, np.float32), SR), 25, 50)
    assert v.max() < 0.1


def test_other_sample_rate_is_resampled(speech):
    from lipdub.audio.io import resample

    x48 = resample(speech.samples, SR, 48000)
    a = vad.voice_activity(speech, 25, 100)
    b = vad.voice_activity(AudioTrack(x48, 48000), 25, 100)
    assert np.mean((a >= 0.5) == (b >= 0.5)) > 0.95


def test_hysteresis_and_hangover():
    w = vad.WINDOW_S
    p = np.zeros(100, np.float32)
    p[20:50] = 0.9
    p[35] = 0.1  # one-window dip inside speech: no split
    p[70] = 0.6  # a lone 32 ms blip: dropped
    gate = vad._speech_gate(p)
    pre = round(vad.PRE_ROLL_S / w)
    post = round(vad.HANGOVER_S / w)
    assert pre >= 1 and post >= 2
    expected = np.zeros(100, bool)
    expected[20 - pre : 50 + post] = True
    np.testing.assert_array_equal(gate, expected)
    # a long pause does split (and is not bridged when longer than the hangover + pre-roll)
    p2 = np.zeros(100, np.float32)
    p2[10:30] = 0.9
    p2[50:70] = 0.9
    g2 = vad._speech_gate(p2)
    assert g2[15] and g2[60] and not g2[40]
    # values between the thresholds keep speech going but do not start it
    p3 = np.full(60, 0.4, np.float32)
    assert not vad._speech_gate(p3).any()
    p3[5:10] = 0.9
    assert vad._speech_gate(p3)[5:60].all()


def test_no_chatter_on_frames(speech):
    """Speech decisions never flip on and off within 3 frames at 30 fps."""
    v = vad.voice_activity(speech, Fraction(30000, 1001), int(speech.duration * 30))
    on = (v >= 0.5).astype(int)
    flips = np.flatnonzero(np.diff(on))
    assert len(flips) >= 2
    assert np.diff(flips).min() >= 3


def _reference_stream_probs(model_path, x: np.ndarray) -> np.ndarray:
    """Silero's streaming recipe, written out plainly: for each 512-sample window, feed
    [previous 64 input samples (zeros at first), window] and carry the recurrent state."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    padded = np.concatenate([np.zeros(64, np.float32), x, np.zeros(-len(x) % 512, np.float32)])
    out = []
    for i in range(0, len(padded) - 64, 512):
        chunk = padded[i : i + 64 + 512][None, :]
        p, state = sess.run(None, {"input": chunk, "state": state,
                                   "sr": np.array(16000, np.int64)})
        out.append(float(p[0, 0]))
    return np.array(out, np.float32)


def test_model_matches_silero_streaming_recipe(speech):
    data = vad._silero_data_dir()
    stream = data / "silero_vad.onnx"
    if not stream.is_file():
        pytest.skip("this silero-vad does not ship silero_vad.onnx")
    x = speech.samples[: SR * 3 + 100]  # not a whole number of windows
    ref = _reference_stream_probs(stream, x)
    assert ref.max() > 0.9 and ref[:20].max() < 0.2
    got = vad.window_probabilities(AudioTrack(x, SR))
    assert got.shape == ref.shape == (int(np.ceil(len(x) / 512)),)
    np.testing.assert_allclose(got, ref, atol=1e-4)  # the backend in use (sequence export)
    for path, seq in ((data / "silero_vad_16k_sequence.onnx", True), (stream, False)):
        if path.is_file():
            np.testing.assert_allclose(vad._SileroModel(path, sequence=seq).probs(x), ref,
                                       atol=1e-4)


def test_energy_fallback(energy_backend, speech):
    assert vad.vad_backend() == "energy"
    assert vad.vad_note()
    n = int(speech.duration * 25)
    v = vad.voice_activity(speech, 25, n)
    assert v.shape == (n,)
    _check_speech_vs_silence(v, 25.0, speech.duration)
    assert vad.is_silent(AudioTrack(np.zeros(SR, np.float32), SR))
    assert not vad.is_silent(speech)


def test_a_minute_at_29_97_fps(speech):
    """60 s of speech at 30000/1001 fps: one value per frame, speech found throughout (speed is
    the benchmark's to judge, not a timed assertion's)."""
    x = np.tile(speech.samples, int(np.ceil(60 / speech.duration)))[: 60 * SR]
    v = vad.voice_activity(AudioTrack(x, SR), Fraction(30000, 1001), 1798)
    assert v.shape == (1798,) and (v >= 0.5).mean() > 0.3


def test_no_torch_import():
    code = (
        "import sys, numpy as np; from lipdub.audio import vad; from lipdub.types import AudioTrack; "
        "v = vad.voice_activity(AudioTrack(np.zeros(16000, np.float32), 16000), 25, 25); "
        "print(vad.vad_backend(), len(v), 'torch' in sys.modules, 'silero_vad' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.split() == ["silero-onnx", "25", "False", "False"]
    assert proc.stderr == ""  # library code stays quiet (no onnxruntime warnings either)


def test_shared_data_vad(shared_audio):
    for name in ("en_jfk.flac", "en_teaser_45s.mp3"):
        track = load_audio(shared_audio / name)
        n = int(track.duration * 25)
        v = vad.voice_activity(track, 25, n)
        assert v.shape == (n,)
        assert 0.5 < np.mean(v >= 0.5) < 1.0, name
        assert not vad.is_silent(track)
