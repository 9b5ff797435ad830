"""Audio features aligned to video frame times."""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from ..types import AudioFeatures, AudioTrack
from .phones import phone_frames

SR = 16000
HOP = 160  # 10 ms
WIN = 400  # 25 ms
N_FFT = 512
N_MELS = 40
N_MFCC = 20
# Band edges (Hz) of the loudness envelopes; the 1-3 kHz envelope follows mouth opening best.
BAND_EDGES = (60, 300, 600, 1000, 1500, 2200, 3000, 4500, 7600)
N_FEATS = len(BAND_EDGES) - 1 + N_MFCC


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, fmin: float = 60.0, fmax: float = 7600.0) -> np.ndarray:
    """[n_mels, N_FFT//2+1] triangular filters on the mel scale (HTK formula)."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / SR)
    fb = np.zeros((n_mels, len(bins)), np.float32)
    for i in range(n_mels):
        lo, c, hi = edges[i: i + 3]
        fb[i] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    return fb


def log_mel(samples: np.ndarray, block: int = 6000) -> np.ndarray:
    """[M, N_MELS] log-mel energies (natural log), one row per 10 ms hop; row m centred at m*HOP
    (the signal zero-padded by WIN/2 before and WIN/2 + HOP after). Computed ``block`` hops (60 s)
    at a time from a padded copy of that block alone, so memory stays bounded for hour-long audio."""
    x = np.asarray(samples, np.float32).reshape(-1)
    n = 1 + (len(x) + HOP) // HOP
    window, fb = np.hanning(WIN).astype(np.float32), mel_filterbank().T
    out = np.empty((n, N_MELS), np.float32)
    for a in range(0, n, block):
        b = min(n, a + block)
        lo = a * HOP - WIN // 2  # first sample of hop a's window, in the unpadded signal
        seg = np.zeros((b - a - 1) * HOP + WIN, np.float32)
        part = x[max(lo, 0):lo + len(seg)]
        seg[max(-lo, 0):max(-lo, 0) + len(part)] = part
        frames = np.lib.stride_tricks.as_strided(seg, (b - a, WIN), (seg.strides[0] * HOP, seg.strides[0]))
        spec = np.abs(np.fft.rfft(frames * window, N_FFT)) ** 2
        out[a:b] = np.log(spec @ fb + 1e-8)
    return out


def _band(lo: float, hi: float) -> np.ndarray:
    fb = mel_filterbank()
    centres = (np.fft.rfftfreq(N_FFT, 1.0 / SR) @ fb.T) / np.maximum(fb.sum(1), 1e-9)
    return (centres >= lo) & (centres < hi)


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None]
    return (np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32)


def to_frames(rows: np.ndarray, fps: Fraction, n_frames: int, hop_s: float = HOP / SR) -> np.ndarray:
    """Average hop-rate rows [M, D] over each video frame's interval -> [n_frames, D].

    Frame t covers [t/fps, (t+1)/fps); rows beyond the audio repeat its last value (callers pad
    audio with silence where the policy says so)."""
    fps = float(fps)
    M = len(rows)
    cums = np.concatenate([np.zeros((1, rows.shape[1]), np.float64), np.cumsum(rows, 0, dtype=np.float64)])
    t = np.arange(n_frames + 1) / fps / hop_s  # boundaries in row units
    pos = np.clip(t, 0, M)
    lo_i = np.floor(pos).astype(int)
    frac = pos - lo_i
    nxt = np.minimum(lo_i + 1, M)
    cum_at = cums[lo_i] + frac[:, None] * (cums[nxt] - cums[lo_i])
    width = np.maximum(pos[1:] - pos[:-1], 1e-9)[:, None]
    out = (cum_at[1:] - cum_at[:-1]) / width
    short = (pos[1:] - pos[:-1]) < 1e-6
    if short.any():
        out[short] = rows[np.clip(lo_i[:-1][short], 0, M - 1)]
    return out.astype(np.float32)


def frame_features(track: AudioTrack, fps: Fraction, n_frames: int, voiced: np.ndarray | None = None,
                   phones: bool = False) -> AudioFeatures:
    """AudioFeatures for ``n_frames`` video frames at ``fps`` (see lipdub.types.AudioFeatures).

    feats = [T, 28]: 8 band loudness envelopes (square-root energy per band, scaled so that the
    recording's 95th percentile is 1) then 20 MFCCs (per-recording mean/variance normalised over
    voiced frames). Both normalisations make voices of other people, languages and
    synthesisers comparable.
    voiced: precomputed voice activity [n_frames]; computed with lipdub.audio.vad when None.
    phones: also read the phones (lipdub.audio.phones; the new audio of a dub needs them, a
      style reference does not): their mouth opening, and their speech where the voice detector
      hears almost none but the recogniser hears a lot (speech over music).
    """
    if voiced is None:
        from .vad import voice_activity

        voiced = voice_activity(track, fps, n_frames)
    ph = phone_frames(track, fps, n_frames) if phones else None
    speech_from = "vad"
    if ph is not None and _music_under_speech(voiced, ph[1]):
        voiced, speech_from = ph[1], "phones"
    lm = log_mel(track.samples)
    mel = np.exp(lm)
    bands = np.stack([mel[:, _band(lo, hi)].sum(1) for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:])], 1)
    mf = lm @ _dct_matrix(N_MELS, N_MFCC).T
    per_frame = to_frames(np.concatenate([mf, np.sqrt(bands), mel.sum(1, keepdims=True)], 1), fps, n_frames)
    mfcc, env, power = per_frame[:, :N_MFCC], per_frame[:, N_MFCC:-1], per_frame[:, -1]
    energy = 10 * np.log10(power + 1e-8)
    v = voiced > 0.5
    ref = mfcc[v] if v.sum() >= 10 else mfcc
    mfcc = (mfcc - ref.mean(0)) / (ref.std(0) + 1e-5)
    env = env / (np.percentile(env, 95, axis=0) + 1e-9)
    feats = np.concatenate([env, mfcc], 1)
    e_ref = np.median(energy[v]) if v.sum() >= 10 else np.median(energy)
    return AudioFeatures(feats=feats.astype(np.float32), energy=(energy - e_ref).astype(np.float32),
                         voiced=np.asarray(voiced, np.float32), fps=Fraction(fps),
                         phone_opening=None if ph is None else ph[0], speech_from=speech_from)


def _music_under_speech(voiced: np.ndarray, phone_speech: np.ndarray) -> bool:
    """The voice detector hears little speech where the phone recogniser hears a lot: speech over
    music or noise, which the detector takes for non-speech (on clean speech the two agree within
    a few per cent: ../shared/data's tracks in seven languages)."""
    vad, rec = float(np.mean(voiced >= 0.5)), float(np.mean(phone_speech >= 0.5))
    return vad < 0.3 and rec >= max(0.5, 2 * vad)
