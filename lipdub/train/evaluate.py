"""Cross-half motion benchmark on preprocessed shards of clips a model was not trained on.

As ../shared/bench does with whole dubs: each clip (its first ``max_seconds``) is split into
halves; one half is the style reference, the lips of the other half are predicted from that
half's audio, and the inner-lip opening is compared with the truth by Pearson correlation. Each
half's speech features are computed from its own audio alone, as `lipdub run` computes them for
a dub of that half; ``pitch`` (cents) shifts the driving half's voice (another voice, the same
words; sox, as the bench's --perturb 'pitch N').

    python -m lipdub.train.evaluate SHARDS [--weights W] [--pitch 400]
"""
from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from lipdub.face.landmarks import mouth_opening
from lipdub.types import AudioFeatures, StylePack

SR = 16000


def half_pack(z, sl: slice, feats: np.ndarray) -> StylePack:
    """A StylePack (no crops) from the frames ``sl`` of a shard, with speech features ``feats``."""
    from lipdub.style.pack import rest_shape

    lips, voiced = z["lips"][sl].astype(np.float32), z["voiced"][sl].astype(np.float32)
    n = len(lips)
    return StylePack(feats=feats, voiced=voiced, lips=lips,
                     pose=np.zeros((n, 3), np.float32), rest_lips=rest_shape(lips, voiced),
                     template=np.zeros((468, 2), np.float32), crops=np.zeros((0, 8, 8, 3), np.uint8),
                     crop_index=np.zeros(0, np.int64), crop_points=np.zeros((0, 468, 2), np.float32),
                     fps=Fraction(int(z["fps_num"]), int(z["fps_den"])))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def halves(z, max_seconds: float = 20.0) -> tuple[slice, slice, Fraction]:
    fps = Fraction(int(z["fps_num"]), int(z["fps_den"]))
    T = min(len(z["lips"]), int(max_seconds * fps))
    return slice(0, T // 2), slice(T // 2, 2 * (T // 2)), fps


_SPEECH: dict = {}  # (audio bytes hash, slice, pitch) -> features: several models on one process


def half_speech(z, sl: slice, fps: Fraction, pitch: float = 0.0) -> np.ndarray:
    """[frames of sl, 512] speech features of that half's own audio alone (voice shifted by ``pitch`` cents)."""
    key = (hash(z["audio"][:4096].tobytes()), len(z["audio"]), sl.start, sl.stop, pitch)
    if key not in _SPEECH:
        _SPEECH[key] = _half_speech(z, sl, fps, pitch)
    return _SPEECH[key]


def _half_speech(z, sl: slice, fps: Fraction, pitch: float) -> np.ndarray:
    from lipdub.audio.speech import speech_states
    from lipdub.train.speech_data import pitch_shift

    a, b = int(sl.start / fps * SR), int(sl.stop / fps * SR)
    x = z["audio"][a:b].astype(np.float32) / 32767
    if pitch:
        x = pitch_shift(x, pitch)
    return speech_states(x, fps, sl.stop - sl.start)


def cross_half(shard: Path, predict: Callable[[AudioFeatures, StylePack], np.ndarray], swap: bool = False,
               pitch: float = 0.0, max_seconds: float = 20.0) -> dict:
    """Correlation of predicted vs true inner-lip opening on one half, the other half as reference."""
    with np.load(shard) as z:
        ref, tgt, fps = halves(z, max_seconds)
        if swap:
            ref, tgt = tgt, ref
        pack = half_pack(z, ref, half_speech(z, ref, fps))
        feats = AudioFeatures(half_speech(z, tgt, fps, pitch), np.zeros(tgt.stop - tgt.start, np.float32),
                              z["voiced"][tgt].astype(np.float32), fps)
        truth = z["lips"][tgt]
    pred = predict(feats, pack)
    return dict(clip=Path(shard).stem, frames=len(truth), corr=corr(mouth_opening(pred), mouth_opening(truth)),
                std_ratio=float(np.nanstd(mouth_opening(pred)) / max(np.nanstd(mouth_opening(truth)), 1e-9)))


def benchmark(data_dir, clips: list[str] | None = None, weights=None, engine: str = "stage1",
              pitch: float = 0.0) -> list[dict]:
    """Rows {clip, direction, corr, std_ratio, frames} for every clip (default: every shard), both directions."""
    from lipdub.motion import predict

    kw = {"weights": weights} if weights is not None else {}
    fn = lambda f, p: predict(f, p, engine=engine, **kw).lips  # noqa: E731
    from lipdub.train.motion import shard_paths

    paths = [Path(data_dir) / f"{c}.npz" for c in clips] if clips else shard_paths(data_dir)
    rows = []
    for path in paths:
        for swap in (False, True):
            rows.append(dict(direction="B<-A" if not swap else "A<-B", **cross_half(path, fn, swap, pitch)))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shards")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--engine", default="stage1")
    ap.add_argument("--pitch", type=float, default=0.0)
    ap.add_argument("--exclude", action="append", default=[], help="clip to leave out (repeatable)")
    a = ap.parse_args(argv)
    from lipdub.train.motion import shard_paths

    clips = [p.stem for p in shard_paths(a.shards) if p.stem not in a.exclude]
    rows = benchmark(a.shards, clips, a.weights, a.engine, a.pitch)
    for r in rows:
        print(json.dumps(r))
    print("SUMMARY", json.dumps({"runs": len(rows), "corr": round(float(np.mean([r["corr"] for r in rows])), 3),
                                 "std_ratio": round(float(np.median([r["std_ratio"] for r in rows])), 3),
                                 "pitch": a.pitch}))


if __name__ == "__main__":
    main()
