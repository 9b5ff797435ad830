"""Retargeting an actor's lips onto a speaker (lipdub.motion.retarget), on synthetic landmark
tracks with known answers."""
from fractions import Fraction

import numpy as np
import pytest

from lipdub.face.landmarks import CORNERS, LOWER_LIP, mouth_opening, mouth_width
from lipdub.motion import retarget as R
from lipdub.types import LipMotion


def _mouth(width: float, drop: float, cx: float = 0.0, cy: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(rest [40, 2], rest -> widest motion [40, 2]): an ellipse-ish mouth of ``width`` whose
    lower lip drops by ``drop`` when wide open."""
    a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    outer = np.stack([cx + width / 2 * np.cos(a), cy + 0.12 * width * np.sin(a)], 1)
    inner = np.stack([cx + 0.8 * width / 2 * np.cos(a), cy + 0.01 * width * np.sin(a)], 1)
    rest = np.concatenate([outer, inner])
    motion = np.zeros_like(rest)
    motion[LOWER_LIP, 1] = drop
    return rest, motion


def _track(rest, motion, amounts):
    return rest[None] + np.asarray(amounts, float)[:, None, None] * motion[None]


def test_half_of_the_actors_range_opens_the_speaker_to_half_of_theirs():
    a_rest, a_motion = _mouth(0.8, 0.30, cx=0.05)
    s_rest, s_motion = _mouth(1.0, 0.20, cy=1.0)
    actor, speaker = R.LipRange(a_rest, a_rest + a_motion), R.LipRange(s_rest, s_rest + s_motion)
    out = R.retarget(_track(a_rest, a_motion, [0.0, 0.5, 1.0]), actor, speaker)
    np.testing.assert_allclose(out[0], s_rest, atol=1e-6)
    np.testing.assert_allclose(out[1], s_rest + 0.5 * s_motion, atol=1e-6)
    np.testing.assert_allclose(out[2], s_rest + s_motion, atol=1e-6)
    op = mouth_opening(out)
    assert op[1] == pytest.approx((mouth_opening(s_rest) + mouth_opening(s_rest + s_motion)) / 2, abs=1e-6)


def test_ranges_are_measured_from_the_tracks():
    """Rest from the closed (silent) frames, widest from the top of the openings; a lost frame
    (NaN) stays lost, and the answer is the same as with the ranges given."""
    a_rest, a_motion = _mouth(0.8, 0.30)
    s_rest, s_motion = _mouth(1.1, 0.15)
    amounts = np.r_[np.zeros(40), np.ones(40), np.linspace(0, 1, 20)]
    a_lips, s_lips = _track(a_rest, a_motion, amounts), _track(s_rest, s_motion, amounts)
    actor, speaker = R.lip_range(a_lips), R.lip_range(s_lips, voiced=(amounts > 0).astype(np.float32))
    np.testing.assert_allclose(actor.rest, a_rest, atol=1e-9)
    np.testing.assert_allclose(actor.wide, a_rest + a_motion, atol=1e-9)
    np.testing.assert_allclose(speaker.rest, s_rest, atol=1e-9)
    probe = _track(a_rest, a_motion, [0.25, 0.5, np.nan])
    out = R.retarget(probe, actor, speaker)
    np.testing.assert_allclose(out[:2], _track(s_rest, s_motion, [0.25, 0.5]), atol=1e-6)
    assert np.isnan(out[2]).all()


def test_what_the_opening_does_not_explain_is_scaled_by_mouth_size():
    """An actor spreading the lips (corners out, no opening) spreads the speaker's by as much
    relative to the mouth's size."""
    a_rest, a_motion = _mouth(0.8, 0.30)
    s_rest, s_motion = _mouth(1.2, 0.20)
    spread = np.zeros_like(a_rest)
    for c in CORNERS:
        spread[c, 0] = 0.04 * np.sign(a_rest[c, 0])  # outwards
    out = R.retarget((a_rest + spread)[None], R.LipRange(a_rest, a_rest + a_motion), R.LipRange(s_rest, s_rest + s_motion))
    assert mouth_width(out[0]) - mouth_width(s_rest) == pytest.approx(0.08 * 1.2 / 0.8, rel=1e-5)
    assert mouth_opening(out[0]) == pytest.approx(mouth_opening(s_rest), abs=1e-6)


def test_a_still_actor_stays_still_and_a_still_speaker_borrows_the_actors_range():
    a_rest, a_motion = _mouth(0.8, 0.30)
    s_rest, s_motion = _mouth(1.0, 0.20)
    jitter = np.random.default_rng(0).normal(0, 1e-4, (50, 40, 2))
    still = R.lip_range(a_rest[None] + jitter)  # a mouth that never moves: its "range" is noise
    out = R.retarget(a_rest[None] + jitter, still, R.LipRange(s_rest, s_rest + s_motion))
    assert np.abs(mouth_opening(out) - mouth_opening(s_rest)).max() < 2e-3  # noise is not blown up
    photo = R.LipRange(s_rest, s_rest.copy())  # a photo: the speaker's reference never moves
    out = R.retarget(_track(a_rest, a_motion, [0.5]), R.LipRange(a_rest, a_rest + a_motion), photo)
    gained = mouth_opening(out[0]) - mouth_opening(s_rest)
    assert gained == pytest.approx(0.5 * 0.30 * 1.0 / 0.8, rel=1e-5)


def test_another_frame_rate_is_sampled_by_time():
    lips = np.zeros((10, 40, 2))
    lips[:, :, 1] = np.arange(10)[:, None]  # the value is the actor's frame number
    u = R.output_times(8, Fraction(25), Fraction(50), 10)  # actor at 50 fps, output at 25
    np.testing.assert_allclose(u[:5], [0, 2, 4, 6, 8])
    assert np.isnan(u[5:]).all()  # past the actor video's end
    u = R.output_times(4, Fraction(30), Fraction(20), 10)
    out = R.resample(lips, u)
    np.testing.assert_allclose(out[:, 0, 1], [0, 2 / 3, 4 / 3, 2])  # between two actor frames
    lips[3] = np.nan  # a lost frame: its neighbour stands in
    np.testing.assert_allclose(R.resample(lips, np.array([2.9, 3.2, 3.6, np.nan]))[:3, 0, 1], [2, 4, 4])


def test_gaps_follow_the_audio_with_a_cross_fade():
    driven = np.ones(20, bool)
    driven[8:10] = False
    w = R.fade_weights(driven, fade=3)
    assert (w[8:10] == 0).all() and w[0] == 1 and w[19] == 1
    np.testing.assert_allclose(w[4:8], [1, 0.75, 0.5, 0.25])
    assert R.ranges(w > 0) == [[0, 8], [10, 20]]
    video = np.where(driven[:, None, None], 1.0, np.nan) * np.ones((20, 40, 2))
    d = R.DrivenLips(video.astype(np.float32), w, {})
    calls = []
    m = d.motion(lambda: calls.append(1) or LipMotion(np.zeros((20, 40, 2), np.float32)))
    assert calls == [1] and m.engine == "video" and np.isfinite(m.lips).all()
    np.testing.assert_allclose(m.lips[[0, 6, 8], 0, 0], [1, 0.5, 0])
    s = d.summary()
    assert s["frames_from_video"] == 18 and s["frames_from_audio"] == 2 and s["video_ranges"] == [[0, 8], [10, 20]]
    full = R.DrivenLips(np.ones((5, 40, 2), np.float32), np.ones(5), {})
    assert full.motion(lambda: pytest.fail("no audio motion needed")).engine == "video"
