"""Writing results: atomic moves into place and muxing the new audio."""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

from ..errors import InputError, MediaError
from ..types import AudioTrack


@contextlib.contextmanager
def atomic_output(final: Path, suffix: str | None = None):
    """Yield a hidden temporary path beside ``final``; move it into place only on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed, so a partly
    written result never appears under the final name."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=suffix or final.suffix or ".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_writable(path: Path, overwrite: bool, inputs=()) -> Path:
    """InputError when ``path`` cannot be an output: same file as an input, existing (without
    overwrite), or in a missing or unwritable folder."""
    path = Path(path)
    for i in inputs:
        if i is not None and Path(i).exists() and path.exists() and os.path.samefile(path, i) or \
                i is not None and Path(i).resolve() == path.resolve():
            raise InputError(f"{path}: output would overwrite the input; choose another -o")
    if path.is_dir():
        raise InputError(f"{path}: output is a directory")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists (use --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{path}: output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: output folder {parent} is not writable")
    return path


def mux(video: Path, audio: AudioTrack, out: Path, bitrate: str = "192k") -> None:
    """Copy the video stream of ``video`` and add ``audio`` as AAC into ``out`` (mp4)."""
    from ..audio.io import write_wav

    with tempfile.TemporaryDirectory(prefix="lipdub-") as d:
        wav = write_wav(audio, Path(d) / "audio.wav")
        cmd = ["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(video), "-i", str(wav), "-map", "0:v:0",
               "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", bitrate, "-movflags", "+faststart",
               "-f", "mp4", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise MediaError(f"{out}: could not mux the audio", r.stderr)
