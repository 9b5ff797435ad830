"""Background jobs hand back their value or their exception; short audio goes to the background."""
import threading

import numpy as np
import pytest

from lipdub import background
from lipdub.types import AudioTrack


def test_result_and_error():
    started = threading.Event()

    def work(x, y=1):
        started.set()
        return x + y

    job = background.Background(work, 2, y=3)
    assert job.result() == 5 and started.is_set()

    def fail():
        raise ValueError("bad audio")

    with pytest.raises(ValueError, match="bad audio"):
        background.Background(fail).result()


def test_long_audio_is_computed_at_once(monkeypatch):
    monkeypatch.setattr(background, "BESIDE_MAX_SAMPLES", 100)
    threads = []

    def feats(track, k):
        threads.append(threading.current_thread())
        return len(track.samples) * k

    short = background.beside(feats, AudioTrack(np.zeros(100, np.float32), 16000), 2)
    long = background.beside(feats, AudioTrack(np.zeros(101, np.float32), 16000), 2)
    assert isinstance(short, background.Background) and isinstance(long, background.Done)
    assert (short.result(), long.result()) == (200, 202)
    assert threads[1] is threading.current_thread() and threads[0] is not threads[1]


def test_blas_is_single_threaded_even_when_numpy_came_first():
    """A threaded OpenBLAS call in a background thread deadlocks the main thread's next fork
    (every ffmpeg child): lipdub keeps numpy's BLAS to one thread, whoever imported numpy first."""
    import os
    import subprocess
    import sys

    code = ("import ctypes, numpy\n"
            "lib = [l.split()[-1] for l in open('/proc/self/maps') if 'openblas' in l.rsplit('/', 1)[-1]]\n"
            "get = getattr(ctypes.CDLL(lib[0]), 'openblas_get_num_threads64_') if lib else None\n"
            "before = get() if get else 0\n"
            "from lipdub import background\n"
            "background.Background(lambda: numpy.ones((300, 300)) @ numpy.ones((300, 300))).result()\n"
            "print(before, get() if get else 1)\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    before, after = map(int, out.split())
    assert after == 1 and before in (0, 2)
