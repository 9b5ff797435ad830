"""Lip motion engines behind one interface: predict(feats, pack, engine) -> LipMotion."""
from __future__ import annotations

from ..types import AudioFeatures, LipMotion, StylePack


def predict(feats: AudioFeatures, pack: StylePack, engine: str = "reference", seed: int = 0, **kw) -> LipMotion:
    """engine: "reference" or "neural" (already resolved from "auto" by the pipeline)."""
    if engine == "neural":
        from .neural import predict as neural_predict

        return neural_predict(feats, pack, seed=seed, **kw)
    from .reference import predict as reference_predict

    return reference_predict(feats, pack)
