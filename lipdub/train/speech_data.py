"""Speech features of training clips, with voice augmentation, computed once and cached.

Each clip's speech becomes Whisper encoder states per video frame (lipdub.audio.speech) in
several variants, so that a model learns lips from what is said, not from who says it or where
in the encoder's 30 s window it falls:
- variant 0: the clip alone, as `lipdub run` computes a short track (its speech at the start of
  a window, silence after);
- variants 1..: the clips laid end to end on one tape in a random order with random gaps, each
  clip's pitch shifted by 200-500 cents up or down (sox `pitch`, which keeps the tempo) and, for
  half of them, noise at 15-35 dB SNR: speech before and after it and every position in the
  window, as in a long dub in another voice.
Cache: DATA_DIR/speech-v{K}.npz, {shard stem: [T, 512] float16}; recomputed when the shards change.
"""
from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub.errors import InputError

SR = 16000
GAP_S = (0.2, 1.0)
PITCH_CENTS = (200, 500)
SNR_DB = (15, 35)


def pitch_shift(x: np.ndarray, cents: float) -> np.ndarray:
    """``x`` (float32, 16 kHz) ``cents`` higher (lower when negative), same length (sox pitch)."""
    if shutil.which("sox") is None:
        raise InputError("sox is not installed: training with voice augmentation needs it (apt-get install sox)")
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-r", str(SR), "-e", "signed", "-b", "16", "-c", "1"]
    r = subprocess.run(["sox", *raw, "-", *raw, "-", "pitch", f"{cents:.0f}"], input=pcm, capture_output=True)
    if r.returncode != 0:
        raise InputError(f"sox pitch failed: {r.stderr.decode(errors='replace')[-300:]}")
    y = np.frombuffer(r.stdout, "<i2").astype(np.float32) / 32767
    out = np.zeros_like(x)
    out[:min(len(x), len(y))] = y[:len(x)]
    return out


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another voice saying the same: a random pitch shift, and noise for half of the clips."""
    cents = rng.uniform(*PITCH_CENTS) * rng.choice([-1, 1])
    y = pitch_shift(x, cents)
    if rng.random() < 0.5:
        p = float(np.mean(y ** 2)) + 1e-12
        y = y + rng.normal(0, np.sqrt(p / 10 ** (rng.uniform(*SNR_DB) / 10)), len(y)).astype(np.float32)
    return y


def tape(clips: list[tuple[str, np.ndarray, Fraction, int]], rng: np.random.Generator) -> dict:
    """{name: [T, 512] float16} for clips (name, float32 audio, fps, frames) laid on one augmented tape."""
    from lipdub.audio import speech

    order = rng.permutation(len(clips))
    pieces, starts, pos = [], {}, 0
    for i in order:
        name, x, fps, n = clips[i]
        gap = np.zeros(int(rng.uniform(*GAP_S) * SR), np.float32)
        pieces += [gap, augment(x, rng)]
        starts[name] = pos + len(gap)
        pos += len(gap) + len(x)
    samples = np.concatenate(pieces)
    del pieces
    states = np.concatenate([seg[1:] if base else seg for base, seg in speech.state_chunks(samples)])
    out = {}
    for name, x, fps, n in clips:
        out[name] = speech.interpolate(states, speech.frame_positions(fps, n, starts[name] / SR))
    return out


def load_speech(data_dir, names_audio: list[tuple[str, np.ndarray, Fraction, int]], variants: int = 3,
                seed: int = 0, progress=None) -> list[dict]:
    """[variant] -> {name: [T, 512] float16}, from DATA_DIR's cache or computed now (and cached)."""
    data_dir = Path(data_dir)
    key = sorted(n for n, *_ in names_audio)
    out = []
    for v in range(variants):
        cache = data_dir / f"speech-v{v}.npz"
        if cache.exists():
            with np.load(cache) as z:
                if sorted(z.files) == key:
                    out.append({k: z[k] for k in z.files})
                    continue
        if v == 0:
            from lipdub.audio.speech import speech_states

            feats = {}
            for i, (name, x, fps, n) in enumerate(names_audio):
                if progress:
                    progress("speech features", i, len(names_audio))
                feats[name] = speech_states(x, fps, n)
        else:
            if progress:
                progress(f"speech features (tape {v})", 0, 1)
            feats = tape(names_audio, np.random.default_rng([seed, v]))
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, **feats)
        tmp.replace(cache)
        out.append(feats)
    return out
