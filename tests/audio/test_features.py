"""Log-mel features computed a block at a time (bounded memory for an hour of audio) equal the
textbook computation over the whole zero-padded signal."""
import numpy as np
import pytest

from lipdub.audio.features import HOP, N_FFT, WIN, log_mel, mel_filterbank


def _whole(x):
    padded = np.pad(x, (WIN // 2, WIN // 2 + HOP))
    n = 1 + (len(padded) - WIN) // HOP
    frames = np.stack([padded[i * HOP:i * HOP + WIN] for i in range(n)])
    spec = np.abs(np.fft.rfft(frames * np.hanning(WIN).astype(np.float32), N_FFT)) ** 2
    return np.log(spec @ mel_filterbank().T + 1e-8)


@pytest.mark.parametrize("n", [0, 1, 399, 401, 5000])
def test_log_mel_in_blocks_matches_the_whole_signal(n):
    x = np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
    ref = _whole(x)
    for block in (3, 6000):
        got = log_mel(x, block=block)
        assert got.shape == ref.shape
        assert np.allclose(got, ref, atol=1e-4)
