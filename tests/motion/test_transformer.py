import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lipdub.errors import InputError, WeightsNotFoundError  # noqa: E402
from lipdub.motion import neural  # noqa: E402
from lipdub.motion.transformer import MotionTransformer, MotionTransformerConfig  # noqa: E402
from lipdub.train.synthetic import synthetic_pack  # noqa: E402
from lipdub.types import AudioFeatures  # noqa: E402

D = 12


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = MotionTransformerConfig(feat_dim=D, d_model=32, n_layers=2, n_heads=2, window=4, dropout=0.0, **kw)
    m = MotionTransformer(cfg)
    torch.nn.init.normal_(m.head.weight, std=0.5)  # the zero-initialised head would hide everything
    return m.eval()


def inputs(B=2, T=20, N=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, D, generator=g), torch.rand(B, T, generator=g),
            torch.randn(B, N, D, generator=g), torch.rand(B, N, generator=g),
            0.1 * torch.randn(B, N, 40, 2, generator=g) + torch.tensor([0.0, 0.6]))


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Every search location points into an empty temporary folder."""
    monkeypatch.setenv("LIPDUB_WEIGHTS", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(neural, "REPO_WEIGHTS", tmp_path / "repo")
    return tmp_path


def test_output_shape_and_starts_at_reference_mean():
    x = inputs()
    cfg = MotionTransformerConfig(feat_dim=D, d_model=32, n_layers=2, n_heads=2, window=4)
    y = MotionTransformer(cfg).eval()(*x)
    assert y.shape == (2, 20, 40, 2)
    # untrained (zero head) output is exactly the reference's mean lip shape
    assert torch.allclose(y, x[4].mean(1, keepdim=True).expand_as(y), atol=1e-6)


def test_cross_attention_uses_the_reference():
    m, x = tiny(), inputs()
    y = m(*x)
    # same frames (same mean lip shape), but the audio -> lips pairing shuffled
    perm = torch.randperm(x[4].shape[1], generator=torch.Generator().manual_seed(1))
    y2 = m(*x[:4], x[4][:, perm])
    assert not torch.allclose(y, y2, atol=1e-4)


def test_invalid_reference_frames_are_ignored():
    m, x = tiny(), inputs(N=30)
    valid = torch.ones(2, 30, dtype=torch.bool)
    valid[:, 20:] = False  # e.g. frames without a face: their lips must not matter
    lips2 = x[4].clone()
    lips2[:, 20:] = 7.0
    assert torch.allclose(m(*x, valid), m(*x[:4], lips2, valid), atol=1e-5)
    assert not torch.allclose(m(*x, valid), m(*x), atol=1e-4)


def test_self_attention_is_windowed():
    m, x = tiny(), inputs(B=1, T=60)
    y = m(*x)
    feats = x[0].clone()
    feats[:, 50:] += 5.0  # far from frame 10: outside the receptive field
    y2 = m(feats, *x[1:])
    r = m.cfg.receptive_radius
    assert 50 - 10 > r
    assert torch.allclose(y[:, :50 - r], y2[:, :50 - r], atol=1e-5)
    assert not torch.allclose(y[:, 50:], y2[:, 50:], atol=1e-4)


def test_deterministic_in_eval():
    m, x = tiny(), inputs()
    assert torch.equal(m(*x), m(*x))


def feats_for(T=70, seed=3):
    rng = np.random.default_rng(seed)
    return AudioFeatures(rng.standard_normal((T, D)).astype(np.float32), np.zeros(T, np.float32),
                         (rng.random(T) > 0.3).astype(np.float32), Fraction(25))


def test_save_load_round_trip_and_predict(no_weights):
    m, pack = tiny(), synthetic_pack(D=D)
    path = neural.save_model(m, no_weights / "env" / "motion.safetensors")
    assert neural.available()
    loaded = neural.load_model()
    assert loaded.cfg == m.cfg
    x = inputs()
    assert torch.equal(loaded(*x), m(*x))
    motion = neural.predict(feats_for(), pack, seed=0)
    assert motion.engine == "neural" and motion.lips.shape == (70, 40, 2) and motion.lips.dtype == np.float32
    direct = neural.run_model(m, feats_for().feats, feats_for().voiced, pack, chunk=10_000)
    np.testing.assert_allclose(motion.lips, direct, atol=1e-5)
    assert path.exists()


def test_chunked_inference_equals_one_pass():
    m, pack, f = tiny(), synthetic_pack(D=D), feats_for(T=90)
    one = neural.run_model(m, f.feats, f.voiced, pack, chunk=10_000)
    chunked = neural.run_model(m, f.feats, f.voiced, pack, chunk=16)
    np.testing.assert_allclose(one, chunked, atol=1e-5)


def test_wrong_feature_size_is_an_input_error():
    m, pack = tiny(), synthetic_pack(D=D)
    with pytest.raises(InputError, match="expects"):
        neural.run_model(m, np.zeros((10, D + 1), np.float32), np.zeros(10, np.float32), pack)


def test_missing_weights_name_every_path(no_weights):
    assert not neural.available()
    with pytest.raises(WeightsNotFoundError) as e:
        neural.predict(feats_for(), synthetic_pack(D=D), weights=no_weights / "explicit.safetensors")
    msg = str(e.value)
    for p in [no_weights / "explicit.safetensors", no_weights / "env" / "motion.safetensors",
              no_weights / "repo" / "motion.safetensors", no_weights / "home" / ".cache/lipdub/motion.safetensors"]:
        assert str(p) in msg
    assert "lipdub train motion --data" in msg
    assert isinstance(e.value, FileNotFoundError) and len(e.value.searched) == 4


def test_import_does_not_load_torch():
    code = "import sys, lipdub.motion.neural, lipdub.render.neural; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.gpu
def test_full_size_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    cfg = MotionTransformerConfig(feat_dim=64)
    m = MotionTransformer(cfg).cuda().eval()
    x = [a.cuda() for a in (torch.randn(4, 256, 64), torch.rand(4, 256), torch.randn(4, 600, 64),
                            torch.rand(4, 600), torch.randn(4, 600, 40, 2))]
    with torch.no_grad():
        assert m(*x).shape == (4, 256, 40, 2)
