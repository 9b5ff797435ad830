"""Training of the motion models (Stage1Net, the default engine's; MotionTransformer, the neural
engine's) on preprocessed shards (see lipdub.train.preprocess).

Each example pairs a target window of one clip with a reference drawn from another time of the
same speaker (the rest of that clip, or another clip of the speaker). The speech features of a
shard with audio are Whisper states in several voice-augmented variants (lipdub.train.speech_data);
target and reference each draw a variant. Now and then the reference is made still (its mean
shape only), so the model also learns to work without one (a photo). Loss: L1 on the lips, an L1
velocity term and an L1 term on the inner-lip opening, all in units of cfg.lip_scale. Runs on accelerate (CPU, one GPU, or
`accelerate launch` for several), with mixed precision, periodic checkpoints, resume, and a JSONL
loss log beside the output file.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from lipdub.errors import InputError
from lipdub.face.landmarks import LOWER_MID, UPPER_MID

Progress = Callable[[str, int, int], None] | None


@dataclass
class Clip:
    """One talking-face recording: feats [T, D], voiced [T], lips [T, 40, 2] (NaN = no face);
    variants: other versions of feats (the same speech in other voices), feats included."""

    feats: np.ndarray
    voiced: np.ndarray
    lips: np.ndarray
    speaker: str
    name: str = ""
    variants: list = field(default_factory=list)
    crops: np.ndarray | None = None  # [K, S, S, 3] uint8 mouth crops (renderer training only)
    crop_index: np.ndarray | None = None  # [K] frame of each crop
    crop_points: np.ndarray | None = None  # [K, P, 2] landmarks in crop pixels

    def __post_init__(self):
        if not self.variants and self.feats is not None:
            self.variants = [self.feats]


@dataclass
class MotionTrainConfig:
    steps: int = 3000
    batch_size: int = 16
    window: int = 48  # target frames per example
    ref_len: int = 150  # reference frames per example (at most)
    gap: int = 8  # frames kept between the target window and a same-clip reference
    lr: float = 3e-4
    weight_decay: float = 0.01
    vel_weight: float = 1.0
    feat_noise: float = 0.0  # std of Gaussian noise added to the audio features (augmentation)
    open_weight: float = 1.0  # weight of the inner-lip opening term
    still_ref: float = 0.1  # share of examples whose reference is still (its mean shape only)
    grad_clip: float = 1.0
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16"
    checkpoint_every: int = 500
    log_every: int = 25
    seed: int = 0
    holdout: list = field(default_factory=list)


def shard_paths(data_dir) -> list[Path]:
    return sorted(p for p in Path(data_dir).rglob("*.npz") if not p.name.startswith("speech-v"))


def load_clips(data_dir, holdout=(), want_crops: bool = False, variants: int = 3, progress: Progress = None) -> list[Clip]:
    """Clips from every *.npz shard under data_dir, leaving out speakers (or shard stems) in holdout.
    A shard with ``audio`` gets Whisper speech features in ``variants`` versions (cached beside the
    shards); one with ``feats`` (a test's synthetic shard) uses those."""
    clips, audio = [], []
    for p in shard_paths(data_dir):
        with np.load(p, allow_pickle=False) as z:
            speaker = str(z["speaker"])
            if "audio" in z.files:
                fps = Fraction(int(z["fps_num"]), int(z["fps_den"]))
                audio.append((p.stem, z["audio"].astype(np.float32) / 32767, fps, len(z["lips"])))
            if speaker in holdout or p.stem in holdout:
                continue
            crops = (z["crops"], z["crop_index"], z["crop_points"].astype(np.float32)) if want_crops else ()
            feats = z["feats"].astype(np.float32) if "feats" in z.files else None
            clips.append(Clip(feats, z["voiced"].astype(np.float32), z["lips"].astype(np.float32), speaker, p.stem,
                              [], *crops))
    if not clips:
        raise InputError(f"no training shards (*.npz) in {data_dir} (make them with: lipdub preprocess)")
    if audio:
        from lipdub.train.speech_data import load_speech

        speech = load_speech(data_dir, audio, variants, progress=progress)
        del audio
        for c in clips:
            if c.feats is None:
                c.variants = [v[c.name] for v in speech]
                c.feats = c.variants[0]
    return clips


class PairSampler:
    """Batches of (target window, same-speaker reference) as numpy arrays; batch k of a given seed
    is always the same, so a resumed run sees the data it would have seen."""

    def __init__(self, clips: list[Clip], cfg: MotionTrainConfig):
        self.clips, self.cfg = [c for c in clips if len(c.feats) >= cfg.window], cfg
        if not self.clips:
            raise InputError(f"every clip is shorter than the training window ({cfg.window} frames)")
        self.by_speaker: dict[str, list[int]] = {}
        for i, c in enumerate(self.clips):
            self.by_speaker.setdefault(c.speaker, []).append(i)
        self.weights = np.array([len(c.feats) for c in self.clips], float)
        self.weights /= self.weights.sum()

    def _reference(self, rng, ci: int, s: int, e: int):
        cfg, clip = self.cfg, self.clips[ci]
        pieces = [(ci, 0, s - cfg.gap), (ci, e + cfg.gap, len(clip.feats))]
        pieces += [(j, 0, len(self.clips[j].feats)) for j in self.by_speaker[clip.speaker] if j != ci]
        pieces = [p for p in pieces if p[2] - p[1] >= 8]
        if not pieces:  # clip too short to hold both: the reference overlaps the target
            pieces = [(ci, 0, len(clip.feats))]
        lens = np.array([b - a for _, a, b in pieces], float)
        j, a, b = pieces[rng.choice(len(pieces), p=lens / lens.sum())]
        n = min(cfg.ref_len, b - a)
        a = a + int(rng.integers(0, b - a - n + 1))
        return self.clips[j], a, a + n

    def batch(self, k: int) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, k])
        B, W, R = cfg.batch_size, cfg.window, cfg.ref_len
        D = self.clips[0].feats.shape[1]
        out = dict(feats=np.zeros((B, W, D), np.float32), voiced=np.zeros((B, W), np.float32),
                   lips=np.zeros((B, W, 40, 2), np.float32), valid=np.zeros((B, W), bool),
                   ref_feats=np.zeros((B, R, D), np.float32), ref_voiced=np.zeros((B, R), np.float32),
                   ref_lips=np.zeros((B, R, 40, 2), np.float32), ref_valid=np.zeros((B, R), bool))
        for i in range(B):
            ci = int(rng.choice(len(self.clips), p=self.weights))
            c = self.clips[ci]
            s = int(rng.integers(0, len(c.feats) - W + 1))
            feats = c.variants[int(rng.integers(len(c.variants)))]
            out["feats"][i], out["voiced"][i] = feats[s:s + W], c.voiced[s:s + W]
            lips = c.lips[s:s + W]
            out["valid"][i] = np.isfinite(lips).all(axis=(1, 2))
            out["lips"][i] = np.nan_to_num(lips)
            r, a, b = self._reference(rng, ci, s, s + W)
            n = b - a
            rfeats = r.variants[int(rng.integers(len(r.variants)))]
            out["ref_feats"][i, :n], out["ref_voiced"][i, :n] = rfeats[a:b], r.voiced[a:b]
            valid = np.isfinite(r.lips[a:b]).all(axis=(1, 2))
            out["ref_valid"][i, :n] = valid
            out["ref_lips"][i, :n] = np.nan_to_num(r.lips[a:b])
            if rng.random() < cfg.still_ref and valid.any():  # no motion to learn style from: a photo
                out["ref_lips"][i, :n] = r.lips[a:b][valid].mean(0)
        if cfg.feat_noise:
            out["feats"] += rng.normal(0, cfg.feat_noise, out["feats"].shape).astype(np.float32)
            out["ref_feats"] += rng.normal(0, cfg.feat_noise, out["ref_feats"].shape).astype(np.float32)
        return out


