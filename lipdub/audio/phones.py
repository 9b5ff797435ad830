"""How open the mouth should be, read from the phones of the speech.

A phone recogniser (PocketSphinx's English acoustic model, which ships inside its PyPI package)
labels every 10 ms of audio with a phone; each phone has a typical mouth opening (bilabials shut
the lips, open vowels drop the jaw). The result is a speaker-independent prior on mouth opening
that needs no reference and no training: the reference motion engine averages it with what it
learns from the style reference, which alone has only seconds of speech to learn from. English
phones label other languages coarsely but usefully: closures, vowels and silence are universal.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from ..smooth import gaussian_smooth
from ..types import AudioTrack

HOP_S = 0.01  # the recogniser's frame step
CHUNK_S = 30.0  # audio decoded per utterance (a multiple of 10 ms): memory stays bounded for hour-long tracks
LEAD_S = 0.04  # the lips move ahead of the sound they make
WINDOW_S = 0.04  # half-width of the window averaged around each video frame
SILENT_RMS = 1e-3  # -60 dBFS

# Typical inner-lip opening of each phone (ARPAbet), 0 = lips shut, 1 = widest (phonetics:
# jaw height of vowels; lip closure of bilabials; near-closure of labiodentals and rounding).
OPENING = {
    "AA": 1.0, "AE": 0.9, "AH": 0.75, "AO": 0.9, "AW": 0.9, "AY": 0.9, "EH": 0.7, "ER": 0.45,
    "EY": 0.65, "IH": 0.5, "IY": 0.4, "OW": 0.65, "OY": 0.7, "UH": 0.45, "UW": 0.35,
    "P": 0.0, "B": 0.0, "M": 0.0, "F": 0.15, "V": 0.15, "W": 0.2, "S": 0.25, "Z": 0.25,
    "TH": 0.3, "DH": 0.3, "SH": 0.3, "ZH": 0.3, "CH": 0.3, "JH": 0.3, "R": 0.35, "Y": 0.35,
    "T": 0.35, "D": 0.35, "N": 0.35, "L": 0.4, "NG": 0.4, "K": 0.45, "G": 0.45, "HH": 0.55,
}


def available() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _decoder():
    import os

    from pocketsphinx import Decoder, get_model_path

    model = get_model_path()
    # a light phone language model weight: the acoustics decide, so other languages pass too
    return Decoder(hmm=os.path.join(model, "en-us", "en-us"), allphone=os.path.join(model, "en-us", "en-us-phone.lm.bin"),
                   lw=1.0, loglevel="FATAL")


def hop_openings(samples: np.ndarray) -> np.ndarray:
    """[M] phone opening (0..1) every 10 ms of 16 kHz mono ``samples`` [N] float in [-1, 1];
    NaN where the recogniser hears no speech (silence, noise: SIL, +NSN+, ...)."""
    n = len(samples) // 160
    out = np.full(n, np.nan, np.float32)
    dec, step = _decoder(), int(CHUNK_S * 16000)
    for a in range(0, len(samples), step):
        pcm = (np.clip(samples[a:a + step], -1, 1) * 32767).astype("<i2").tobytes()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        base = a // 160
        for seg in dec.seg():
            out[base + seg.start_frame: base + seg.end_frame + 1] = OPENING.get(seg.word, np.nan)
        # the recogniser names a phone even in digital silence (its cepstral mean has nothing to
        # normalise by): below -60 dBFS nothing is spoken
        m = min(step, len(samples) - a) // 160
        rms = np.sqrt(np.mean(np.square(samples[a:a + m * 160].reshape(m, 160), dtype=np.float64), 1))
        out[base:base + m][rms < SILENT_RMS] = np.nan
    return out


def phone_frames(track: AudioTrack, fps: Fraction, n_frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(opening, speech), each [n_frames] float32 in [0, 1]: the mouth opening the phones around
    each video frame call for (0 where none is heard), and the share of that time the recogniser
    hears speech. None when the recogniser is not installed."""
    if not available():
        return None
    from .vad import samples_16k

    hop = hop_openings(samples_16k(track))
    if len(hop) == 0:
        return np.zeros(n_frames, np.float32), np.zeros(n_frames, np.float32)
    speech = np.isfinite(hop)
    centre = np.round((np.arange(n_frames) / float(fps) + LEAD_S) / HOP_S).astype(np.int64)
    w = int(round(WINDOW_S / HOP_S))
    lo = np.clip(centre - w, 0, len(hop) - 1)
    hi = np.maximum(lo + 1, np.clip(centre + w + 1, 0, len(hop)))

    def window_mean(x):
        cums = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
        return gaussian_smooth((cums[hi] - cums[lo]) / (hi - lo), 1.0).astype(np.float32)

    return window_mean(np.where(speech, hop, 0.0)), window_mean(speech)
