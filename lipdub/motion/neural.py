"""Neural motion engine: the trained MotionTransformer behind the motion stage interface.

Weights are one safetensors file whose metadata holds the model config (JSON) and a format tag.
They are looked for, in order, at: an explicit path, $LIPDUB_WEIGHTS/motion.safetensors,
<repo>/weights/motion.safetensors, ~/.cache/lipdub/motion.safetensors. Nothing is downloaded and
nothing is ever initialised at random here. torch is imported lazily.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lipdub.errors import InputError, WeightsNotFoundError
from lipdub.types import AudioFeatures, LipMotion, StylePack

FORMAT = "lipdub.motion/1"
FILENAME = "motion.safetensors"
TRAIN_HINT = "train them with: lipdub train motion --data DIR --out weights/motion.safetensors"
REPO_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
CHUNK = 256  # output frames per forward pass at inference (memory stays bounded)
MAX_REF = 3000  # reference frames given to cross-attention (evenly subsampled beyond that)


def search_paths(filename: str, explicit: str | os.PathLike | None = None) -> list[Path]:
    """Every place weights called ``filename`` are looked for, in order."""
    paths = [Path(explicit).expanduser()] if explicit else []
    if os.environ.get("LIPDUB_WEIGHTS"):
        paths.append(Path(os.environ["LIPDUB_WEIGHTS"]).expanduser() / filename)
    paths += [REPO_WEIGHTS / filename, Path("~/.cache/lipdub").expanduser() / filename]
    return paths


def find_weights(filename: str, what: str, hint: str, explicit=None) -> Path:
    """First existing path of ``search_paths``; WeightsNotFoundError naming them all otherwise."""
    paths = search_paths(filename, explicit)
    for p in paths:
        if p.is_file():
            return p
    raise WeightsNotFoundError(what, paths, hint)


def save_weights(path, state: dict, config: dict, fmt: str, extra: dict | None = None) -> Path:
    """Write tensors + {"format", "config", extra...} metadata atomically to ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": fmt, "config": json.dumps(config)}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (extra or {}).items()})
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_weights(path, fmt: str) -> tuple[dict, dict, dict]:
    """(state dict, config dict, metadata) from a file written by save_weights."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != fmt or "config" not in meta:
        raise InputError(f"{path}: not a {fmt} weights file (format={meta.get('format')!r})")
    return load_file(str(path)), json.loads(meta["config"]), meta


def available(path=None) -> bool:
    """True when motion weights exist on a search path and torch is importable."""
    try:
        find_weights(FILENAME, "motion", TRAIN_HINT, path)
        import torch  # noqa: F401
    except (WeightsNotFoundError, ImportError):
        return False
    return True


def save_model(model, path, extra: dict | None = None) -> Path:
    """Save a MotionTransformer (config in the metadata)."""
    return save_weights(path, model.state_dict(), model.cfg.to_dict(), FORMAT, extra)


def load_model(path=None, device: str = "cpu"):
    """MotionTransformer in eval mode from the first weights found; raises WeightsNotFoundError."""
    from lipdub.motion.transformer import MotionTransformer, MotionTransformerConfig

    p = find_weights(FILENAME, "motion", TRAIN_HINT, path)
    state, config, _ = read_weights(p, FORMAT)
    model = MotionTransformer(MotionTransformerConfig.from_dict(config))
    model.load_state_dict(state)
    return model.to(device).eval()


def reference_arrays(pack: StylePack, max_ref: int = MAX_REF):
    """(feats, voiced, lips, valid) of the reference frames, evenly subsampled to max_ref."""
    lips = np.asarray(pack.lips, np.float32)
    idx = np.arange(len(lips))
    if len(idx) > max_ref:
        idx = np.linspace(0, len(lips) - 1, max_ref).round().astype(int)
    valid = np.isfinite(lips[idx]).all(axis=(1, 2))
    return (np.asarray(pack.feats, np.float32)[idx], np.asarray(pack.voiced, np.float32)[idx],
            np.nan_to_num(lips[idx]), valid)


def run_model(model, feats: np.ndarray, voiced: np.ndarray, pack: StylePack, device="cpu",
              chunk: int = CHUNK) -> np.ndarray:
    """[T, 40, 2] lips for [T, D] feats, in overlapping chunks whose margins cover the model's
    receptive field, so chunked output equals a single pass."""
    import torch

    cfg = model.cfg
    if feats.ndim != 2 or feats.shape[1] != cfg.feat_dim:
        raise InputError(f"audio features are {feats.shape}, the motion model expects "
                         f"[T, {cfg.feat_dim}] (weights trained on other features)")
    rf, rv, rl, valid = reference_arrays(pack)
    if not valid.any():
        raise InputError("the style reference has no frame with lips")
    t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt, device=device)[None]
    ref = (t(rf), t(rv), t(rl), t(valid, torch.bool))
    T, m = len(feats), cfg.receptive_radius
    out = np.zeros((T, cfg.lip_dim // 2, 2), np.float32)
    with torch.no_grad():
        for s in range(0, T, chunk):
            a, b = max(0, s - m), min(T, s + chunk + m)
            y = model(t(feats[a:b]), t(voiced[a:b]), *ref)[0].float().cpu().numpy()
            out[s:min(T, s + chunk)] = y[s - a:s - a + min(chunk, T - s)]
    return out


def predict(feats: AudioFeatures, pack: StylePack, seed: int = 0, device: str = "cpu",
            weights=None) -> LipMotion:
    """Lip shapes for ``feats`` in the style of ``pack`` with the trained MotionTransformer."""
    import torch

    if len(feats) == 0:
        return LipMotion(np.zeros((0, 40, 2), np.float32), engine="neural")
    torch.manual_seed(seed)  # the model is deterministic in eval mode; seeded for good measure
    model = _cached_model(str(find_weights(FILENAME, "motion", TRAIN_HINT, weights)), device)
    lips = run_model(model, np.asarray(feats.feats, np.float32),
                     np.asarray(feats.voiced, np.float32), pack, device)
    return LipMotion(lips, engine="neural")


_CACHE: dict = {}


def _cached_model(path: str, device: str):
    key = (path, os.path.getmtime(path), device)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_model(path, device)
    return _CACHE[key]
