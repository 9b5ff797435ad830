from fractions import Fraction

import numpy as np

from lipdub.face.landmarks import mouth_opening
from lipdub.motion import predict
from lipdub.motion.reference import generic
from lipdub.types import AudioFeatures
from tests.style.test_pack import make_pack


def _lips_for(open_amount, base):
    lips = np.repeat(base[None], len(open_amount), 0).copy()
    lower = base[:, 1] > base[:, 1].mean()
    lips[:, lower, 1] += open_amount[:, None]
    return lips


def _base():
    ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    outer = np.c_[0.5 * np.cos(ang), 0.2 * np.sin(ang)]
    return np.concatenate([outer, outer * 0.6]).astype(np.float32)


def test_attention_readout_recovers_a_known_mapping():
    """Reference: lips open exactly as the 1-3 kHz envelope says. New audio: another envelope."""
    rng = np.random.default_rng(0)
    n, T = 400, 200
    env = np.convolve((rng.uniform(0, 1, n) > 0.5).astype(float), np.ones(4) / 4, "same")
    feats = np.c_[np.zeros((n, 3)), np.repeat(env[:, None], 3, 1), np.zeros((n, 2)), rng.normal(0, 1, (n, 20))]
    base = _base()
    pack = make_pack(n=n, d=28)
    pack = pack.__class__(**{**pack.__dict__, "feats": feats.astype(np.float32), "voiced": np.ones(n, np.float32),
                             "lips": _lips_for(0.2 * env, base).astype(np.float32), "rest_lips": base})
    env2 = np.convolve((rng.uniform(0, 1, T) > 0.5).astype(float), np.ones(4) / 4, "same")
    f2 = np.c_[np.zeros((T, 3)), np.repeat(env2[:, None], 3, 1), np.zeros((T, 2)), rng.normal(0, 1, (T, 20))]
    af = AudioFeatures(feats=f2.astype(np.float32), energy=np.zeros(T, np.float32), voiced=np.ones(T, np.float32), fps=Fraction(25))
    m = predict(af, pack)
    assert m.lips.shape == (T, 40, 2)
    op = mouth_opening(m.lips)
    truth = mouth_opening(_lips_for(0.2 * env2, base))
    assert np.corrcoef(op, truth)[0, 1] > 0.75
    assert 0.6 < op.std() / truth.std() < 1.6


def test_readout_built_in_chunks_matches_one_pass(monkeypatch):
    """The ridge fit and prediction accumulate CHUNK frames at a time (bounded memory for an
    hour): chunks of 7 frames give the one-pass result up to rounding."""
    from lipdub.motion import reference

    rng = np.random.default_rng(1)
    n, T = 300, 120
    base = _base()
    pack = make_pack(n=n, d=28)
    pack = pack.__class__(**{**pack.__dict__, "feats": rng.normal(0, 1, (n, 28)).astype(np.float32),
                             "voiced": np.ones(n, np.float32), "rest_lips": base,
                             "lips": _lips_for(rng.uniform(0, 0.2, n), base).astype(np.float32)})
    af = AudioFeatures(feats=rng.normal(0, 1, (T, 28)).astype(np.float32), energy=np.zeros(T, np.float32),
                       voiced=np.ones(T, np.float32), fps=Fraction(25))
    whole = predict(af, pack).lips
    monkeypatch.setattr(reference, "CHUNK", 7)
    assert np.allclose(predict(af, pack).lips, whole, atol=1e-5)


def test_silence_rests_in_the_speakers_closed_shape():
    n, T = 200, 50
    rng = np.random.default_rng(1)
    pack = make_pack(n=n)
    base = _base()
    pack = pack.__class__(**{**pack.__dict__, "lips": _lips_for(rng.uniform(0, 0.2, n), base).astype(np.float32),
                             "rest_lips": base})
    af = AudioFeatures(feats=rng.normal(size=(T, 28)).astype(np.float32), energy=np.zeros(T, np.float32),
                       voiced=np.zeros(T, np.float32), fps=Fraction(25))
    m = predict(af, pack)
    np.testing.assert_allclose(m.lips, np.repeat(base[None], T, 0), atol=1e-5)


