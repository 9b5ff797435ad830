"""Training of the latent-diffusion MouthRenderer on the mouth crops of preprocessed shards.

Phase 1 (vae_steps, skipped when the config names a pretrained VAE folder): the tiny AutoencoderKL
learns to reconstruct crops (L1 + a small KL term). Phase 2 (steps): the VAE is frozen, crops are
encoded once, and the UNet learns to predict the noise added to a target crop's latent, given the
latent of that crop with its lower face masked, the mask, the target's lips and K other crops of
the same speaker. Same accelerate machinery as lipdub.train.motion (checkpoints, resume, JSONL log).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lipdub.errors import InputError
from lipdub.train.motion import Clip, Progress, accelerator, latest_checkpoint, load_clips, save_checkpoint


@dataclass
class RendererTrainConfig:
    vae_steps: int = 2000
    steps: int = 5000
    batch_size: int = 16
    lr: float = 2e-4
    vae_lr: float = 5e-4
    kl_weight: float = 1e-6
    mixed_precision: str = "no"
    checkpoint_every: int = 500
    log_every: int = 25
    seed: int = 0
    holdout: list = field(default_factory=list)


class CropData:
    """All crops at the model's size: images [M,3,s,s] in [-1,1], masks [M,1,s,s], lips [M,40,2],
    mean lips of their clip [M,40,2], and the crops of each speaker (for references)."""

    def __init__(self, clips: list[Clip], size: int):
        import torch

        from lipdub.render.neural import lower_face_mask, to_model_images

        imgs, masks, lips, means, spk = [], [], [], [], []
        for c in clips:
            if c.crops is None or not len(c.crops):
                continue
            S = c.crops.shape[1]
            ok = np.isfinite(c.lips[c.crop_index]).all(axis=(1, 2))
            imgs.append(to_model_images(c.crops[ok], size))
            masks += [lower_face_mask(p * (size / S), size) for p in c.crop_points[ok]]
            lips.append(c.lips[c.crop_index[ok]])
            means.append(np.repeat(np.nanmean(c.lips, axis=0)[None], ok.sum(), 0))
            spk += [c.speaker] * int(ok.sum())
        if not spk:
            raise InputError("no mouth crops in the training shards")
        self.images = torch.cat(imgs)
        self.masks = torch.as_tensor(np.stack(masks))[:, None]
        self.lips = torch.as_tensor(np.concatenate(lips))
        self.means = torch.as_tensor(np.concatenate(means).astype(np.float32))
        spk = np.array(spk)
        self.groups = [np.flatnonzero(spk == s) for s in np.unique(spk)]
        self.group_of = np.zeros(len(spk), int)
        for g, idx in enumerate(self.groups):
            self.group_of[idx] = g

    def __len__(self):
        return len(self.images)

    def batch(self, k: int, batch_size: int, n_refs: int, seed: int):
        """(target indices [B], reference indices [B, K]) for step k: references come from the
        same speaker, other crops where there are enough."""
        rng = np.random.default_rng([seed, k])
        tgt = rng.integers(0, len(self), batch_size)
        refs = []
        for j in tgt:
            pool = self.groups[self.group_of[j]]
            others = pool[pool != j] if len(pool) > 1 else pool
            refs.append(rng.choice(others, n_refs, replace=len(others) < n_refs))
        return tgt, np.stack(refs)


def vae_loss(model, images, kl_weight: float = 1e-6):
    """L1 reconstruction of crops through the VAE plus a small KL term."""
    post = model.vae.encode(images).latent_dist
    rec = model.vae.decode(post.sample()).sample
    return (rec - images).abs().mean() + kl_weight * post.kl().mean()


def denoise_loss(model, noise_sched, z0, cond, motion, ref_latents, gen):
    """MSE between added and predicted noise at random timesteps (generator ``gen``)."""
    import torch

    B = z0.shape[0]
    noise = torch.randn(z0.shape, generator=gen).to(z0)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (B,), generator=gen).to(z0.device)
    noisy = noise_sched.add_noise(z0, noise, t)
    return torch.nn.functional.mse_loss(model(noisy, cond, t, motion, ref_latents).float(), noise.float())


def encode_all(model, data: CropData, device, chunk: int = 64):
    """(clean latents [M,c,h,w], conditions [M,c+1,h,w]) of every crop, with the frozen VAE."""
    import torch

    z, cond = [], []
    with torch.no_grad():
        for a in range(0, len(data), chunk):
            im, mk = data.images[a:a + chunk].to(device), data.masks[a:a + chunk].to(device)
            z.append(model.encode(im))
            cond.append(model.condition(im, mk))
    return torch.cat(z), torch.cat(cond)


def fit_renderer(model, data: CropData, cfg: RendererTrainConfig, ckpt_dir: Path | None = None,
                 log_path: Path | None = None, progress: Progress = None, cpu: bool = False):
    """Both phases on ``model`` in place; resumes from the latest complete checkpoint."""
    import torch
    from diffusers import DDPMScheduler

    acc = accelerator(cfg.mixed_precision, cpu)
    torch.manual_seed(cfg.seed)
    mc = model.cfg
    vae_steps = 0 if mc.vae_path else cfg.vae_steps
    noise_sched = DDPMScheduler(num_train_timesteps=mc.num_train_timesteps, beta_schedule=mc.beta_schedule,
                                beta_start=mc.beta_start, beta_end=mc.beta_end)
    vae_opt = torch.optim.AdamW(model.vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    opt = torch.optim.AdamW(model.unet.parameters(), lr=cfg.lr, weight_decay=0.01)
    model, vae_opt, opt = acc.prepare(model, vae_opt, opt)
    core = acc.unwrap_model(model)
    start = 0
    if ckpt_dir is not None:
        start, path = latest_checkpoint(Path(ckpt_dir))
        if path is not None:
            acc.load_state(str(path))
    log = open(log_path, "a") if (log_path and acc.is_main_process) else None
    total, cache, running, t0 = vae_steps + cfg.steps, None, [], time.time()
    try:
        for k in range(start, total):
            tgt, refs = data.batch(k * acc.num_processes + acc.process_index, cfg.batch_size, mc.n_refs, cfg.seed)
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + k)
            model.train()
            if k < vae_steps:
                phase, o = "vae", vae_opt
                with acc.autocast():
                    loss = vae_loss(core, data.images[tgt].to(acc.device), cfg.kl_weight)
            else:
                phase, o = "unet", opt
                if cache is None:
                    core.vae.eval().requires_grad_(False)
                    cache = encode_all(core, data, acc.device)
                z, cond = cache
                ti, ri = torch.as_tensor(tgt), torch.as_tensor(refs)
                motion = core.motion_code(data.lips[ti].to(acc.device), data.means[ti].to(acc.device))
                with acc.autocast():
                    loss = denoise_loss(model, noise_sched, z[ti], cond[ti], motion, z[ri], gen)
            o.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.clip_grad_norm_([p for g in o.param_groups for p in g["params"]], 1.0)
            o.step()
            running.append(float(loss.detach()))
            if (k + 1) % cfg.log_every == 0 or k + 1 == total:
                if log:
                    log.write(json.dumps(dict(step=k + 1, phase=phase, loss=float(np.mean(running)),
                                              seconds=round(time.time() - t0, 1))) + "\n")
                    log.flush()
                running = []
                if progress:
                    progress(f"train renderer ({phase})", k + 1, total)
            if ckpt_dir is not None and (k + 1) % cfg.checkpoint_every == 0:
                save_checkpoint(acc, ckpt_dir, k + 1)
    finally:
        if log:
            log.close()
    core.eval()
    return core


def train(data_dir, out, cfg: RendererTrainConfig | None = None, model_cfg=None,
          progress: Progress = None, cpu: bool = False) -> Path:
    """Train a MouthRenderer on the crops of the shards in data_dir; save to ``out`` (safetensors,
    config in the metadata). Checkpoints in <out>.ckpt/, loss log in <out>.log.jsonl."""
    from lipdub.render.diffusion import RendererConfig
    from lipdub.render.neural import build_model, save_model

    cfg = cfg or RendererTrainConfig()
    model_cfg = model_cfg or RendererConfig()
    data = CropData(load_clips(data_dir, cfg.holdout, want_crops=True), model_cfg.image_size)
    out = Path(out)
    model = fit_renderer(build_model(model_cfg), data, cfg, Path(f"{out}.ckpt"), Path(f"{out}.log.jsonl"),
                         progress, cpu)
    return save_model(model, out, extra={"train": asdict(cfg), "crops": len(data)})
