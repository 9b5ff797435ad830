"""Voice activity per video frame, so silence closes the mouth.

Backend: silero-vad's ONNX model, loaded from the installed ``silero_vad`` package's data folder
(located with importlib without executing the package, which would import torch) and run with
onnxruntime on one thread. The model sees 512-sample windows (32 ms at 16 kHz), each prefixed
with the previous window's last 64 samples, and carries an LSTM state from window to window.
The package's "sequence" export runs many windows per call with identical results; the
streaming export (one window per call) is used when only that one is present. Without the model
or onnxruntime an energy detector stands in; ``vad_backend()`` / ``vad_note()`` say which ran.

Window probabilities go through hysteresis (speech starts at p >= 0.5, ends only after ~100 ms
below 0.35), very short bursts are dropped, and each speech segment is padded by an onset
pre-roll and an offset hangover so mouths open slightly early, close slightly late and never
chatter. Frame values are overlap-weighted means over the 32 ms windows.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub.errors import InputError
from lipdub.types import AudioTrack

SAMPLE_RATE = 16000
WINDOW = 512  # samples per model window at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window prefixed to each window
WINDOW_S = WINDOW / SAMPLE_RATE

ONSET = 0.5  # speech starts when the window probability reaches this
OFFSET = 0.35  # ... and may end once it falls below this
MIN_SILENCE_S = 0.100  # a pause must last this long to end a speech segment
MIN_SPEECH_S = 0.064  # speech segments shorter than this are dropped (clicks, blips)
PRE_ROLL_S = 0.064  # speech segments start this much earlier (lips move before sound)
HANGOVER_S = 0.096  # ... and end this much later
SILENT_DBFS = -50.0  # is_silent(): peak below this level counts as silence

_SEQUENCE_MODEL = "silero_vad_16k_sequence.onnx"
_STREAM_MODELS = ("silero_vad.onnx", "silero_vad_16k_op15.onnx")
_SEQ_BLOCK = 512  # windows per ONNX call with the sequence model (~16 s of audio)

_lock = threading.Lock()
_model = None  # _SileroModel | None once loaded
_model_tried = False
_note: str | None = None


def _silero_data_dir() -> Path | None:
    """Folder holding silero-vad's model files, found without importing the package."""
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if not locations and spec.origin:
        locations = [os.path.dirname(spec.origin)]
    for loc in locations:
        data = Path(loc) / "data"
        if data.is_dir():
            return data
    return None