def test_generic_prior_opens_with_loudness():
    T = 40
    env = np.r_[np.zeros(20), np.ones(20)]
    feats = np.zeros((T, 28), np.float32)
    feats[:, 3:6] = env[:, None]
    pack = make_pack(n=10, d=0)
    pack = pack.__class__(**{**pack.__dict__, "rest_lips": _base()})
    af = AudioFeatures(feats=feats, energy=np.zeros(T, np.float32), voiced=np.ones(T, np.float32), fps=Fraction(25))
    op = mouth_opening(generic(af, pack))
    assert op[30:].mean() > op[:10].mean() + 0.05



def _priors_case(amount, prior):
    """Lips whose lower lip drops by ``amount`` [T]; features whose phones say ``prior`` [T]."""
    lips = _lips_for(amount, _base()).astype(np.float64)
    T = len(amount)
    af = AudioFeatures(feats=np.zeros((T, 28), np.float32), energy=np.zeros(T, np.float32),
                       voiced=np.ones(T, np.float32), fps=Fraction(25), phone_opening=prior.astype(np.float32))
    return lips, af


def test_priors_that_agree_with_the_readout_change_only_its_spread():
    from lipdub.motion.reference import RENDER_GAIN, _with_priors

    amount = 0.1 + 0.05 * np.sin(np.arange(120) * 2 * np.pi / 60)  # slow: smoothing keeps its shape
    lips, af = _priors_case(amount, 0.2 + 3 * amount)
    out = _with_priors(lips, af, lips)
    op, new = mouth_opening(lips), mouth_opening(out)
    # the spread grows by RENDER_GAIN; the mouth still never shuts tighter than the speaker's
    expect = np.maximum(op.mean() + RENDER_GAIN * (op - op.mean()), np.percentile(op, 2))
    np.testing.assert_allclose(new, expect, atol=2e-3)
    upper = _base()[:, 1] <= _base()[:, 1].mean()
    np.testing.assert_allclose(out[:, upper], lips[:, upper], atol=1e-9)


def test_priors_move_the_opening_along_the_speakers_own_motion():
    from lipdub.motion.reference import RENDER_GAIN, _with_priors

    rng = np.random.default_rng(4)
    amount, other = (np.convolve(rng.uniform(0, 1, 120), np.ones(5) / 5, "same") for _ in range(2))
    lips, af = _priors_case(0.2 * amount, other)
    out = _with_priors(lips, af, lips)
    op, new = mouth_opening(lips), mouth_opening(out)
    assert np.corrcoef(new, other)[0, 1] > np.corrcoef(op, other)[0, 1] + 0.3
    assert abs(new.mean() - op.mean()) < 0.01 and abs(new.std() / op.std() - RENDER_GAIN) < 0.2
    assert new.min() >= np.percentile(op, 2) - 1e-9  # never shut tighter than the speaker does
    upper = _base()[:, 1] <= _base()[:, 1].mean()
    np.testing.assert_allclose(out[:, upper], lips[:, upper], atol=1e-9)  # as in the reference, only the lower lip moves

def test_generic_prior_follows_the_phones():
    T = 40
    pack = make_pack(n=10, d=0)
    pack = pack.__class__(**{**pack.__dict__, "rest_lips": _base()})
    ph = np.r_[np.zeros(20), np.ones(20)].astype(np.float32)
    af = AudioFeatures(feats=np.zeros((T, 28), np.float32), energy=np.zeros(T, np.float32),
                       voiced=np.ones(T, np.float32), fps=Fraction(25), phone_opening=ph)
    op = mouth_opening(generic(af, pack))
    assert op[25:].mean() > op[:15].mean() + 0.05


def test_generic_prior_opens_a_mouth_whose_inner_lips_sit_high():
    """Inner lips well above the middle of the outer ring (a full lower lip): the lower inner lip
    still drops (the lower lip is known by its place in the ring, not by a midline)."""
    base = _base()
    base[20:] = base[:20] * 0.3 + [0, -0.15]
    T = 20
    pack = make_pack(n=10, d=0)
    pack = pack.__class__(**{**pack.__dict__, "rest_lips": base})
    feats = np.zeros((T, 28), np.float32)
    feats[10:, 3:6] = 1.0
    af = AudioFeatures(feats=feats, energy=np.zeros(T, np.float32), voiced=np.ones(T, np.float32), fps=Fraction(25))
    op = mouth_opening(generic(af, pack))
    assert op[15:].mean() > op[:5].mean() + 0.1
