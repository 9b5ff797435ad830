"""Neural render engine: samples mouth crops from the latent-diffusion MouthRenderer.

The networks live in render.diffusion; this module holds the weights loading, the sampler (diffusers
DDIM or DPM-Solver++ multistep schedulers, deterministic for a seed) and NeuralRenderer, which has
the reference renderer's interface. Weights: renderer.safetensors on the same search list as the
motion weights. torch and diffusers are imported lazily.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lipdub.errors import InputError, WeightsNotFoundError
from lipdub.motion.neural import find_weights, read_weights, save_weights, REPO_WEIGHTS

FORMAT = "lipdub.renderer/1"
FILENAME = "renderer.safetensors"
TRAIN_HINT = "train them with: lipdub train renderer --data DIR --out weights/renderer.safetensors"
SAMPLERS = ("ddim", "dpm")


def available(path=None) -> bool:
    """True when renderer weights exist on a search path and torch/diffusers are importable."""
    try:
        find_weights(FILENAME, "renderer", TRAIN_HINT, path)
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except (WeightsNotFoundError, ImportError):
        return False
    return True


def save_model(model, path, extra: dict | None = None) -> Path:
    """Save a MouthRenderer; a VAE loaded from cfg.vae_path is not copied into the file."""
    state = {k: v for k, v in model.state_dict().items()
             if not (model.cfg.vae_path and k.startswith("vae."))}
    return save_weights(path, state, model.cfg.to_dict(), FORMAT, extra)


def build_model(cfg):
    """A MouthRenderer for cfg; its VAE from cfg.vae_path (a local diffusers folder) when set."""
    from lipdub.render.diffusion import MouthRenderer

    vae = None
    if cfg.vae_path:
        p = Path(cfg.vae_path)
        p = p if p.is_absolute() else REPO_WEIGHTS.parent / p
        if not (p / "config.json").is_file():
            raise WeightsNotFoundError("VAE", [p], "place a diffusers AutoencoderKL folder there")
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(str(p), local_files_only=True)
    return MouthRenderer(cfg, vae=vae)


def load_model(path=None, device: str = "cpu"):
    """MouthRenderer in eval mode from the first weights found; raises WeightsNotFoundError."""
    from lipdub.render.diffusion import RendererConfig

    p = find_weights(FILENAME, "renderer", TRAIN_HINT, path)
    state, config, _ = read_weights(p, FORMAT)
    model = build_model(RendererConfig.from_dict(config))
    model.load_state_dict(state, strict=not model.cfg.vae_path)
    return model.to(device).eval()


def make_scheduler(name: str, cfg):
    """A diffusers scheduler with the noise schedule the model was trained with."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    kw = dict(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
              beta_start=cfg.beta_start, beta_end=cfg.beta_end, prediction_type="epsilon")
    if name == "ddim":
        return DDIMScheduler(clip_sample=False, set_alpha_to_one=False, **kw)
    if name == "dpm":
        return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, **kw)
    raise InputError(f"unknown sampler {name!r} (choose from {', '.join(SAMPLERS)})")


def sample(model, cond, motion, ref_latents, steps: int = 8, sampler: str = "dpm", seed: int = 0):
    """Denoise from seeded noise to clean latents [B, c, h, w]. cond: MouthRenderer.condition(...),
    motion: [B, lip_dim], ref_latents: [B, K, c, h, w]. Same inputs and seed -> same output."""
    import torch

    if steps < 1:
        raise InputError(f"sampling steps must be >= 1, got {steps}")
    sched = make_scheduler(sampler, model.cfg)
    sched.set_timesteps(steps, device=cond.device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    shape = (cond.shape[0], model.cfg.latent_channels, *cond.shape[-2:])
    x = torch.randn(shape, generator=gen).to(cond.device, cond.dtype) * sched.init_noise_sigma
    with torch.no_grad():
        for t in sched.timesteps:
            eps = model(sched.scale_model_input(x, t), cond, t, motion, ref_latents)
            x = sched.step(eps, t, x).prev_sample
    return x