class _SileroModel:
    """One onnxruntime session over a silero-vad export; ``probs(x)`` -> [W] window probabilities."""

    def __init__(self, path: Path, sequence: bool):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # keep onnxruntime's graph warnings off the console
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.path = path
        self.sequence = sequence
        names = {i.name for i in self.session.get_inputs()}
        need = {"input", "h", "c"} if sequence else {"input", "state", "sr"}
        if not need <= names:
            raise RuntimeError(f"unexpected inputs {sorted(names)} in {path.name}")

    def probs(self, x: np.ndarray) -> np.ndarray:
        """x: [N] float32 at 16 kHz -> [ceil(N / 512)] float32 speech probabilities.

        Model inputs are built one block of _SEQ_BLOCK windows at a time (the recurrent state
        carries across blocks), so memory stays bounded however long the audio."""
        n_win = -(-len(x) // WINDOW)
        out = np.empty(n_win, np.float32)
        run = self.session.run
        h = np.zeros((1, 1, 128), np.float32)
        c = np.zeros((1, 1, 128), np.float32)
        state = np.zeros((2, 1, 128), np.float32)
        sr = np.array(SAMPLE_RATE, dtype=np.int64)
        for i in range(0, n_win, _SEQ_BLOCK):
            inputs = self._inputs(x, i, min(n_win, i + _SEQ_BLOCK))
            if self.sequence:
                p, h, c = run(None, {"input": inputs, "h": h, "c": c})
                out[i: i + len(inputs)] = np.asarray(p, np.float32).reshape(-1)
            else:
                for j in range(len(inputs)):
                    p, state = run(None, {"input": inputs[j: j + 1], "state": state, "sr": sr})
                    out[i + j] = float(np.asarray(p).reshape(-1)[0])
        return np.clip(out, 0.0, 1.0)

    @staticmethod
    def _inputs(x: np.ndarray, a: int, b: int) -> np.ndarray:
        """[b - a, CONTEXT + WINDOW] model inputs of windows a..b-1: the previous window's last
        CONTEXT samples (zeros before the first) and the window (zero-padded past the end)."""
        lo = a * WINDOW - CONTEXT
        seg = x[max(lo, 0): b * WINDOW]
        seg = np.concatenate([np.zeros(max(-lo, 0), np.float32), seg,
                              np.zeros((b - a) * WINDOW + CONTEXT - max(-lo, 0) - len(seg), np.float32)])
        idx = np.arange(b - a)[:, None] * WINDOW + np.arange(CONTEXT + WINDOW)[None]
        return seg[idx]


def _load_model():
    """Load (once) the silero ONNX model; None, with the reason in ``_note``, when unavailable."""
    global _model, _model_tried, _note
    with _lock:
        if _model_tried:
            return _model
        _model_tried = True
        data = _silero_data_dir()
        if data is None:
            _note = "silero-vad package not installed; using the energy-based VAD"
            return None
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            _note = "onnxruntime not installed; using the energy-based VAD"
            return None
        candidates = [(data / _SEQUENCE_MODEL, True)] + [(data / m, False) for m in _STREAM_MODELS]
        errors = []
        for path, sequence in candidates:
            if not path.is_file():
                continue
            try:
                _model = _SileroModel(path, sequence)
                _note = None
                return _model
            except Exception as e:  # corrupt file, incompatible opset, ...
                errors.append(f"{path.name}: {str(e).strip().splitlines()[0] if str(e) else e!r}")
        _note = (
            f"silero-vad ONNX model unusable in {data} ({'; '.join(errors) or 'no model file'}); "
            "using the energy-based VAD"
        )
        return None


def vad_backend() -> str:
    """Which backend ``voice_activity`` uses: 'silero-onnx' or 'energy' (loads the model once)."""
    return "silero-onnx" if _load_model() is not None else "energy"


def vad_note() -> str | None:
    """Why the energy fallback is in use (one line), or None when silero-vad runs."""
    _load_model()
    return _note


def _reset_backend_for_tests(force_energy: bool = False) -> None:
    """Forget the loaded model; with force_energy the next calls use the energy fallback."""
    global _model, _model_tried, _note
    with _lock:
        _model = None
        _model_tried = force_energy
        _note = "energy-based VAD forced" if force_energy else None


def samples_16k(track: AudioTrack) -> np.ndarray:
    x = np.asarray(track.samples, dtype=np.float32).reshape(-1)
    if int(track.sample_rate) != SAMPLE_RATE:
        from lipdub.audio.io import resample

        x = resample(x, int(track.sample_rate), SAMPLE_RATE)
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x


def _energy_probs(x: np.ndarray) -> np.ndarray:
    """Fallback: [W] pseudo-probabilities from window loudness relative to the noise floor."""
    n_win = -(-len(x) // WINDOW)
    if n_win == 0:
        return np.zeros(0, np.float32)
    frames = np.zeros((n_win, WINDOW), np.float32)
    frames.reshape(-1)[: len(x)] = x
    frames -= frames.mean(axis=1, keepdims=True)
    db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    floor = float(np.percentile(db, 10))
    loud = float(np.percentile(db, 95))
    thresh = max(floor + max(6.0, 0.35 * (loud - floor)), -55.0)
    p = 1.0 / (1.0 + np.exp(-(db - thresh) / 2.0))
    p[db < -60.0] = 0.0
    return p.astype(np.float32)


def window_probabilities(track: AudioTrack) -> np.ndarray:
    """Raw speech probability per 32 ms window: [ceil(N / 512)] float32 in [0, 1].

    Window k covers samples [512 k, 512 (k + 1)) of the 16 kHz signal (the last one zero-padded).
    """
    x = samples_16k(track)
    model = _load_model()
    if model is None:
        return _energy_probs(x)
    return model.probs(x)


def _speech_gate(p: np.ndarray) -> np.ndarray:
    """[W] window probabilities -> [W] bool speech decision with hysteresis and hangover."""
    n = len(p)
    gate = np.zeros(n, bool)
    min_sil = max(1, int(round(MIN_SILENCE_S / WINDOW_S)))
    min_speech = max(1, int(round(MIN_SPEECH_S / WINDOW_S)))
    pre = int(round(PRE_ROLL_S / WINDOW_S))
    post = int(round(HANGOVER_S / WINDOW_S))
    segments = []
    in_speech, start, pause = False, 0, -1
    on = p >= ONSET
    off = p < OFFSET
    for i in range(n):
        if on[i]:
            pause = -1
            if not in_speech:
                in_speech, start = True, i
        elif in_speech and off[i]:
            if pause < 0:
                pause = i
            if i + 1 - pause >= min_sil:
                segments.append((start, pause))
                in_speech, pause = False, -1
    if in_speech:
        segments.append((start, pause if pause >= 0 else n))
    for s, e in segments:
        if e - s >= min_speech or p[s:e].max(initial=0.0) >= 0.9:
            gate[max(0, s - pre) : min(n, e + post)] = True
    return gate


def _frame_means(values: np.ndarray, fps: Fraction, n_frames: int) -> np.ndarray:
    """Overlap-weighted mean of per-window values over each frame [t/fps, (t+1)/fps).

    values: [W] (window k spans [k, k+1) * 32 ms; time past the last window counts as 0).
    Returns [n_frames] float64.
    """
    w = len(values)
    cum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    # Frame edges in units of windows, exact rational arithmetic folded into one float product.
    edges = np.arange(n_frames + 1, dtype=np.float64) * (
        fps.denominator * SAMPLE_RATE / (fps.numerator * WINDOW)
    )
    k = np.minimum(np.floor(edges).astype(np.int64), w)
    frac = np.where(k < w, edges - k, 0.0)
    vals = np.concatenate([np.asarray(values, np.float64), [0.0]])
    integral = cum[k] + vals[k] * frac
    width = np.diff(edges)
    return np.diff(integral) / width


def _as_fraction(fps) -> Fraction:
    try:
        f = fps if isinstance(fps, Fraction) else Fraction(str(fps))
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(f"invalid frame rate {fps!r}") from None
    if f <= 0:
        raise InputError(f"invalid frame rate {fps!r} (must be > 0)")
    return f


def voice_activity(track: AudioTrack, fps, n_frames: int) -> np.ndarray:
    """Speech probability for each video frame.

    track: audio (any rate; resampled to 16 kHz if needed). fps: video frame rate (Fraction,
    int, float or "30000/1001"); frame t covers time [t / fps, (t + 1) / fps) in seconds.
    n_frames: number of video frames T; frames past the end of the audio get 0.
    Returns [T] float32 in [0, 1]. ``>= 0.5`` is exactly the hysteresis decision (speech, with
    onset pre-roll and offset hangover); the value is the model's overlap-weighted confidence,
    kept on the side of 0.5 the decision chose (so a hangover frame reads 0.5, not 0.05).
    """
    fps = _as_fraction(fps)
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 0:
        raise InputError(f"invalid frame count {n_frames!r} (must be an integer >= 0)")
    n_frames = int(n_frames)
    if n_frames == 0:
        return np.zeros(0, np.float32)
    p = window_probabilities(track)
    if len(p) == 0:
        return np.zeros(n_frames, np.float32)
    gate = _speech_gate(p).astype(np.float64)
    conf = _frame_means(p, fps, n_frames)
    speech = _frame_means(gate, fps, n_frames) >= 0.5
    out = np.where(speech, np.maximum(conf, 0.5), np.minimum(conf, 0.49))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def peak_dbfs(track: AudioTrack) -> float:
    """Peak level of the track in dBFS (-inf for digital silence or an empty track)."""
    x = np.asarray(track.samples, dtype=np.float32)
    if x.size == 0:
        return float("-inf")
    peak = float(np.max(np.abs(np.nan_to_num(x))))
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def is_silent(track: AudioTrack) -> bool:
    """True when the track holds no speech: peak below -50 dBFS, or no window where the VAD
    reaches the speech onset threshold (0.5) for at least ~64 ms after hysteresis."""
    if peak_dbfs(track) < SILENT_DBFS:
        return True
    p = window_probabilities(track)
    return not bool(_speech_gate(p).any())
