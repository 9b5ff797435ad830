import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from lipdub.errors import InputError, LipdubError, WeightsNotFoundError  # noqa: E402
from lipdub.motion import neural as motion_neural  # noqa: E402
from lipdub.motion.transformer import MotionTransformer, MotionTransformerConfig  # noqa: E402
from lipdub.render import neural as render_neural  # noqa: E402
from lipdub.render.diffusion import MouthRenderer, RendererConfig  # noqa: E402
from lipdub.train import cli_hooks, preprocess as prep  # noqa: E402
from lipdub.train import renderer as rtrain  # noqa: E402
from lipdub.train.fit import fit_pack  # noqa: E402
from lipdub.train.motion import MotionTrainConfig, PairSampler, fit_model, motion_loss, to_tensors, train  # noqa: E402
from lipdub.train.synthetic import draw_crops, synthetic_clip, synthetic_pack  # noqa: E402

D = 12
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "clips"


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny_motion_cfg():
    return MotionTransformerConfig(feat_dim=D, d_model=32, n_layers=2, n_heads=2, window=4, dropout=0.0)


def tiny_train_cfg(**kw):
    base = dict(steps=300, batch_size=8, window=32, ref_len=48, lr=3e-3, log_every=25, checkpoint_every=10 ** 9,
                still_ref=0.0)
    base.update(kw)
    return MotionTrainConfig(**base)


def write_shards(folder: Path, n=2, T=120, size=32, speakers=("a", "b")):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c = synthetic_clip(T, D, seed=i)
        crops, pts = draw_crops(c.lips[::10], size, seed=i)
        prep.write_shard(folder / f"clip{i}.npz", dict(
            feats=c.feats, voiced=c.voiced, lips=c.lips, found=np.ones(T, bool), crops=crops,
            crop_index=np.arange(0, T, 10), crop_points=pts, speaker=np.str_(speakers[i % len(speakers)]),
            fps_num=np.int64(25), fps_den=np.int64(1), canon_to_crop=np.eye(2, 3)))
    return folder


def test_one_motion_step_lowers_the_loss():
    torch.manual_seed(0)
    m = MotionTransformer(tiny_motion_cfg())
    b = to_tensors(PairSampler([synthetic_clip(D=D)], tiny_train_cfg()).batch(0), "cpu")
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    before = sum(motion_loss(m, b)[:2])
    before.backward()
    opt.step()
    with torch.no_grad():
        assert float(sum(motion_loss(m, b)[:2])) < float(before)


def test_motion_model_overfits_one_clip(tmp_path):
    torch.manual_seed(0)
    clip = synthetic_clip(D=D)
    cfg = tiny_train_cfg()
    b = to_tensors(PairSampler([clip], cfg).batch(12345), "cpu")
    m = MotionTransformer(tiny_motion_cfg())
    first = float(motion_loss(m, b)[0].detach())
    m = fit_model(m, [clip], cfg, log_path=tmp_path / "log.jsonl", cpu=True)
    with torch.no_grad():
        last = float(motion_loss(m, b)[0])
    assert last < first / 8, (first, last)
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 300 and rows[-1]["l1"] < rows[0]["l1"]


def test_reference_comes_from_the_same_speaker_another_time():
    clips = [synthetic_clip(200, D, seed=0, speaker="a"), synthetic_clip(200, D, seed=1, speaker="b")]
    cfg = tiny_train_cfg(batch_size=1, window=32, ref_len=40, gap=8)
    s = PairSampler(clips, cfg)
    rng = np.random.default_rng(0)
    for _ in range(50):
        r, a, b = s._reference(rng, 0, 100, 132)
        assert r.speaker == "a" and (b <= 100 - 8 or a >= 132 + 8)


class Stop(Exception):
    pass


