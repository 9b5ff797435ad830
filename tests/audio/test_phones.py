from fractions import Fraction

import numpy as np
import pytest

from lipdub.audio import phones
from lipdub.audio.features import frame_features
from lipdub.audio.io import load_audio
from lipdub.types import AudioTrack


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction(2213, 100)])
def test_frame_times_follow_the_phones_with_the_lips_ahead(monkeypatch, fps):
    """Phones say shut for 1 s, then open: the frames turn open LEAD_S before 1 s, not later."""
    monkeypatch.setattr(phones, "available", lambda: True)
    monkeypatch.setattr(phones, "hop_openings", lambda x: np.r_[np.zeros(100), np.ones(200)].astype(np.float32))
    track = AudioTrack(np.zeros(48000, np.float32), 16000)
    n = int(3 * fps)
    op = phones.phone_opening(track, fps, n)
    assert op.shape == (n,) and op.dtype == np.float32
    t = np.arange(n) / float(fps)
    edge = 1.0 - phones.LEAD_S  # where the frames cross half-open
    margin = phones.WINDOW_S + 4 / float(fps)  # the window and the smoothing blur the step
    assert op[t < edge - margin].max() < 0.01
    assert op[t > edge + margin].min() > 0.99
    crossing = t[np.argmax(op >= 0.5)]
    assert abs(crossing - edge) <= 1 / float(fps)


@pytest.mark.parametrize("chunk_s", [phones.CHUNK_S, 0.7])
def test_recognised_speech_opens_and_silence_stays_shut(media, monkeypatch, chunk_s):
    """espeak-ng speech padded with 1 s of silence each side, decoded whole or in 0.7 s pieces."""
    monkeypatch.setattr(phones, "CHUNK_S", chunk_s)
    track = load_audio(media.speech())
    hop = phones.hop_openings(track.samples)
    assert len(hop) == len(track.samples) // 160
    assert hop[:80].max() == 0 and hop[-80:].max() == 0
    speech = hop[110:-110]
    assert speech.mean() > 0.25
    assert (speech == 0).mean() < 0.5  # mostly phones, not silence
    assert (speech >= 0.65).any() and (speech <= 0.15).any()  # open vowels and near closures


def test_without_the_recogniser_features_have_no_phones(media, monkeypatch):
    monkeypatch.setattr(phones, "available", lambda: False)
    track = load_audio(media.speech())
    f = frame_features(track, Fraction(25), 100, voiced=np.ones(100, np.float32), phones=True)
    assert f.phone_opening is None
    assert f.feats.shape == (100, 28)
