"""Child processes (ffmpeg, ffprobe): started so that they die with lipdub, killed on Ctrl-C.

Every child runs in its own process group (a Ctrl-C at the terminal reaches lipdub alone, whose
handler kills the children: lipdub.interrupt) and, on Linux, with PR_SET_PDEATHSIG, so that a
SIGKILL of lipdub takes its children with it. ``tool_path`` gives ffmpeg a path it cannot read as
an option or a protocol (a file named ``-face.mp4`` or ``http:x.wav``).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import weakref

from .. import interrupt

_children: "weakref.WeakSet[subprocess.Popen]" = weakref.WeakSet()
_lock = threading.Lock()
POLL_S = 0.1


def tool_path(path) -> str:
    """An absolute path for a command line (never mistaken for an option or a URL)."""
    return os.path.abspath(os.fspath(path))


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc() if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int):
    def setup() -> None:  # runs in the child between fork and exec: no Python objects allocated
        os.setpgid(0, 0)
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(137)
    return setup


def popen(cmd: list, **kw) -> subprocess.Popen:
    """subprocess.Popen that dies with this process and is killed by lipdub.interrupt."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen([str(c) for c in cmd], preexec_fn=_child_setup(os.getpid()), **kw)
    with _lock:
        _children.add(proc)
    if interrupt.requested():  # the signal came while it started
        kill(proc)
    return proc


def kill(proc: subprocess.Popen) -> None:
    try:
        if proc.poll() is None:
            proc.kill()
    except OSError:
        pass


def kill_children() -> None:
    """SIGKILL every child still running (safe to call from a signal handler)."""
    for proc in list(_children):
        if proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except OSError:
                pass


def run(cmd: list, timeout: float | None = None, text: bool = False) -> subprocess.CompletedProcess:
    """Run to completion, capturing stdout and stderr, like subprocess.run; polls for a Ctrl-C
    (lipdub.interrupt.check) and kills the child when one comes or ``timeout`` passes
    (subprocess.TimeoutExpired)."""
    import time

    proc = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                interrupt.check()
                if deadline is not None and time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(cmd, timeout) from None
    finally:
        if proc.returncode is None:
            kill(proc)
            proc.wait()
    interrupt.check()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait(proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """Wait for a child at most ``timeout`` s (killing it then); its return code."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