def test_train_checkpoints_resume_and_save(tmp_path):
    data = write_shards(tmp_path / "shards")
    cfg = tiny_train_cfg(steps=20, log_every=5, checkpoint_every=10, lr=1e-3)
    straight = train(data, tmp_path / "a.safetensors", cfg, tiny_motion_cfg(), cpu=True)

    def interrupt(stage, done, total):
        if done == 15:
            raise Stop

    with pytest.raises(Stop):
        train(data, tmp_path / "b.safetensors", cfg, tiny_motion_cfg(), progress=interrupt, cpu=True)
    assert (tmp_path / "b.safetensors.ckpt" / "step-10" / "done").exists()
    assert not (tmp_path / "b.safetensors").exists()
    resumed = train(data, tmp_path / "b.safetensors", cfg, tiny_motion_cfg(), cpu=True)
    a, b = motion_neural.load_model(straight), motion_neural.load_model(resumed)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-6), k
    log = (tmp_path / "b.safetensors.log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == 20
    _, _, meta = motion_neural.read_weights(straight, motion_neural.FORMAT)
    assert json.loads(meta["train"])["steps"] == 20 and json.loads(meta["config"])["feat_dim"] == D


def test_holdout_and_empty_data(tmp_path):
    data = write_shards(tmp_path / "shards", n=2, speakers=("a", "b"))
    with pytest.raises(InputError):
        train(tmp_path / "nothing", tmp_path / "x.safetensors", tiny_train_cfg(), tiny_motion_cfg(), cpu=True)
    with pytest.raises(InputError):
        train(data, tmp_path / "x.safetensors", tiny_train_cfg(holdout=["a", "b"]), tiny_motion_cfg(), cpu=True)


def tiny_renderer_cfg():
    return RendererConfig(image_size=32, vae_channels=(8, 16), channels=(16, 32), attn_levels=(1,),
                          n_refs=2, style_dim=16, heads=2, groups=4)


def test_one_renderer_step_lowers_the_losses(tmp_path):
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    data = rtrain.CropData(rtrain.load_clips(write_shards(tmp_path / "s"), want_crops=True), 32)
    m = MouthRenderer(tiny_renderer_cfg())
    tgt, refs = data.batch(0, 4, 2, seed=0)
    images = data.images[tgt]
    vae_opt = torch.optim.AdamW(m.vae.parameters(), lr=1e-3)
    torch.manual_seed(1)
    before = rtrain.vae_loss(m, images)
    before.backward()
    vae_opt.step()
    torch.manual_seed(1)
    assert float(rtrain.vae_loss(m, images).detach()) < float(before.detach())

    z, cond = rtrain.encode_all(m, data, "cpu")
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    ti, ri = torch.as_tensor(tgt), torch.as_tensor(refs)
    motion = m.motion_code(data.lips[ti], data.means[ti])
    args = (m, sched, z[ti], cond[ti], motion, z[ri])
    opt = torch.optim.AdamW(m.unet.parameters(), lr=1e-3)
    before = rtrain.denoise_loss(*args, torch.Generator().manual_seed(0))
    before.backward()
    opt.step()
    assert float(rtrain.denoise_loss(*args, torch.Generator().manual_seed(0)).detach()) < float(before.detach())


def test_train_renderer_end_to_end(tmp_path, monkeypatch):
    data = write_shards(tmp_path / "shards")
    cfg = rtrain.RendererTrainConfig(vae_steps=2, steps=2, batch_size=2, log_every=1)
    out = rtrain.train(data, tmp_path / "renderer.safetensors", cfg, tiny_renderer_cfg(), cpu=True)
    m = render_neural.load_model(out)
    assert m.cfg == tiny_renderer_cfg()
    rows = [json.loads(x) for x in (tmp_path / "renderer.safetensors.log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["vae", "vae", "unet", "unet"]


def test_preprocess_layout_resume_and_failures(tmp_path, monkeypatch):
    vids = tmp_path / "vox"
    for rel in ["id001/vidA/00001.mp4", "id001/vidB/00002.mp4", "id002/vidC/00001.mp4", "bad/x/1.mkv"]:
        (vids / rel).parent.mkdir(parents=True, exist_ok=True)
        (vids / rel).write_bytes(b"")
    calls = []

    def fake_analyse(video, with_crops=True):
        calls.append(video)
        if "bad" in str(video):
            raise InputError(f"{video}: no face found")
        c = synthetic_clip(50, D)
        return dict(feats=c.feats, voiced=c.voiced, lips=c.lips)

    monkeypatch.setattr(prep, "analyse", fake_analyse)
    seen = []
    report = cli_hooks.preprocess(vids, tmp_path / "out", progress=lambda s, i, n: seen.append((i, n)))
    assert len(report.written) == 3 and report.existing == 0 and len(report.failed) == 1
    assert seen[-1] == (4, 4)
    with np.load(tmp_path / "out" / "id001__vidB__00002.npz") as z:
        assert str(z["speaker"]) == "id001" and z["lips"].shape == (50, 40, 2)
    assert (tmp_path / "out" / "bad__x__1.skip").exists()
    assert not list((tmp_path / "out").glob("*.tmp"))
    calls.clear()
    again = cli_hooks.preprocess(vids, tmp_path / "out")
    assert again.existing == 4 and not again.written and not calls
    assert prep.speaker_of(vids / "id001/vidA/00001.mp4", vids) == "id001"
    assert prep.speaker_of(tmp_path / "flat.mp4", tmp_path) == "flat"


@pytest.mark.data
def test_preprocess_a_real_clip(tmp_path):
    clip = DATA / "lrs2_00001.mp4"
    if not clip.exists():
        pytest.skip("../shared/data is absent")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / clip.name).symlink_to(clip)
    report = prep.preprocess(tmp_path / "v", tmp_path / "out")
    assert len(report.written) == 1, report.failed
    with np.load(report.written[0]) as z:
        T = len(z["lips"])
        assert T > 50 and z["lips"].shape == (T, 40, 2) and z["voiced"].shape == (T,)
        assert z["audio"].dtype == np.int16 and abs(len(z["audio"]) / 16000 - T / 25) < 0.1  # its own speech
        assert z["crops"].ndim == 4 and len(z["crops"]) == len(z["crop_index"]) == len(z["crop_points"])
        assert str(z["speaker"]) == "lrs2_00001"


def test_fit_pack(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPDUB_WEIGHTS", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(motion_neural, "REPO_WEIGHTS", tmp_path / "repo")
    pack = synthetic_pack(T=120, D=D)
    with pytest.raises(WeightsNotFoundError):
        fit_pack(pack, tmp_path / "fit.safetensors", steps=2)
    base = motion_neural.save_model(MotionTransformer(tiny_motion_cfg()), tmp_path / "env" / "motion.safetensors")
    out = fit_pack(pack, tmp_path / "fit.safetensors", steps=5)
    fitted = motion_neural.load_model(out)
    assert fitted.cfg == tiny_motion_cfg()
    changed = any(not torch.equal(a, b) for a, b in zip(fitted.state_dict().values(),
                                                        motion_neural.load_model(base).state_dict().values()))
    assert changed


def test_cli_hooks_check_arguments(tmp_path):
    with pytest.raises(InputError):
        cli_hooks.train_motion(tmp_path, tmp_path / "m.safetensors", mixed_precision="fp8")
    with pytest.raises(InputError):
        cli_hooks.train_motion(tmp_path, tmp_path / "m.safetensors", preset="huge")
    with pytest.raises(LipdubError):
        cli_hooks.preprocess(tmp_path / "missing", tmp_path / "out")


@pytest.mark.gpu
def test_full_size_training_step_on_gpu(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    data = write_shards(tmp_path / "shards", T=200)
    cfg = tiny_train_cfg(steps=5, batch_size=16, window=48, ref_len=150)
    out = train(data, tmp_path / "m.safetensors", cfg, MotionTransformerConfig(feat_dim=D))
    assert motion_neural.load_model(out, device="cuda").cfg.d_model == 128
    rcfg = rtrain.RendererTrainConfig(vae_steps=2, steps=2, batch_size=4, mixed_precision="bf16")
    out = rtrain.train(data, tmp_path / "r.safetensors", rcfg, RendererConfig(image_size=64))
    assert render_neural.load_model(out, device="cuda").cfg.image_size == 64


def test_train_motion_hook_uses_the_preset(tmp_path):
    data = write_shards(tmp_path / "shards")
    out = cli_hooks.train_motion(data, tmp_path / "m.safetensors", steps=2, batch_size=2, cpu=True, model="transformer")
    m = motion_neural.load_model(out)
    assert (m.cfg.feat_dim, m.cfg.d_model, m.cfg.n_layers) == (D, 64, 2)


def test_trainings_of_another_precision_in_one_process():
    """accelerate refuses a second Accelerator of another precision in a process; training resets it."""
    from lipdub.train.motion import accelerator, fit_model

    clip = synthetic_clip(D=D)
    for precision in ("no", "bf16", "no"):
        fit_model(MotionTransformer(tiny_motion_cfg()), [clip], tiny_train_cfg(steps=1, mixed_precision=precision),
                  cpu=True)
        assert accelerator(precision, cpu=True).mixed_precision == precision
