"""Write outputs under a temporary name beside the final path; rename only on success."""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def temp_name(final_path: Path) -> Path:
    """Hidden sibling of ``final_path`` that keeps its suffix (so ffmpeg and numpy pick the
    format from it): ``dir/.name.partial-1a2b3c.mp4``."""
    final_path = Path(final_path)
    return final_path.with_name(f".{final_path.stem}.partial-{secrets.token_hex(3)}{final_path.suffix}")


@contextlib.contextmanager
def atomic_output(final_path) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``final_path``. When the block succeeds the
    file is fsynced and renamed over ``final_path`` (atomic on one file system); on any exception,
    KeyboardInterrupt included, the temporary file is deleted and ``final_path`` is untouched."""
    final_path = Path(final_path)
    tmp = temp_name(final_path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final_path)
        with contextlib.suppress(OSError):  # make the rename itself durable
            fd = os.open(final_path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def scratch_dir(near) -> Iterator[Path]:
    """A hidden temporary folder beside ``near`` (same file system, so large intermediates do not
    fill /tmp), removed with everything in it when the block ends, however it ends."""
    near = Path(near)
    path = Path(tempfile.mkdtemp(prefix=f".{near.stem}.work-", dir=near.parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
