"""Fixtures of the motion tests."""
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest


@pytest.fixture(scope="session")
def speech_feats():
    """Whisper features of espeak-ng speech between 1 s silences, as a dub computes them."""
    import shutil
    import subprocess
    import tempfile

    from lipdub.audio.features import frame_features
    from lipdub.audio.io import load_audio

    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    with tempfile.TemporaryDirectory() as d:
        wav = f"{d}/s.wav"
        subprocess.run(["espeak-ng", "-w", wav, "Maybe we should open the window and breathe."], check=True,
                       capture_output=True)
        track = load_audio(wav)
    pad = np.zeros(16000, np.float32)
    track = replace(track, samples=np.concatenate([pad, track.samples, pad]))
    n = int(track.duration * 25)
    return frame_features(track, Fraction(25), n)