def to_tensors(batch: dict, device) -> dict:
    import torch

    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}


def motion_loss(model, b: dict):
    """(total, {"l1", "vel"}) for a batch of tensors; frames without a face are left out."""
    import torch

    pred = model(b["feats"], b["voiced"], b["ref_feats"], b["ref_voiced"], b["ref_lips"], b["ref_valid"])
    scale = model.cfg.lip_scale if hasattr(model, "cfg") else model.module.cfg.lip_scale
    err = (pred.float() - b["lips"]).abs().mean(dim=(2, 3)) / scale  # [B, W]
    m = b["valid"].float()
    l1 = (err * m).sum() / m.sum().clamp_min(1)
    dv = ((pred[:, 1:] - pred[:, :-1]).float() - (b["lips"][:, 1:] - b["lips"][:, :-1])).abs()
    mv = m[:, 1:] * m[:, :-1]
    vel = (dv.mean(dim=(2, 3)) / scale * mv).sum() / mv.sum().clamp_min(1)
    opening = lambda lips: (lips[..., UPPER_MID, :] - lips[..., LOWER_MID, :]).float().norm(dim=-1)  # noqa: E731
    op = ((opening(pred) - opening(b["lips"])).abs() / scale * m).sum() / m.sum().clamp_min(1)
    return l1, vel, op, torch.stack([l1.detach(), vel.detach(), op.detach()])


