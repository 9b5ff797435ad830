"""Length policies: which source frame each output frame shows, and how much audio is kept."""
from fractions import Fraction

import numpy as np
import pytest

from lipdub.errors import InputError
from lipdub.length import POLICIES, fit_audio, frames_for_samples, plan, samples_for_frames, schedule

SR = 16000


def test_pingpong_bounces_without_doubling_the_turning_frames():
    idx, n = schedule(4, 11, "pingpong")
    assert n == 11
    assert idx.tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]


def test_loop_freeze_and_pad_silence():
    assert schedule(3, 7, "loop")[0].tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert schedule(3, 5, "freeze")[0].tolist() == [0, 1, 2, 2, 2]
    assert schedule(3, 5, "pad-silence")[0].tolist() == [0, 1, 2, 2, 2]


def test_single_frame_video():
    for policy in ("pingpong", "loop", "freeze"):
        assert schedule(1, 4, policy)[0].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(2213, 100)])
def test_frame_sample_arithmetic(fps):
    for n in (1, 2, 29, 30, 31, 1000, 12345):
        s = samples_for_frames(n, fps, SR)
        assert s == round(n * SR / float(fps))
        assert frames_for_samples(s, fps, SR) == n  # n frames exactly hold their own samples
    assert frames_for_samples(SR, Fraction(25), SR) == 25
    assert frames_for_samples(SR + 1, Fraction(25), SR) == 26  # a partly covered frame still counts


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "trim"])
def test_longer_audio_is_never_cut(policy):
    fps = Fraction(30000, 1001)
    n_audio = 5 * SR + 123
    p = plan(60, n_audio, fps, SR, policy)
    assert p.n_out == frames_for_samples(n_audio, fps, SR) > 60
    assert p.audio_samples >= n_audio and p.trimmed_s == 0
    assert len(p.src_index) == p.n_out and p.src_index.max() <= 59 and p.src_index.min() >= 0
    assert "longer" in p.note


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "trim"])
def test_shorter_audio_keeps_the_whole_video_and_pads_silence(policy):
    p = plan(100, 2 * SR, Fraction(25), SR, policy)
    assert p.n_out == 100 and p.src_index.tolist() == list(range(100))
    assert p.audio_samples == 4 * SR and p.padded_s == pytest.approx(2.0)
    assert "silence" in p.note


def test_trim_cuts_whichever_is_longer():
    longer_audio = plan(50, 4 * SR, Fraction(25), SR, "trim")
    assert longer_audio.n_out == 50 and longer_audio.audio_samples == 2 * SR
    assert longer_audio.trimmed_s == pytest.approx(2.0) and "cut" in longer_audio.note
    shorter_audio = plan(100, 2 * SR, Fraction(25), SR, "trim")
    assert shorter_audio.n_out == 50 and shorter_audio.src_index.tolist() == list(range(50))


def test_equal_lengths_change_nothing():
    p = plan(25, SR, Fraction(25), SR)
    assert p.n_out == 25 and p.audio_samples == SR and p.padded_s == p.trimmed_s == 0


def test_fit_audio_pads_and_cuts():
    x = np.arange(5, dtype=np.float32)
    assert fit_audio(x, 7).tolist() == [0, 1, 2, 3, 4, 0, 0]
    assert fit_audio(x, 3).tolist() == [0, 1, 2]
    assert fit_audio(x, 3).dtype == np.float32


def test_unknown_policy_is_an_input_error():
    with pytest.raises(InputError, match="length policy"):
        plan(10, SR, Fraction(25), SR, "stretch")
    with pytest.raises(InputError):
        schedule(10, 20, "bogus")
