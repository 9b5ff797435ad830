"""Length policies: what to do when the new audio and the video differ in length.

The output always holds every sample of the new audio unless the user asks for ``trim``.

| policy        | audio longer than the video                   | audio shorter than the video        |
|---------------|-----------------------------------------------|-------------------------------------|
| pingpong      | video plays forward, backward, forward, ...   | full video; audio padded with       |
| loop          | video restarts from its first frame           | silence (the mouth rests closed)    |
| freeze        | the last frame is held                        |                                     |
| pad-silence   | like freeze (nothing to pad on the audio side)|                                     |
| trim          | audio cut at the end of the video             | video cut at the end of the audio   |
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .errors import InputError

POLICIES = ("pingpong", "loop", "freeze", "trim", "pad-silence")


@dataclass(frozen=True)
class LengthPlan:
    """src_index: [n_out] int64, the source frame shown at each output frame. n_out: output
    frames. audio_samples: samples of the new audio the output carries (pad with silence or cut to
    this; see fit_audio). note: one sentence saying what happened, for the summary. padded_s /
    trimmed_s: seconds of silence added / of audio cut."""

    src_index: np.ndarray
    n_out: int
    audio_samples: int
    note: str
    padded_s: float = 0.0
    trimmed_s: float = 0.0


def frames_for_samples(n_samples: int, fps, sample_rate: int) -> int:
    """Video frames needed to hold ``n_samples`` of audio at ``fps``: the last frame may be partly
    covered (ceil), so no sample is dropped; ends within half a sample of a frame boundary do not
    start a new frame (inverse of samples_for_frames)."""
    return max(1, math.ceil((Fraction(int(n_samples)) - Fraction(1, 2)) * Fraction(fps) / int(sample_rate)))


def samples_for_frames(n_frames: int, fps, sample_rate: int) -> int:
    """Audio samples spanning ``n_frames`` frames at ``fps`` (rounded to the nearest sample)."""
    return int(round(Fraction(int(n_frames)) * int(sample_rate) / Fraction(fps)))


def source_indices(n_src: int, n_out: int, policy: str) -> np.ndarray:
    """[n_out] int64 source frame per output frame when the output is longer than the source."""
    t = np.arange(n_out, dtype=np.int64)
    if n_out <= n_src:
        return t
    if policy == "pingpong":
        if n_src == 1:
            return np.zeros(n_out, np.int64)
        period = 2 * (n_src - 1)  # 0 1 .. n-1 n-2 .. 1 | 0 1 ...: turning frames are not doubled
        p = t % period
        return np.where(p < n_src, p, period - p)
    if policy == "loop":
        return t % n_src
    if policy in ("freeze", "pad-silence"):
        return np.minimum(t, n_src - 1)
    raise InputError(f"unknown length policy {policy!r} (choose from {', '.join(POLICIES)})")


def plan(n_src_frames: int, n_audio_samples: int, fps, sample_rate: int = 16000,
         policy: str = "pingpong") -> LengthPlan:
    """Decide the output length and the source frame of each output frame.

    n_src_frames: frames of the input video. n_audio_samples: samples of the new audio at
    ``sample_rate``. fps: the video frame rate (Fraction).
    """
    if policy not in POLICIES:
        raise InputError(f"unknown length policy {policy!r} (choose from {', '.join(POLICIES)})")
    if n_src_frames < 1:
        raise InputError("the video has no frames")
    fps = Fraction(fps)
    n_aud = frames_for_samples(n_audio_samples, fps, sample_rate)
    v_s, a_s = n_src_frames / float(fps), n_audio_samples / sample_rate
    if policy == "trim":
        n_out = min(n_src_frames, n_aud)
    else:
        n_out = max(n_src_frames, n_aud)
    need = samples_for_frames(n_out, fps, sample_rate)
    idx = source_indices(n_src_frames, n_out, policy)
    padded = max(0, need - n_audio_samples) / sample_rate
    trimmed = max(0, n_audio_samples - need) / sample_rate
    out_s = n_out / float(fps)
    how = {"pingpong": "playing the video forward and backward", "loop": "looping the video",
           "freeze": "holding the last frame", "pad-silence": "holding the last frame"}
    if n_aud > n_src_frames and policy != "trim":
        note = f"audio ({a_s:.2f} s) is longer than the video ({v_s:.2f} s): video extended to {out_s:.2f} s by {how[policy]}"
    elif n_aud > n_src_frames:
        note = f"audio ({a_s:.2f} s) is longer than the video ({v_s:.2f} s): audio cut to {out_s:.2f} s (--length-policy trim)"
    elif n_aud < n_src_frames and policy == "trim":
        note = f"audio ({a_s:.2f} s) is shorter than the video ({v_s:.2f} s): video cut to {out_s:.2f} s (--length-policy trim)"
    elif n_aud < n_src_frames:
        note = (f"audio ({a_s:.2f} s) is shorter than the video ({v_s:.2f} s): "
                f"{padded:.2f} s of silence added at the end, the mouth rests closed")
    else:
        note = f"audio and video have the same length ({out_s:.2f} s)"
    return LengthPlan(src_index=idx, n_out=int(n_out), audio_samples=int(need), note=note,
                      padded_s=round(padded, 3), trimmed_s=round(trimmed, 3))


def schedule(n_src_frames: int, n_out_frames_for_audio: int, policy: str = "pingpong"
             ) -> tuple[np.ndarray, int]:
    """Frame-level form of ``plan``: (src_index [n_out] int64, n_out) for a video of
    ``n_src_frames`` and audio spanning ``n_out_frames_for_audio`` frames."""
    if policy not in POLICIES:
        raise InputError(f"unknown length policy {policy!r} (choose from {', '.join(POLICIES)})")
    n_out = (min if policy == "trim" else max)(int(n_src_frames), int(n_out_frames_for_audio))
    return source_indices(int(n_src_frames), n_out, policy), n_out


def fit_audio(samples: np.ndarray, n: int) -> np.ndarray:
    """[n] float32: ``samples`` cut to n (a view, no copy) or padded with silence (zeros) at the end."""
    x = np.asarray(samples, np.float32).reshape(-1)
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), np.float32)])
