"""Mouth rendering engines behind one interface: make_renderer(...).render(frame, out_t, src_t)."""
from __future__ import annotations

import numpy as np

from ..types import FaceTrack, LipMotion, StylePack


def make_renderer(engine: str, pack: StylePack, track: FaceTrack, motion: LipMotion, schedule: np.ndarray, **kw):
    """engine: "reference" or "neural" (already resolved from "auto" by the pipeline)."""
    if engine == "neural":
        from .neural import NeuralRenderer

        return NeuralRenderer(pack, track, motion, schedule, **kw)
    from .exemplar import ExemplarRenderer

    return ExemplarRenderer(pack, track, motion, schedule)
