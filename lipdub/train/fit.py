"""Fine-tune a trained motion model on one style pack (`lipdub prepare-style --fit`).

The pack's own frames become training pairs (target windows with references from other times of
the same recording), starting from the base model's weights with a small learning rate. Minutes on
CPU. The result is an ordinary motion weights file (config and base model in the metadata).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lipdub.errors import InputError
from lipdub.train.motion import Clip, MotionTrainConfig, Progress, fit_model
from lipdub.types import StylePack


def fit_pack(pack: StylePack, out, base=None, steps: int = 300, lr: float = 1e-4,
             progress: Progress = None, device: str = "cpu") -> Path:
    """Fine-tune the base motion model (found like lipdub.motion.neural.load_model; base=None
    searches the default places, WeightsNotFoundError when absent) on ``pack``; save to ``out``."""
    from lipdub.motion.neural import find_weights, load_model, save_model, FILENAME, TRAIN_HINT

    base_path = find_weights(FILENAME, "motion", TRAIN_HINT, base)
    model = load_model(base_path)
    if pack.feats.shape[1] != model.cfg.feat_dim:
        raise InputError(f"the style pack has {pack.feats.shape[1]}-dim audio features (no audio?); "
                         f"the motion model needs {model.cfg.feat_dim}")
    usable = np.isfinite(pack.lips).all(axis=(1, 2)).sum()
    window = int(min(48, max(8, len(pack.lips) // 3)))
    if usable < 2 * window:
        raise InputError(f"the style pack has too few frames with a face ({usable}) to fit on")
    clip = Clip(pack.feats.astype(np.float32), pack.voiced.astype(np.float32), pack.lips.astype(np.float32), "pack")
    cfg = MotionTrainConfig(steps=steps, batch_size=8, window=window, ref_len=150, lr=lr, log_every=25,
                            checkpoint_every=10 ** 9)
    model = fit_model(model, [clip], cfg, progress=progress, cpu=(device == "cpu"))
    return save_model(model, out, extra={"base": str(base_path), "fit_steps": steps,
                                         "pack_source": str(pack.meta.get("source", ""))})
