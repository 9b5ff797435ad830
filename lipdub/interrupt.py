"""Ctrl-C and SIGTERM, handled in one place.

The signal handler raises nothing: it sets ``EVENT``, records the signal and kills the ffmpeg
children (lipdub.media.proc), so that no exception can land inside a lock, a queue operation or a
cleanup. The main thread raises ``Interrupted`` (a KeyboardInterrupt) at its next checkpoint
(``check()``: every frame decoded or encoded, every progress report, every finished child
process). Worker threads poll with timeouts and every join has one. Should the main thread reach
no checkpoint within ``GRACE_S`` (a long computation with no progress report), a watchdog raises
there the way Python's own handler would.

Without ``handling()`` (library use) nothing changes: Python's default KeyboardInterrupt applies.
"""
from __future__ import annotations

import contextlib
import signal
import threading

EVENT = threading.Event()
GRACE_S = 1.0
_state = {"signum": None, "raised": False, "force": False, "timer": None, "active": False}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) reached lipdub."""


class Terminated(Interrupted):
    """SIGTERM reached lipdub; handled like Ctrl-C so that every cleanup runs."""


def requested() -> bool:
    return EVENT.is_set()


def check() -> None:
    """Raise Interrupted (Terminated for SIGTERM) once a signal has arrived; else do nothing."""
    if EVENT.is_set():
        _state["raised"] = True
        raise Terminated() if _state["signum"] == signal.SIGTERM else Interrupted()


def _force() -> None:
    """Watchdog: the main thread passed no checkpoint in GRACE_S; raise there."""
    if _state["active"] and not _state["raised"]:
        import _thread

        _state["force"] = True
        _thread.interrupt_main(signal.SIGINT)


def _handler(signum, frame) -> None:
    if _state["force"] and not _state["raised"]:  # the watchdog's call
        _state["force"] = False
        check()
    if not EVENT.is_set():
        _state["signum"] = signum
        EVENT.set()
    from .media.proc import kill_children

    kill_children()
    if _state["timer"] is None and not _state["raised"]:
        t = threading.Timer(GRACE_S, _force)
        t.daemon = True
        _state["timer"] = t
        t.start()


@contextlib.contextmanager
def handling():
    """Install the handler for SIGINT and SIGTERM for the duration of the block (main thread
    only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    EVENT.clear()
    _state.update(signum=None, raised=False, force=False, timer=None, active=True)
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        _state["active"] = False
        if _state["timer"] is not None:
            _state["timer"].cancel()
        for s, h in old.items():
            signal.signal(s, h)
        EVENT.clear()
        _state.update(signum=None, raised=False, force=False, timer=None)
