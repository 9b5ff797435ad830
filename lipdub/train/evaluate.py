"""Cross-half motion benchmark on preprocessed shards (held-out speakers).

For each clip: one half is the style reference, the lips of the other half are predicted from that
half's audio, and the inner-lip opening (LIPS positions of points 13 and 14) is compared with the
truth by Pearson correlation. Both engines get the same inputs (features as preprocessed, i.e.
normalised over the whole clip).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from lipdub.face.landmarks import mouth_opening
from lipdub.types import AudioFeatures, StylePack


def half_pack(z, sl: slice) -> StylePack:
    """A StylePack (no crops) from the frames ``sl`` of a shard."""
    from lipdub.style.pack import rest_shape

    lips, voiced = z["lips"][sl].astype(np.float32), z["voiced"][sl].astype(np.float32)
    n = len(lips)
    return StylePack(feats=z["feats"][sl].astype(np.float32), voiced=voiced, lips=lips,
                     pose=np.zeros((n, 3), np.float32), rest_lips=rest_shape(lips, voiced),
                     template=np.zeros((468, 2), np.float32), crops=np.zeros((0, 8, 8, 3), np.uint8),
                     crop_index=np.zeros(0, np.int64), crop_points=np.zeros((0, 468, 2), np.float32),
                     fps=Fraction(int(z["fps_num"]), int(z["fps_den"])))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def cross_half(shard: Path, predict: Callable[[AudioFeatures, StylePack], np.ndarray], swap: bool = False) -> dict:
    """Correlation of predicted vs true inner-lip opening on one half, the other half as reference."""
    with np.load(shard) as z:
        T = len(z["feats"])
        ref, tgt = slice(0, T // 2), slice(T // 2, 2 * (T // 2))
        if swap:
            ref, tgt = tgt, ref
        pack = half_pack(z, ref)
        feats = AudioFeatures(z["feats"][tgt].astype(np.float32), np.zeros(tgt.stop - tgt.start, np.float32),
                              z["voiced"][tgt].astype(np.float32), pack.fps)
        truth = z["lips"][tgt]
    pred = predict(feats, pack)
    return dict(clip=Path(shard).stem, frames=len(truth), corr=corr(mouth_opening(pred), mouth_opening(truth)),
                std_ratio=float(np.nanstd(mouth_opening(pred)) / max(np.nanstd(mouth_opening(truth)), 1e-9)))


def engines(weights=None) -> dict:
    """{"reference": fn, "neural": fn} predicting [T, 40, 2] lips (neural only when weights load)."""
    from lipdub.motion import predict

    out = {"reference": lambda f, p: predict(f, p, engine="reference").lips}
    if weights is not None:
        out["neural"] = lambda f, p: predict(f, p, engine="neural", weights=weights).lips
    return out


def benchmark(data_dir, clips: list[str], weights=None) -> list[dict]:
    """Rows {engine, clip, direction, corr, std_ratio, frames} for every clip, both directions."""
    rows = []
    for name, fn in engines(weights).items():
        for clip in clips:
            for swap in (False, True):
                r = cross_half(Path(data_dir) / f"{clip}.npz", fn, swap)
                rows.append(dict(engine=name, direction="B<-A" if not swap else "A<-B", **r))
    return rows
