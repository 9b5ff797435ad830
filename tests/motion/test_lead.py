"""The speaker's lead of lips over sound: found on the reference, between frames, only where the
reference agrees with the prediction, and applied to the dub's motion."""
from dataclasses import replace

import numpy as np
import pytest

from lipdub.face.landmarks import mouth_opening
from lipdub.lagcorr import at_lags
from lipdub.motion import lead, stage1
from lipdub.smooth import gaussian_smooth
from lipdub.train.synthetic import synthetic_pack


def _speechlike(n, seed):
    return gaussian_smooth(np.random.default_rng(seed).normal(size=n), 2.0)


def test_shifted_reads_ahead_between_frames_and_holds_the_ends():
    x = np.arange(6, dtype=np.float64)
    assert np.allclose(lead.shifted(x, 1.5), [1.5, 2.5, 3.5, 4.5, 5, 5])
    assert np.allclose(lead.shifted(x, -2), [0, 0, 0, 1, 2, 3])
    lips = np.stack([x, -x], 1)[:, None, :].repeat(3, 1)  # [T, 3, 2]
    assert np.allclose(lead.shifted(lips, 0.5)[:, 2, 1], -np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5]))


@pytest.mark.parametrize("frames", [3.4, -2.6, 0.0])
def test_a_known_lead_is_found_between_frames(frames):
    pred = _speechlike(400, 1)
    real = lead.shifted(pred, frames) + 0.1 * _speechlike(400, 2)  # the real lips run `frames` ahead
    assert lead.estimate(pred, real, 25.0) == pytest.approx(frames / 25.0, abs=0.3 / 25)


def test_no_lead_where_the_reference_does_not_follow_the_prediction():
    assert lead.estimate(_speechlike(400, 3), _speechlike(400, 4), 25.0) == 0.0
    assert lead.estimate(_speechlike(10, 3), _speechlike(10, 3), 25.0) == 0.0  # too short to tell


def test_frames_without_a_face_are_left_out():
    pred = _speechlike(400, 5)
    real = lead.shifted(pred, 2.0)
    real[100:160] = np.nan
    assert lead.estimate(pred, real, 25.0) == pytest.approx(2.0 / 25.0, abs=0.3 / 25)


def test_the_dub_keeps_the_reference_speakers_lead(speech_feats):
    """A reference whose lips run 4 frames ahead of what the model predicts from its own audio:
    the lead is measured, reported and given to the dub's motion; an in-step reference gives none."""
    feats = speech_feats
    net = stage1.model()
    pack = synthetic_pack(len(feats), seed=6)
    generic = np.nanmean(pack.lips, 0) + net(np.asarray(feats.feats, np.float32), None, None)
    ahead = replace(pack, feats=feats.feats, lips=lead.shifted(generic, 4.0).astype(np.float32))
    in_step = replace(ahead, lips=generic.astype(np.float32))
    assert stage1.speaker_lead(net, in_step) == pytest.approx(0.0, abs=0.3 / 25)
    moved = stage1.predict(feats, ahead)
    assert moved.lead_s == pytest.approx(4.0 / 25, abs=0.3 / 25)
    unmoved = stage1.predict(feats, replace(ahead, feats=np.zeros((len(feats), 0), np.float16)))
    assert unmoved.lead_s == 0.0
    a, b = mouth_opening(moved.lips), mouth_opening(unmoved.lips)
    r = at_lags(b, a, 8)  # the moved mouth is where the unmoved one will be 4 frames on
    assert int(np.argmax(r)) - 8 == 4


def test_no_lead_from_a_reference_that_does_not_speak_or_move(speech_feats):
    """A photo-like reference (a still mouth with the landmarker's jitter, a tone for audio) must
    not move the dub by whatever lag its noise happens to peak at."""
    net = stage1.model()
    pack = synthetic_pack(len(speech_feats), seed=7)
    rng = np.random.default_rng(7)
    jitter = np.repeat(pack.rest_lips[None], len(pack.lips), 0) + rng.normal(size=pack.lips.shape) * 1e-4
    still = replace(pack, feats=speech_feats.feats, lips=jitter.astype(np.float32))
    assert stage1.speaker_lead(net, still) == 0.0
    silent = replace(pack, feats=speech_feats.feats, voiced=np.zeros(len(pack.lips), np.float32))
    assert stage1.speaker_lead(net, silent) == 0.0
