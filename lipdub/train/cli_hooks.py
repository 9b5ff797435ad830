"""Entry points the CLI wires as `lipdub preprocess`, `lipdub train motion|renderer` and
`lipdub prepare-style --fit`. Contract: arguments are plain values (paths, numbers, strings);
progress is a callback (stage, done, total); each returns what the CLI reports; errors are
LipdubError subclasses (InputError for bad arguments/data, WeightsNotFoundError for a missing
base model). Nothing here prints or exits. torch/accelerate are imported only when training runs.

Several GPUs or machines: `accelerate launch -m lipdub.cli train motion ...` (the training loops
run on accelerate; each process draws different batches).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

Progress = Callable[[str, int, int], None] | None

# Model/training presets for `lipdub train motion --preset`: "small" suits a few minutes of video
# per speaker and a few dozen speakers; "base" suits HDTF/VoxCeleb2-scale data.
MOTION_PRESETS = {
    "small": (dict(d_model=64, n_layers=2, dropout=0.2), dict(feat_noise=0.3, weight_decay=0.05)),
    "base": (dict(d_model=128, n_layers=3, dropout=0.1), dict(feat_noise=0.1, weight_decay=0.01)),
}


def preprocess(videos_dir: str | Path, out_dir: str | Path, with_crops: bool = True, max_per_speaker: int = 0,
               progress: Progress = None):
    """`lipdub preprocess VIDEOS_DIR OUT_DIR` -> PreprocessReport(written, existing, failed)."""
    from lipdub.train.preprocess import preprocess as run

    return run(videos_dir, out_dir, with_crops=with_crops, max_per_speaker=max_per_speaker, progress=progress)


MOTION_MODELS = ("stage1", "transformer")


def train_motion(data: str | Path, out: str | Path = "weights/stage1.safetensors", steps: int = 3000,
                 batch_size: int = 32, lr: float = 1e-3, model: str = "stage1", preset: str = "small",
                 mixed_precision: str = "no", checkpoint_every: int = 500, holdout: list[str] | None = None,
                 seed: int = 0, cpu: bool = False, command: str = "", progress: Progress = None) -> Path:
    """`lipdub train motion --data DIR --out FILE` -> the saved weights path. model: "stage1" (the
    default engine's Stage1Net) or "transformer" (the neural engine's MotionTransformer, shaped by
    ``preset``: see MOTION_PRESETS). Resumes from FILE.ckpt/ when present; loss log in
    FILE.log.jsonl; holdout: speaker ids (shard stems for videos directly in the preprocessed
    folder) to leave out; command: the command line, kept in the weights' metadata."""
    from lipdub.errors import InputError
    from lipdub.train.motion import MotionTrainConfig, load_clips, train

    _check(mixed_precision, steps, batch_size)
    if model not in MOTION_MODELS:
        raise InputError(f"--model must be one of {', '.join(MOTION_MODELS)}, not {model!r}")
    if preset not in MOTION_PRESETS:
        raise InputError(f"--preset must be one of {', '.join(MOTION_PRESETS)}, not {preset!r}")
    model_kw, train_kw = MOTION_PRESETS[preset] if model == "transformer" else ({}, {})
    cfg = MotionTrainConfig(steps=steps, batch_size=batch_size, lr=lr, mixed_precision=mixed_precision,
                            checkpoint_every=checkpoint_every, holdout=list(holdout or []), seed=seed, **train_kw)
    model_cfg = None
    if model == "transformer":
        from lipdub.motion.transformer import MotionTransformerConfig

        feat_dim = load_clips(data, cfg.holdout, progress=progress)[0].feats.shape[1]
        model_cfg = MotionTransformerConfig(feat_dim=feat_dim, **model_kw)
    return train(data, _out_folder(out), cfg, model_cfg, progress=progress, cpu=cpu,
                 extra={"command": command} if command else None)


def train_renderer(data: str | Path, out: str | Path = "weights/renderer.safetensors", steps: int = 5000,
                   vae_steps: int = 2000, batch_size: int = 16, lr: float = 2e-4, image_size: int = 64,
                   vae_path: str | None = None, mixed_precision: str = "no", checkpoint_every: int = 500,
                   holdout: list[str] | None = None, seed: int = 0, cpu: bool = False,
                   progress: Progress = None) -> Path:
    """`lipdub train renderer --data DIR --out FILE` -> the saved weights path. vae_path: a local
    diffusers AutoencoderKL folder (e.g. under weights/) instead of training the tiny VAE."""
    from lipdub.render.diffusion import RendererConfig
    from lipdub.train.renderer import RendererTrainConfig, train

    _check(mixed_precision, steps, batch_size)
    cfg = RendererTrainConfig(steps=steps, vae_steps=vae_steps, batch_size=batch_size, lr=lr,
                              mixed_precision=mixed_precision, checkpoint_every=checkpoint_every,
                              holdout=list(holdout or []), seed=seed)
    return train(data, _out_folder(out), cfg, RendererConfig(image_size=image_size, vae_path=vae_path),
                 progress=progress, cpu=cpu)


def fit_style(pack_path: str | Path, out: str | Path | None = None, base: str | Path | None = None,
              steps: int = 300, progress: Progress = None) -> Path:
    """`lipdub prepare-style ref.mp4 --fit`: fine-tune the motion model on a saved .lipstyle pack.
    out defaults to <pack>.motion.safetensors; pass it to lipdub.motion.predict(..., weights=out)."""
    from lipdub.style import load_pack
    from lipdub.train.fit import fit_pack

    pack_path = Path(pack_path)
    out = Path(out) if out else pack_path.with_name(pack_path.name + ".motion.safetensors")
    return fit_pack(load_pack(pack_path), out, base=base, steps=steps, progress=progress)


def _out_folder(out) -> Path:
    """The output path, with its folder created (a fresh clone has no weights/ subfolders)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _check(mixed_precision: str, steps: int, batch_size: int) -> None:
    from lipdub.errors import InputError

    if mixed_precision not in ("no", "fp16", "bf16"):
        raise InputError(f"--mixed-precision must be no, fp16 or bf16, not {mixed_precision!r}")
    if steps < 1 or batch_size < 1:
        raise InputError("--steps and --batch-size must be at least 1")
