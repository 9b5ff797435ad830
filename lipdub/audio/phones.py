"""Where speech is heard, according to a phone recogniser: the voice detector's second opinion.

A phone recogniser (PocketSphinx's English acoustic model, which ships inside its PyPI package)
labels every 10 ms of audio with a phone, silence or noise. Speech over music, as in a phone
video, is what the voice detector (silero-vad) takes for no speech; the recogniser still hears the
phones (lipdub.audio.features decides which of the two to trust). English phones label other
languages coarsely but usefully: what matters here is only speech against silence and noise.
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

# The recogniser's labels that are speech (ARPAbet phones); silence and noise are the others.
PHONES = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW P B M F V W S Z TH DH SH ZH CH JH R Y T D N L NG "
                   "K G HH".split())


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


def hop_speech(samples: np.ndarray) -> np.ndarray:
    """[M] bool every 10 ms of 16 kHz mono ``samples`` [N] float in [-1, 1]: the recogniser hears
    a phone there (not silence or noise: SIL, +NSN+, ...)."""
    n = len(samples) // 160
    out = np.zeros(n, bool)
    dec, step = _decoder(), int(CHUNK_S * 16000)
    for a in range(0, len(samples), step):
        pcm = (np.clip(samples[a:a + step], -1, 1) * 32767).astype("<i2").tobytes()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        base = a // 160
        for seg in dec.seg():
            out[base + seg.start_frame: base + seg.end_frame + 1] = seg.word in PHONES
        # the recogniser names a phone even in digital silence (its cepstral mean has nothing to
        # normalise by): below -60 dBFS nothing is spoken
        m = min(step, len(samples) - a) // 160
        rms = np.sqrt(np.mean(np.square(samples[a:a + m * 160].reshape(m, 160), dtype=np.float64), 1))
        out[base:base + m][rms < SILENT_RMS] = False
    return out


def speech_frames(track: AudioTrack, fps: Fraction, n_frames: int) -> np.ndarray | None:
    """[n_frames] float32 in [0, 1]: the share of the time around each video frame in which the
    recogniser hears speech. None when the recogniser is not installed."""
    if not available():
        return None
    from .vad import samples_16k

    hop = hop_speech(samples_16k(track)).astype(np.float64)
    if len(hop) == 0:
        return np.zeros(n_frames, np.float32)
    centre = np.round((np.arange(n_frames) / float(fps) + LEAD_S) / HOP_S).astype(np.int64)
    w = int(round(WINDOW_S / HOP_S))
    lo = np.clip(centre - w, 0, len(hop) - 1)
    hi = np.maximum(lo + 1, np.clip(centre + w + 1, 0, len(hop)))
    cums = np.concatenate([[0.0], np.cumsum(hop)])
    return gaussian_smooth((cums[hi] - cums[lo]) / (hi - lo), 1.0).astype(np.float32)
