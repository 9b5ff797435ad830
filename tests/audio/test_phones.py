from fractions import Fraction

import numpy as np
import pytest

from lipdub.audio import phones
from lipdub.audio.features import frame_features
from lipdub.audio.io import load_audio
from lipdub.types import AudioTrack


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction(2213, 100)])
def test_frame_times_follow_the_recogniser_with_the_lips_ahead(monkeypatch, fps):
    """Silence for 1 s, then speech: the frames turn to speech LEAD_S before 1 s, not later."""
    monkeypatch.setattr(phones, "available", lambda: True)
    monkeypatch.setattr(phones, "hop_speech", lambda x: np.r_[np.zeros(100), np.ones(200)].astype(bool))
    track = AudioTrack(np.zeros(48000, np.float32), 16000)
    n = int(3 * fps)
    heard = phones.speech_frames(track, fps, n)
    assert heard.shape == (n,) and heard.dtype == np.float32
    t = np.arange(n) / float(fps)
    edge = 1.0 - phones.LEAD_S
    margin = phones.WINDOW_S + 4 / float(fps)  # the window and the smoothing blur the step
    assert heard[t < edge - margin].max() < 0.01
    assert heard[t > edge + margin].min() > 0.99
    assert abs(t[np.argmax(heard >= 0.5)] - edge) <= 1 / float(fps)


@pytest.mark.parametrize("chunk_s", [phones.CHUNK_S, 0.7])
def test_recognised_speech_is_speech_and_silence_is_not(media, monkeypatch, chunk_s):
    """espeak-ng speech padded with 1 s of silence each side, decoded whole or in 0.7 s pieces."""
    monkeypatch.setattr(phones, "CHUNK_S", chunk_s)
    track = load_audio(media.speech())
    hop = phones.hop_speech(track.samples)
    assert len(hop) == len(track.samples) // 160
    assert not hop[:80].any() and not hop[-80:].any()  # silence is no speech
    assert hop[110:-110].mean() > 0.5  # mostly phones, not silence


def test_without_the_recogniser_the_detector_decides(media, monkeypatch):
    monkeypatch.setattr(phones, "available", lambda: False)
    track = load_audio(media.speech())
    f = frame_features(track, Fraction(25), 100, voiced=np.zeros(100, np.float32), phones=True)
    assert f.speech_from == "vad" and not f.voiced.any()
    assert f.feats.shape == (100, 512)


@pytest.mark.parametrize("vad_share, rec_share, switch", [
    (0.0, 0.9, True), (0.2, 0.8, True), (0.2, 0.3, False), (0.35, 0.9, False), (0.8, 0.8, False), (0.0, 0.0, False)])
def test_speech_over_music_follows_the_phones(monkeypatch, vad_share, rec_share, switch):
    """Only where the detector hears almost no speech and the recogniser hears a lot."""
    n = 100
    rec = (np.arange(n) < rec_share * n).astype(np.float32)
    monkeypatch.setattr("lipdub.audio.features.speech_frames", lambda track, fps, n_frames: rec)
    monkeypatch.setattr("lipdub.audio.speech.encode", lambda w: np.zeros((1500, 512), np.float32))
    vad = (np.arange(n) < vad_share * n).astype(np.float32)
    track = AudioTrack(np.random.default_rng(0).normal(0, 0.1, 64000).astype(np.float32), 16000)
    f = frame_features(track, Fraction(25), n, voiced=vad, phones=True)
    assert f.speech_from == ("phones" if switch else "vad")
    np.testing.assert_array_equal(f.voiced, rec if switch else vad)


def test_real_speech_over_music_moves_the_mouth():
    """../shared/data's selfie_d12 has music under the speech: the detector hears almost none."""
    from pathlib import Path

    from lipdub.audio.io import load_video_audio

    clip = Path(__file__).resolve().parents[3] / "shared" / "data" / "clips" / "selfie_d12.mp4"
    if not clip.exists():
        pytest.skip("../shared/data is absent")
    track = load_video_audio(clip)
    n = int(track.duration * 25)
    f = frame_features(track, Fraction(25), n, phones=True)
    assert f.speech_from == "phones" and (f.voiced >= 0.5).mean() > 0.6
