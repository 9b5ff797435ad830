"""Signals and processes, on real `python -m lipdub run` processes: Ctrl-C (SIGINT to the process
group, as a terminal sends it) and SIGTERM at several moments end the run with 130 / 143 within
seconds and leave nothing behind; SIGKILL takes the ffmpeg children with it, and the next run in
the folder clears what the killed one left; a second run to the same output is refused."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lipdub.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXIT_WITHIN_S = 3.0  # the bar is 2 s; a little slack for a loaded test machine


@pytest.fixture(scope="module")
def inputs(synth, tmp_path_factory):
    """A 12 s face video (so the writing phase lasts a while: the run must not end before the signal) and a 12 s tone."""
    return synth.face_video(seconds=12.0), synth.wav(seconds=12.0)  # long enough to be signalled while writing


def _start(folder: Path, video: Path, audio: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "lipdub", "run", str(video), "--audio", str(audio), "-o",
                             str(folder / "out.mp4"), "--quiet", "--engine", "reference"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for(folder: Path, part: str, proc: subprocess.Popen, limit: float = 60.0) -> bool:
    t = time.monotonic()
    while time.monotonic() - t < limit and proc.poll() is None:
        if any(part in p.name for p in folder.iterdir()):
            return True
        time.sleep(0.01)
    return False


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


# (signal, hidden name to wait for, delay after it appears): during the analysis, as the encoder
# starts, in the middle of writing; SIGTERM while writing
MOMENTS = [(signal.SIGINT, ".work-", 0.3), (signal.SIGINT, ".partial-", 0.0),
           (signal.SIGINT, ".partial-", 0.5), (signal.SIGTERM, ".partial-", 0.2)]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig,part,delay", MOMENTS, ids=[f"{s.name}-{p.strip('.-')}-{d}" for s, p, d in MOMENTS])
def test_signal_ends_the_run_at_once_and_leaves_nothing(tmp_path, inputs, sig, part, delay):
    video, audio = inputs
    proc = _start(tmp_path, video, audio)
    try:
        assert _wait_for(tmp_path, part, proc), proc.communicate()[1].decode()
        time.sleep(delay)
        kids = _children(proc.pid)
        t = time.monotonic()
        os.killpg(proc.pid, sig)  # as a terminal does: the whole process group
        _, err = proc.communicate(timeout=20)
        took = time.monotonic() - t
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err.decode()
    assert took < EXIT_WITHIN_S, f"took {took:.2f} s to exit"
    assert "nothing was written" in err.decode()
    assert list(tmp_path.iterdir()) == []
    time.sleep(0.2)
    assert all(_dead(k) for k in kids)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_sigkill_takes_ffmpeg_along_and_the_next_run_clears_the_debris(tmp_path, inputs, synth):
    video, audio = inputs
    proc = _start(tmp_path, video, audio)
    try:
        assert _wait_for(tmp_path, ".partial-", proc)
        time.sleep(0.3)
        kids = _children(proc.pid)
        assert kids, "the encoder and the decoder run as children"
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    t = time.monotonic()
    while not all(_dead(k) for k in kids) and time.monotonic() - t < 2:
        time.sleep(0.02)
    assert all(_dead(k) for k in kids), "ffmpeg outlived lipdub"
    left = [p.name for p in tmp_path.iterdir()]
    assert left and all(n.startswith(".") for n in left)
    # nothing that looks like a video: the partial file has no video suffix
    assert not [n for n in left if n.endswith((".mp4", ".mov", ".mkv", ".m4v"))], left
    # a later run in the same folder (another output) clears the killed run's work files
    r = CliRunner().invoke(app, ["run", str(synth.face_video()), "--audio", str(synth.wav()), "-o",
                                 str(tmp_path / "other.mp4"), "--quiet", "--engine", "reference"])
    assert r.exit_code == 0, r.output
    assert [p.name for p in tmp_path.iterdir()] == ["other.mp4"]


def test_second_run_to_the_same_output_is_refused(tmp_path, synth):
    from lipdub.media.atomic import output_lock

    out = tmp_path / "same.mp4"
    with output_lock(out):  # as a first run holds it while it works
        r = CliRunner().invoke(app, ["run", str(synth.face_video()), "--audio", str(synth.wav()), "-o", str(out)])
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "another lipdub run is writing this output" in lines[0]
        assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the lock is gone with its holder


def test_lock_is_exclusive_between_processes(tmp_path):
    from lipdub.errors import BusyError
    from lipdub.media.atomic import output_lock

    out = tmp_path / "x.mp4"
    code = ("import sys, time; from lipdub.media.atomic import output_lock; "
            "l = output_lock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(BusyError):
            output_lock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    with output_lock(out):  # a killed holder's lock is free again
        pass
    assert list(tmp_path.iterdir()) == []


def test_final_move_never_replaces_a_file_that_appeared(tmp_path):
    from lipdub.errors import InputError
    from lipdub.media.atomic import atomic_output

    out = tmp_path / "o.mp4"
    with pytest.raises(InputError, match="appeared while lipdub was writing"):
        with atomic_output(out, replace=False) as tmp:
            tmp.write_bytes(b"new")
            out.write_bytes(b"someone else's")
    assert out.read_bytes() == b"someone else's" and [p.name for p in tmp_path.iterdir()] == ["o.mp4"]
    with atomic_output(out, replace=True) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