def lr_factor(k: int, steps: int, warmup: int = 100) -> float:
    """Linear warm-up, then cosine decay to a tenth (a Python float: checkpoints stay plain)."""
    return min(1.0, (k + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * k / max(steps, 1))))


def latest_checkpoint(ckpt_dir: Path):
    """(step, folder) of the newest complete checkpoint in ckpt_dir, or (0, None)."""
    steps = sorted((int(p.name.split("-")[1]), p) for p in ckpt_dir.glob("step-*") if (p / "done").exists())
    return steps[-1] if steps else (0, None)


def save_checkpoint(acc, ckpt_dir, step: int) -> None:
    """accelerate state in ckpt_dir/step-N, marked complete only once fully written."""
    d = Path(ckpt_dir) / f"step-{step}"
    acc.save_state(str(d))
    if acc.is_main_process:
        (d / "done").write_text("ok")


def accelerator(mixed_precision: str, cpu: bool = False):
    """An accelerate Accelerator. accelerate keeps one global state per process and refuses a
    second Accelerator with another precision; a new training run in the same process (a test, a
    notebook, prepare-style --fit after training) resets that state instead of failing."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    try:
        return Accelerator(mixed_precision=mixed_precision, cpu=cpu)
    except ValueError:
        AcceleratorState._reset_state()
        return Accelerator(mixed_precision=mixed_precision, cpu=cpu)


def fit_model(model, clips: list[Clip], cfg: MotionTrainConfig, ckpt_dir: Path | None = None,
              log_path: Path | None = None, progress: Progress = None, cpu: bool = False):
    """Train ``model`` in place on ``clips`` for cfg.steps optimiser steps; resumes from the latest
    complete checkpoint in ckpt_dir. Returns the unwrapped model."""
    import torch

    acc = accelerator(cfg.mixed_precision, cpu)
    torch.manual_seed(cfg.seed)
    sampler = PairSampler(clips, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, cfg.steps))
    model, opt, sched = acc.prepare(model, opt, sched)
    start = 0
    if ckpt_dir is not None:
        start, path = latest_checkpoint(Path(ckpt_dir))
        if path is not None:
            acc.load_state(str(path))
    log = open(log_path, "a") if (log_path and acc.is_main_process) else None
    model.train()
    t0, running = time.time(), []
    try:
        for k in range(start, cfg.steps):
            b = to_tensors(sampler.batch(k * acc.num_processes + acc.process_index), acc.device)
            with acc.autocast():
                l1, vel, op, parts = motion_loss(model, b)
                loss = l1 + cfg.vel_weight * vel + cfg.open_weight * op
            opt.zero_grad(set_to_none=True)
            acc.backward(loss)
            if cfg.grad_clip:
                acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            running.append(parts.cpu().numpy())
            if (k + 1) % cfg.log_every == 0 or k + 1 == cfg.steps:
                l1m, velm, opm = np.mean(running, axis=0)
                running = []
                if log:
                    log.write(json.dumps(dict(step=k + 1, l1=float(l1m), vel=float(velm), opening=float(opm),
                                              lr=sched.get_last_lr()[0], seconds=round(time.time() - t0, 1))) + "\n")
                    log.flush()
                if progress:
                    progress("train motion", k + 1, cfg.steps)
            if ckpt_dir is not None and ((k + 1) % cfg.checkpoint_every == 0):
                save_checkpoint(acc, ckpt_dir, k + 1)
    finally:
        if log:
            log.close()
    model.eval()
    return acc.unwrap_model(model)


def train(data_dir, out, cfg: MotionTrainConfig | None = None, model_cfg=None,
          progress: Progress = None, cpu: bool = False, extra: dict | None = None) -> Path:
    """Train a motion model on the shards in data_dir and save it to ``out`` (safetensors, config,
    training settings and ``extra`` in the metadata). model_cfg: a Stage1Config (the default
    engine's model, the default) or a MotionTransformerConfig. Checkpoints go to <out>.ckpt/, the
    loss log to <out>.log.jsonl; an interrupted run with the same arguments resumes."""
    from lipdub.motion.stage1_net import Stage1Config

    cfg = cfg or MotionTrainConfig()
    out = Path(out)
    clips = load_clips(data_dir, cfg.holdout, progress=progress)
    feat_dim = clips[0].feats.shape[1]
    model_cfg = model_cfg or Stage1Config(feat_dim=feat_dim)
    if model_cfg.feat_dim != feat_dim:
        raise InputError(f"shards have {feat_dim}-dim features, model config says {model_cfg.feat_dim}")
    meta = {"train": asdict(cfg), "speakers": sorted({c.speaker for c in clips}), "clips": len(clips),
            "data_sha256": data_hash(data_dir), **(extra or {})}
    if isinstance(model_cfg, Stage1Config):
        from lipdub.motion.stage1 import FORMAT
        from lipdub.motion.stage1_net import Stage1Net
        from lipdub.motion.neural import save_weights

        model = Stage1Net(model_cfg)
        model.set_feature_stats(*feature_stats(clips))
        model = fit_model(model, clips, cfg, Path(f"{out}.ckpt"), Path(f"{out}.log.jsonl"), progress, cpu)
        return save_weights(out, model.state_dict(), model_cfg.to_dict(), FORMAT, meta)
    from lipdub.motion.neural import save_model
    from lipdub.motion.transformer import MotionTransformer

    model = fit_model(MotionTransformer(model_cfg), clips, cfg, Path(f"{out}.ckpt"),
                      Path(f"{out}.log.jsonl"), progress, cpu)
    return save_model(model, out, extra=meta)


def feature_stats(clips: list[Clip]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of the clips' features (all variants)."""
    n, s, ss = 0, 0.0, 0.0
    for c in clips:
        for f in c.variants:
            x = f.astype(np.float64)
            n, s, ss = n + len(x), s + x.sum(0), ss + (x ** 2).sum(0)
    mean = s / max(n, 1)
    return mean.astype(np.float32), np.sqrt(np.maximum(ss / max(n, 1) - mean ** 2, 1e-8)).astype(np.float32)


def data_hash(data_dir) -> str:
    """sha256 of the training set: each shard's name and size, and the corpus manifest's sha256
    that `lipdub preprocess` recorded (SHARDS/source.json)."""
    import hashlib

    h = hashlib.sha256()
    src = Path(data_dir) / "source.json"
    if src.exists():
        h.update(src.read_bytes())
    for p in shard_paths(data_dir):
        h.update(f"{p.name}:{p.stat().st_size}\n".encode())
    return h.hexdigest()
