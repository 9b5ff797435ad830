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
from lipdub.face.landmarks import JAW
from lipdub.render import composite
from lipdub.motion.neural import REPO_WEIGHTS, find_weights, read_weights, save_weights, search_paths  # noqa: F401

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


def lower_face_mask(points: np.ndarray, size: int) -> np.ndarray:
    """[S, S] float32, 1 on the lower face of a crop: below the cheek-nose line (UPPER_BOUND points,
    [P, 2] crop pixels) down to the bottom edge. This is what the renderer regenerates; the
    target's pixels there are never given to the model."""
    import cv2

    from lipdub.face.landmarks import UPPER_BOUND

    top = np.asarray(points, np.float64)[UPPER_BOUND]
    poly = np.concatenate([[[-1, top[0, 1]]], top, [[size, top[-1, 1]], [size, size], [-1, size]]])
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    return mask.astype(np.float32)


def pick_references(lips: np.ndarray, k: int) -> np.ndarray:
    """Indices of k exemplars spread over mouth opening (closed to wide), for cross-attention."""
    from lipdub.face.landmarks import mouth_opening

    op = np.nan_to_num(mouth_opening(lips), nan=0.0)
    order = np.argsort(op, kind="stable")
    return order[np.linspace(0, len(order) - 1, k).round().astype(int)]


def to_model_images(crops: np.ndarray, size: int):
    """[K, S, S, 3] uint8 -> float tensor [K, 3, size, size] in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False) \
        if x.shape[-1] != size else x


class NeuralRenderer:
    """Renderer interface of the reference engine: render(frame, out_t, src_t) -> frame.

    Works in the pack's crop space: the source frame's lower-face crop is masked, the mouth for
    motion.lips[out_t] is sampled with K reference crops of the pack, and the result is blended
    back into the frame with a feathered lower-face mask. Frames with no face pass through
    unchanged."""

    engine = "neural"

    def __init__(self, pack, track, motion, schedule=None, weights=None, steps: int = 8,
                 sampler: str = "dpm", seed: int = 0, device: str = "cpu", model=None):
        import torch

        from lipdub.style.pack import crop_space

        if len(pack.crops) == 0:
            raise InputError("the style pack has no mouth crops to render from")
        if sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {sampler!r} (choose from {', '.join(SAMPLERS)})")
        self.model = model if model is not None else load_model(weights, device)
        self.pack, self.track, self.motion, self.schedule = pack, track, motion, schedule
        self.steps, self.sampler, self.seed, self.device = steps, sampler, seed, device
        self.space = crop_space(pack)
        cfg = self.model.cfg
        ref_lips = pack.lips[pack.crop_index]
        idx = pick_references(ref_lips, cfg.n_refs)
        with torch.no_grad():
            refs = to_model_images(pack.crops[idx], cfg.image_size).to(device)
            self.ref_latents = self.model.encode(refs)[None]
        self.mean_lips = torch.as_tensor(np.nanmean(pack.lips, axis=0), device=device)[None]
        self.comp = composite.Compositor()

    def render_crop(self, crop: np.ndarray, crop_points: np.ndarray, lips: np.ndarray) -> np.ndarray:
        """[S, S, 3] uint8 crop with its lower face regenerated for [40, 2] canonical lips."""
        import torch
        import torch.nn.functional as F

        m, S, s = self.model, crop.shape[0], self.model.cfg.image_size
        mask = lower_face_mask(crop_points * (s / S), s)
        with torch.no_grad():
            target = to_model_images(crop[None], s).to(self.device)
            cond = m.condition(target, torch.as_tensor(mask, device=self.device)[None, None])
            code = m.motion_code(torch.as_tensor(lips, device=self.device)[None], self.mean_lips)
            z = sample(m, cond, code, self.ref_latents, self.steps, self.sampler, self.seed)
            img = m.decode(z)
            img = F.interpolate(img, size=(S, S), mode="bicubic", align_corners=False) if S != s else img
        return ((img[0].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).clip(0, 255).round().astype(np.uint8)

    def render(self, frame: np.ndarray, out_t: int, src_t: int) -> np.ndarray:
        from lipdub.face import geometry as G

        from ..media.frame import as_rgb

        frame = as_rgb(frame)  # the diffusion model works on the whole crop in RGB
        tr = self.track
        if src_t >= len(tr) or not tr.found[src_t] or out_t >= len(self.motion):
            return frame
        to_crop = self.space.frame_to_crop(tr.to_canon[src_t])
        crop = self.space.warp_in(frame, tr.to_canon[src_t])
        pts = G.apply(to_crop, tr.points[src_t].astype(np.float64))
        back = G.invert(to_crop)
        region = composite.lower_face(pts, pts[JAW], back, self.space.size, frame.shape)
        if region is None:
            return frame
        new = self.render_crop(crop, pts, self.motion.lips[out_t])
        return self.comp.blend(frame, region, composite.crop_to_roi(new, back, region))


