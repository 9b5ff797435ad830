"""Full-size smoke run and timings of the neural engine on a CUDA GPU:
`python -m lipdub.benchgpu --data SHARDS --out DIR [--minutes M]`.

1. Trains the "base" MotionTransformer and a 256 px MouthRenderer (4-level VAE, UNet channels
   128/256/512 with reference cross-attention at two levels) on preprocessed shards through the
   same train() entry points as `lipdub train`, in bf16, each for a share of the time budget (a
   short calibration run sets the step counts).
2. Loads both back from their safetensors files; compares the motion model with the reference
   engine on held-out speakers (lipdub.train.evaluate).
3. Times 256 px mouth sampling through NeuralRenderer.render_crop, one frame at a time as
   `lipdub run` does, and in batches, for 4-, 8- and 20-step sampling.
Writes DIR/results.json (also printed), the loss logs and DIR/samples.png (crops of a training
speaker and of a held-out one, each with its re-rendered version below).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import numpy as np

FULL_RENDERER = dict(image_size=256, vae_channels=(64, 128, 256, 256), channels=(128, 256, 512),
                     attn_levels=(1, 2))
HOLDOUT = ["lrs2_00019", "vox_00010", "vox_00373", "vox_796100172"]
STEPS = (4, 8, 20)


def _timed(fn):
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def _fill(train_fn, n: int, seconds: float) -> tuple[int, float]:
    """Steps that fill ``seconds``: after a warm-up run, runs of n and 2n steps are timed; their
    difference is the time of n steps without the start-up (data loading, encoding)."""
    train_fn(n, "calib0")
    _, t1 = _timed(lambda: train_fn(n, "calib1"))
    _, t2 = _timed(lambda: train_fn(2 * n, "calib2"))
    per_step = max(t2 - t1, 1e-3) / n
    return max(n, int((seconds - t1 + n * per_step) / per_step)), per_step


def train_motion(data: Path, out: Path, holdout: list, seconds: float, mixed: str) -> dict:
    from lipdub.motion.transformer import MotionTransformerConfig
    from lipdub.train.cli_hooks import MOTION_PRESETS
    from lipdub.train.motion import MotionTrainConfig, load_clips, train

    model_kw, train_kw = MOTION_PRESETS["base"]
    mcfg = MotionTransformerConfig(feat_dim=load_clips(data, holdout)[0].feats.shape[1], **model_kw)

    def run(steps, name):
        cfg = MotionTrainConfig(steps=steps, batch_size=32, mixed_precision=mixed, holdout=holdout,
                                checkpoint_every=max(steps // 2, 1), **train_kw)
        return train(data, out / f"motion_{name}.safetensors", cfg, mcfg)

    steps, per_step = _fill(run, 40, seconds)
    path, dt = _timed(lambda: run(steps, "full"))
    return dict(path=str(path), steps=steps, seconds=round(dt, 1), steps_per_s=round(steps / dt, 1),
                calib_s_per_step=round(per_step, 4), config=asdict(mcfg), log=_log_ends(path))


def train_renderer(data: Path, out: Path, holdout: list, seconds: float, mixed: str) -> dict:
    from lipdub.render.diffusion import RendererConfig
    from lipdub.train.renderer import RendererTrainConfig, train

    rcfg = RendererConfig(**FULL_RENDERER)

    def run(steps, name):  # a third of the steps trains the VAE, the rest the denoiser
        cfg = RendererTrainConfig(vae_steps=steps // 3, steps=steps - steps // 3, batch_size=16,
                                  mixed_precision=mixed, holdout=holdout, checkpoint_every=max(steps // 2, 1))
        return train(data, out / f"renderer_{name}.safetensors", cfg, rcfg)

    steps, per_step = _fill(run, 30, seconds)
    path, dt = _timed(lambda: run(steps, "full"))
    return dict(path=str(path), steps=steps, seconds=round(dt, 1), steps_per_s=round(steps / dt, 2),
                calib_s_per_step=round(per_step, 4), config=asdict(rcfg), log=_log_ends(path))


def _log_ends(weights: Path) -> dict:
    """First and last logged losses of a training run (per phase for the renderer)."""
    rows = [json.loads(line) for line in Path(f"{weights}.log.jsonl").read_text().splitlines()]
    ends = {}
    for r in rows:
        key = r.get("phase", "motion")
        ends.setdefault(key, [r, r])[1] = r
    return {k: {"first": a, "last": b} for k, (a, b) in ends.items()}


def motion_heldout(data: Path, weights: Path, holdout: list) -> dict:
    from lipdub.train.evaluate import benchmark

    clips = [h for h in holdout if (data / f"{h}.npz").exists()]
    return {e: round(float(np.mean([r["corr"] for r in benchmark(data, clips, weights=w, engine=e)])), 3)
            for e, w in (("stage1", None), ("neural", weights))}


def shard_pack(path: Path):
    """A StylePack with crops from one preprocessed shard."""
    from lipdub.style.pack import rest_shape
    from lipdub.types import StylePack

    with np.load(path) as z:
        lips, voiced = z["lips"].astype(np.float32), z["voiced"].astype(np.float32)
        feats = z["feats"] if "feats" in z.files else np.zeros((len(lips), 0), np.float16)
        return StylePack(feats=feats, voiced=voiced, lips=lips, pose=np.zeros((len(lips), 3), np.float32),
                         rest_lips=rest_shape(lips, voiced), template=np.zeros((468, 2), np.float32),
                         crops=z["crops"], crop_index=z["crop_index"], crop_points=z["crop_points"],
                         fps=Fraction(int(z["fps_num"]), int(z["fps_den"])),
                         meta=dict(canon_to_crop=z["canon_to_crop"].tolist(), crop_size=z["crops"].shape[1]))


def sampling_speed(model, pack, device: str, frames: int = 12, batch: int = 16) -> dict:
    """Frames per second of mouth sampling for each sampler and step count: one frame at a time
    through NeuralRenderer.render_crop (as `lipdub run` renders), and batches of ``batch``."""
    import torch

    from lipdub.render import neural as rn

    res = {}
    for sampler in ("dpm", "ddim"):
        for steps in STEPS:
            r = rn.NeuralRenderer(pack, None, None, steps=steps, sampler=sampler, device=device, model=model)
            r.render_crop(pack.crops[0], pack.crop_points[0], pack.lips[0])  # warm-up
            _, dt = _timed(lambda: [r.render_crop(pack.crops[i], pack.crop_points[i], pack.lips[i])
                                    for i in range(frames)])
            cond = torch.zeros(batch, model.cfg.latent_channels + 1, *r.ref_latents.shape[-2:], device=device)
            code = torch.zeros(batch, model.cfg.lip_dim, device=device)
            refs = r.ref_latents.expand(batch, *r.ref_latents.shape[1:])
            rn.sample(model, cond, code, refs, steps, sampler)
            _, dtb = _timed(lambda: model.decode(rn.sample(model, cond, code, refs, steps, sampler)))
            res[f"{sampler}_{steps}"] = dict(fps_one_frame=round(frames / dt, 2), fps_batch16=round(batch / dtb, 1))
    return res


def sample_sheet(model, packs: list, path: Path, device: str, n: int = 8) -> None:
    """PNG: per pack, a row of its crops and a row of the same crops re-rendered (8-step DPM-Solver)
    for the lips of other frames of that speaker (first pack's rows on top)."""
    import cv2

    from lipdub.render import neural as rn

    rows = []
    for pack in packs:
        r = rn.NeuralRenderer(pack, None, None, steps=8, device=device, model=model)
        idx = np.linspace(0, len(pack.crops) - 1, n).round().astype(int)
        lips = pack.lips[pack.crop_index[idx[::-1]]]
        rows.append(np.concatenate([pack.crops[i] for i in idx], 1))
        rows.append(np.concatenate([r.render_crop(pack.crops[i], pack.crop_points[i], lp) for i, lp in zip(idx, lips)], 1))
    size = min(row.shape[0] for row in rows)
    rows = [cv2.resize(row, (size * n, size), interpolation=cv2.INTER_AREA) for row in rows]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


def main(argv=None) -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=4.0, help="training time budget, both models together")
    ap.add_argument("--mixed-precision", default="bf16")
    ap.add_argument("--dry-run", action="store_true", help="tiny models on the CPU (checks the script)")
    a = ap.parse_args(argv)
    if not (torch.cuda.is_available() or a.dry_run):
        raise SystemExit("lipdub.benchgpu needs a CUDA GPU (or --dry-run)")
    if a.dry_run:
        FULL_RENDERER.update(image_size=64, vae_channels=(32, 64), channels=(32, 64), attn_levels=(1,))
        a.mixed_precision = "no"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a.out.mkdir(parents=True, exist_ok=True)
    res = dict(device=torch.cuda.get_device_name() if device == "cuda" else "cpu", torch=torch.__version__, holdout=HOLDOUT)
    save = lambda: (a.out / "results.json").write_text(json.dumps(res, indent=1))
    budget = a.minutes * 60
    steps = [("motion", train_motion, 0.15), ("renderer", train_renderer, 0.85)]
    for name, fn, share in steps:
        res[name] = fn(a.data, a.out, HOLDOUT, budget * share, a.mixed_precision)
        save()
        print(name, json.dumps(res[name]["log"]), flush=True)
    res["motion_heldout_corr"] = motion_heldout(a.data, Path(res["motion"]["path"]), HOLDOUT)
    save()
    from lipdub.render import neural as rn

    model = rn.load_model(res["renderer"]["path"], device)
    trained = sorted(p for p in a.data.glob("*.npz") if p.stem not in HOLDOUT)[0]
    held_out = shard_pack(a.data / f"{HOLDOUT[-1]}.npz")
    res["sampling_256px"] = sampling_speed(model, held_out, device)
    save()
    sample_sheet(model, [shard_pack(trained), held_out], a.out / "samples.png", device)
    print(json.dumps({k: res[k] for k in ("device", "motion_heldout_corr", "sampling_256px")}, indent=1))


if __name__ == "__main__":
    main()
