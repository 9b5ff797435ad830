"""Outputs appear only when complete, never replace a file unasked, and leave no debris.

- ``temp_name``: a hidden sibling of the final path, ``.NAME.partial-PID-TOKEN``: no video suffix
  (a partial file is never taken for a finished video; ffmpeg is told the container), the pid of
  the run that writes it, and short enough for any legal NAME (a long stem is shortened).
- ``atomic_output``: write there, fsync, then move to the final path: with ``replace=False`` the
  move refuses a file that appeared meanwhile (a hard link cannot replace; rename is the fallback
  on file systems without links).
- ``scratch_dir``: a hidden work folder beside the output (``.NAME.work-PID-TOKEN``), removed when done.
- ``output_lock``: one run at a time per output path (an exclusive lock; a second run is refused).
- ``clean_stale``: removes the temporary files and work folders of runs whose process is gone
  (killed with SIGKILL, a power cut), so a rerun in the same folder clears them.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from ..errors import BusyError, DiskFullError, InputError

NAME_MAX = 255  # bytes in a file name on every common Linux/macOS file system
_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_OURS = re.compile(r"\.(partial|work)-(\d+)-[0-9a-f]+(\.[A-Za-z0-9]+)?$")


def name_max(folder) -> int:
    try:
        return min(NAME_MAX, os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def hidden_name(final_path, tag: str) -> Path:
    """``dir/.NAME.TAG``, with NAME shortened (and a hash of it added) when the whole would not fit
    in NAME_MAX bytes; the same final path always gives the same shortened NAME."""
    final_path = Path(final_path)
    name, tail = final_path.name, f".{tag}"
    limit = name_max(final_path.parent if final_path.parent.is_dir() else ".")
    if len(os.fsencode(f".{name}{tail}")) <= limit:
        return final_path.with_name(f".{name}{tail}")
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    room = limit - len(os.fsencode(tail)) - 1 - 9
    short = os.fsencode(name)[:max(1, room)].decode("utf-8", "ignore") if isinstance(name, str) else name
    return final_path.with_name(f".{short}~{digest}{tail}")


def temp_name(final_path) -> Path:
    """Hidden, unique sibling of ``final_path``: ``dir/.name.mp4.partial-PID-1a2b3c``."""
    return hidden_name(final_path, f"partial-{os.getpid()}-{secrets.token_hex(3)}")


def disk_full(path) -> DiskFullError:
    """DiskFullError naming the user's folder of ``path`` (above lipdub's own hidden folders)."""
    folder = Path(os.path.abspath(path)).parent
    while _OURS.search(folder.name) or folder.name.endswith(".lipdub-partial"):
        folder = folder.parent
    return DiskFullError(folder)


def user_error(err: OSError, final_path) -> Exception:
    """An OSError met while writing ``final_path`` (through its hidden names), as the user's
    error: a full disk names the folder; anything else names ``final_path``."""
    if err.errno in _FULL:
        return disk_full(final_path)
    if isinstance(err, InputError):
        return err
    return InputError(f"{final_path}: cannot write ({err.strerror or err})") if err.errno in (
        errno.ENAMETOOLONG, errno.EACCES, errno.EROFS, errno.EPERM) else err


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def move_into_place(tmp: Path, final_path: Path, replace: bool = True) -> None:
    """Move ``tmp`` to ``final_path``. replace=False: InputError when ``final_path`` exists (also
    when it appeared a moment ago: a hard link never replaces a file)."""
    if replace:
        os.replace(tmp, final_path)
        return
    try:
        os.link(tmp, final_path)
    except FileExistsError:
        raise InputError(f"{final_path}: appeared while lipdub was writing it; kept it "
                         "(use --overwrite to replace it)") from None
    except OSError as err:
        if err.errno in _FULL:
            raise
        if os.path.lexists(final_path):  # no hard links here (FAT, some network file systems)
            raise InputError(f"{final_path}: appeared while lipdub was writing it; kept it "
                             "(use --overwrite to replace it)") from None
        os.rename(tmp, final_path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(final_path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``final_path``. When the block succeeds the
    file is fsynced and moved to ``final_path`` (atomic on one file system; replace=False never
    replaces a file there); on any exception, KeyboardInterrupt included, the temporary file is
    deleted and ``final_path`` is untouched. A full disk is a DiskFullError naming the folder."""
    final_path = Path(final_path)
    tmp = temp_name(final_path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        move_into_place(tmp, final_path, replace)
        _fsync_dir(final_path.parent)
    except OSError as err:
        if isinstance(err, (InputError, DiskFullError)) or err.errno not in _FULL:
            raise
        raise disk_full(final_path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def scratch_dir(near) -> Iterator[Path]:
    """A hidden temporary folder beside ``near`` (same file system, so large intermediates do not
    fill /tmp), removed with everything in it when the block ends, however it ends."""
    near = Path(near)
    path = hidden_name(near, f"work-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        path.mkdir(mode=0o700)
    except OSError as err:
        raise user_error(err, near) from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_stale(folder) -> list[Path]:
    """Remove lipdub's temporary files and work folders in ``folder`` whose run's process is gone;
    returns what was removed. Only names lipdub makes are touched (``.*.partial-PID-TOKEN``,
    ``.*.work-PID-TOKEN``) and only when no process PID runs."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if e.name.startswith(".") and e.name.endswith(".lipdub-lock"):
            if _free_lock(Path(e.path)):
                removed.append(Path(e.path))
            continue
        m = _OURS.search(e.name)
        if not e.name.startswith(".") or m is None or _alive(int(m.group(2))):
            continue
        path = Path(e.path)
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def _free_lock(path: Path) -> bool:
    """Remove a lock file nobody holds (left by a killed run); True when removed."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class OutputLock:
    """An exclusive lock on ``path`` for one run (a hidden ``.NAME.lipdub-lock`` beside it, removed
    on release). BusyError at once when another run holds it."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock = hidden_name(self.path, "lipdub-lock")
        self.fd = None

    def acquire(self) -> "OutputLock":
        import fcntl

        for _ in range(20):
            try:
                fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as err:
                raise user_error(err, self.path) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise BusyError(f"{self.path}: another lipdub run is writing this output; "
                                "wait for it to finish or choose another output") from None
            try:  # the file we locked is still the one at that name (not removed by its last holder)
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock))
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                return self
            os.close(fd)
        raise BusyError(f"{self.path}: could not lock the output (another run keeps replacing its lock)")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock)  # while still holding it: see acquire
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def output_lock(path) -> OutputLock:
    return OutputLock(path)
