"""Audio features aligned to video frame times: speech (Whisper states), loudness, voice activity."""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from ..types import AudioFeatures, AudioTrack
from .phones import speech_frames

SR = 16000
HOP = 160  # 10 ms
WIN = 400  # 25 ms
N_FFT = 512
N_MELS = 40
MUSIC_VAD_SHARE = 0.3  # below this share of voiced frames, speech over music is suspected


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

    feats = [T, 512] float16 Whisper-base encoder states at each frame's centre
    (lipdub.audio.speech): what is said, not who says it, so other voices, languages and
    synthesisers give the same lips. energy: loudness per frame relative to the voiced median.
    voiced: precomputed voice activity [n_frames]; computed with lipdub.audio.vad when None.
    phones: also run the phone recogniser (the new audio of a dub): where the voice detector
      hears almost no speech but the recogniser hears a lot (speech over music), its speech
      decides where the mouth moves.
    """
    from .speech import speech_states

    if voiced is None:
        from .vad import voice_activity

        voiced = voice_activity(track, fps, n_frames)
    speech_from = "vad"
    if phones and float(np.mean(np.asarray(voiced) >= 0.5)) < MUSIC_VAD_SHARE:  # else it cannot change anything
        heard = speech_frames(track, fps, n_frames)
        if heard is not None and _music_under_speech(voiced, heard):
            voiced, speech_from = heard, "phones"
    energy = 10 * np.log10(to_frames(np.exp(log_mel(track.samples)).sum(1, keepdims=True), fps, n_frames)[:, 0] + 1e-8)
    v = np.asarray(voiced) > 0.5
    e_ref = np.median(energy[v]) if v.sum() >= 10 else np.median(energy) if len(energy) else 0.0
    return AudioFeatures(feats=speech_states(track.samples, fps, n_frames), energy=(energy - e_ref).astype(np.float32),
                         voiced=np.asarray(voiced, np.float32), fps=Fraction(fps), speech_from=speech_from)


def band_envelope(track: AudioTrack, fps: Fraction, n_frames: int, lo: float = 1000, hi: float = 3000) -> np.ndarray:
    """[n_frames] float32 square-root energy of the ``lo``-``hi`` Hz mel bands per video frame (the
    1-3 kHz band follows mouth opening in most speech: an audio-side check of a dub's lips)."""
    fb = mel_filterbank()
    centres = (np.fft.rfftfreq(N_FFT, 1.0 / SR) @ fb.T) / np.maximum(fb.sum(1), 1e-9)
    band = np.exp(log_mel(track.samples))[:, (centres >= lo) & (centres < hi)].sum(1, keepdims=True)
    return np.sqrt(to_frames(band, fps, n_frames)[:, 0]).astype(np.float32)


def _music_under_speech(voiced: np.ndarray, phone_speech: np.ndarray) -> bool:
    """The voice detector hears little speech where the phone recogniser hears a lot: speech over
    music or noise, which the detector takes for non-speech (on clean speech the two agree within
    a few per cent: ../shared/data's tracks in seven languages)."""
    vad, rec = float(np.mean(voiced >= 0.5)), float(np.mean(phone_speech >= 0.5))
    return vad < MUSIC_VAD_SHARE and rec >= max(0.5, 2 * vad)
