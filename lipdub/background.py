"""Work that runs on the second core while the main thread goes on (e.g. the speech features while
the video is analysed): ``job = Background(fn, *args)`` starts it, ``job.result()`` waits for it
and returns its value or raises its exception.

The thread is a daemon, so an interrupted run exits without waiting for it; ``result()`` waits in
short steps and passes lipdub.interrupt's checkpoint, so Ctrl-C is honoured while it waits.
"""
from __future__ import annotations

import threading

from . import interrupt

POLL_S = 0.1
_STATE = {"blas": False}


def blas_one_thread() -> None:
    """Make the process's OpenBLAS (numpy's) single-threaded, whenever numpy was imported: a fork
    (every ffmpeg child) while another thread is inside a threaded BLAS call deadlocks in
    OpenBLAS's fork handler. lipdub's own import sets OPENBLAS_NUM_THREADS=1; this covers a
    program that imported numpy first."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for symbol in ("openblas_set_num_threads64_", "openblas_set_num_threads", "scipy_openblas_set_num_threads64_"):
            fn = getattr(handle, symbol, None)
            if fn is not None:
                fn(1)
                break


class Background:
    def __init__(self, fn, *args, name: str = "lipdub-background", **kwargs):
        if not _STATE["blas"]:
            blas_one_thread()
            _STATE["blas"] = True
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn, args, kwargs) -> None:
        try:
            self._value = fn(*args, **kwargs)
        except BaseException as e:  # handed to result()
            self._error = e

    def result(self):
        while self._thread.is_alive():
            self._thread.join(POLL_S)
            interrupt.check()
        if self._error is not None:
            raise self._error
        value, self._value = self._value, None  # the caller's reference is the only one left
        return value


class Done:
    """A result computed at once, with Background's ``result()``."""

    def __init__(self, value):
        self._value = value

    def result(self):
        value, self._value = self._value, None
        return value


# Audio longer than this is not held through the video's analysis: its features are computed
# first, in the calling thread (an hour of 16 kHz samples is 230 MB).
BESIDE_MAX_SAMPLES = 10 * 60 * 16000


def beside(features, track, *args, **kwargs):
    """``features(track, *args, **kwargs)`` for an lipdub.types.AudioTrack, as a Background job
    when the track is short enough to hold meanwhile (BESIDE_MAX_SAMPLES), else computed now."""
    if len(track.samples) > BESIDE_MAX_SAMPLES:
        return Done(features(track, *args, **kwargs))
    return Background(features, track, *args, name="lipdub-features", **kwargs)
