"""Lip motion engines behind one interface: predict(feats, pack, engine) -> LipMotion.

"stage1": the learned Stage 1 model in numpy (the default, CPU; lipdub.motion.stage1);
"neural": the full-size MotionTransformer (torch; lipdub.motion.neural).
"""
from __future__ import annotations

from ..types import AudioFeatures, LipMotion, StylePack

ENGINES = ("stage1", "neural")


def predict(feats: AudioFeatures, pack: StylePack, engine: str = "stage1", seed: int = 0, **kw) -> LipMotion:
    """engine: "stage1" or "neural" (already resolved from "auto" by the pipeline)."""
    if engine == "neural":
        from .neural import predict as neural_predict

        return neural_predict(feats, pack, seed=seed, **kw)
    from .stage1 import predict as stage1_predict

    return stage1_predict(feats, pack, **kw)
