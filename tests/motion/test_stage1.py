"""The default motion engine: Stage1Net's numpy forward equals the torch module's, the shipped
weights load from weights/ and move the lips with speech, a still reference (a photo) works, and
the speaker's own range of opening is kept."""
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from lipdub.face.landmarks import mouth_opening
from lipdub.motion import stage1
from lipdub.train.synthetic import synthetic_pack
from lipdub.types import AudioFeatures


def _tiny_net(seed=0):
    torch = pytest.importorskip("torch")
    from lipdub.motion.stage1_net import Stage1Config, Stage1Net

    torch.manual_seed(seed)
    net = Stage1Net(Stage1Config(feat_dim=16, d_model=12, dilations=(1, 3), attn_dim=8)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.2)  # the zero-looking defaults would hide mistakes
        net.set_feature_stats(torch.randn(16) * 0.1, torch.rand(16) + 0.5)
    return net


def test_numpy_forward_equals_torch(torch_one_thread):
    import torch

    net = _tiny_net()
    rng = np.random.default_rng(0)
    x, rx = rng.normal(size=(37, 16)).astype(np.float32), rng.normal(size=(23, 16)).astype(np.float32)
    rl = (rng.normal(size=(23, 40, 2)) * 0.03).astype(np.float32)
    with torch.no_grad():
        want = net(torch.tensor(x)[None], None, torch.tensor(rx)[None], None, torch.tensor(rl)[None])[0].numpy()
    got = stage1.Stage1({k: v.numpy() for k, v in net.state_dict().items()}, net.cfg.to_dict())(x, rx, rl)
    assert got.shape == (37, 40, 2)
    assert np.abs(got - want).max() < 1e-4


def test_a_still_reference_adds_no_style(torch_one_thread):
    """Every reference frame the same shape: the attention values are zero, whatever the keys."""
    net = _tiny_net(1)
    model = stage1.Stage1({k: v.numpy() for k, v in net.state_dict().items()}, net.cfg.to_dict())
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 16)).astype(np.float32)
    still = np.repeat((rng.normal(size=(1, 40, 2)) * 0.03).astype(np.float32), 9, 0)
    a = model(x, rng.normal(size=(9, 16)).astype(np.float32), still)
    b = model(x, rng.normal(size=(9, 16)).astype(np.float32), still)
    assert np.allclose(a, b, atol=1e-6)


def test_shipped_weights_move_the_lips_with_speech(speech_feats):
    """weights/stage1.safetensors: open in speech, nearer shut in the silences, at the speaker's range."""
    assert stage1.available(), "weights/stage1.safetensors must ship with the repository"
    feats = speech_feats
    pack = replace(synthetic_pack(len(feats), seed=3), feats=feats.feats)  # the dub's own audio as reference
    motion = stage1.predict(feats, pack)
    assert motion.engine == "stage1" and motion.lips.shape == (len(feats), 40, 2)
    assert np.isfinite(motion.lips).all()
    op = mouth_opening(motion.lips)
    speech, silence = feats.voiced >= 0.5, feats.voiced < 0.1
    assert speech.sum() > 25 and silence.sum() > 25
    rest = mouth_opening(pack.rest_lips)
    assert abs(np.median(op[silence]) - rest) < 0.01  # digital silence rests in the speaker's closed shape
    assert np.median(op[speech]) > rest + 0.01 and op[speech].std() > 0.01  # speech opens and moves the mouth
    ref_sd = mouth_opening(pack.lips).std()
    assert 0.3 * ref_sd < op[speech].std() < 2.5 * ref_sd  # towards the speaker's own range (at most 2x the model's)


def test_a_photo_reference_still_speaks(speech_feats):
    """A pack with no speech features and still lips (a photo): the generic path moves the mouth."""
    feats = speech_feats
    pack = synthetic_pack(len(feats), seed=4)
    still = np.repeat(pack.rest_lips[None], len(pack.lips), 0)
    photo = replace(pack, lips=still, feats=np.zeros((len(still), 0), np.float16))
    op = mouth_opening(stage1.predict(feats, photo).lips)
    assert op[feats.voiced >= 0.5].std() > 0.005


def test_missing_weights_name_every_path(tmp_path, monkeypatch):
    from lipdub.errors import WeightsNotFoundError
    from lipdub.motion import neural

    monkeypatch.setattr(neural, "REPO_WEIGHTS", tmp_path / "none")
    monkeypatch.setenv("LIPDUB_WEIGHTS", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsNotFoundError) as e:
        stage1.find()
    msg = str(e.value)
    assert "stage1.safetensors" in msg and str(tmp_path / "env") in msg and "lipdub train motion" in msg


def test_the_spread_of_opening_is_the_speakers_times_the_render_gain():
    rng = np.random.default_rng(0)
    T = 200
    base = np.zeros((40, 2))
    base[:, 0] = np.linspace(-0.3, 0.3, 40)
    base[stage1_lower(), 1] = 0.5  # open, so that the opening is never negative
    opening_dir = np.zeros((40, 2))
    opening_dir[stage1_lower(), 1] = 1.0
    pred = base + (0.01 * rng.normal(size=T))[:, None, None] * opening_dir
    ref = base + (0.05 * rng.normal(size=500))[:, None, None] * opening_dir
    out = stage1._with_speaker_spread(pred, ref, np.ones(T))
    want = min(stage1.RENDER_GAIN * mouth_opening(ref).std(), stage1.MAX_GAIN * mouth_opening(pred).std())
    assert mouth_opening(out).std() == pytest.approx(want, rel=0.05)


def stage1_lower():
    from lipdub.face.landmarks import LOWER_MID

    return [LOWER_MID]


def test_features_of_another_size_are_refused():
    from lipdub.errors import InputError

    feats = AudioFeatures(np.zeros((50, 28), np.float32), np.zeros(50, np.float32), np.ones(50, np.float32),
                          Fraction(25))
    with pytest.raises(InputError, match="expects"):
        stage1.predict(feats, synthetic_pack(50, seed=5))
