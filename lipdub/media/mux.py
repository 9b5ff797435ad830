"""Mux an encoded video (one file, or segments joined in order) with a new audio track (AAC)."""
from __future__ import annotations

import errno
import struct
from pathlib import Path

import numpy as np

from ..errors import MediaError
from ..types import AudioTrack
from .atomic import disk_full, temp_name
from .probe import run_tool
from .proc import tool_path

_MOV_LIKE = {".mp4", ".m4v", ".mov"}


def write_float_wav(audio: AudioTrack, path, block_s: int = 60) -> Path:
    """``audio`` clipped to [-1, 1] as a mono 32-bit float WAV, a minute at a time (an hour of audio
    is 230 MB: no full-length copy). Written with plain file I/O so that a full disk is an OSError
    with its errno (raised as DiskFullError naming the folder)."""
    block = block_s * int(audio.sample_rate)
    n, rate = len(audio.samples), int(audio.sample_rate)
    data = 4 * n
    header = (b"RIFF" + struct.pack("<I", 4 + 26 + 12 + 8 + data) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHHH", 18, 3, 1, rate, 4 * rate, 4, 32, 0)
              + b"fact" + struct.pack("<II", 4, n)
              + b"data" + struct.pack("<I", data))
    try:
        with open(path, "wb") as f:
            f.write(header)
            for a in range(0, n, block):
                f.write(np.clip(np.asarray(audio.samples[a:a + block], np.float32).reshape(-1), -1, 1)
                        .astype("<f4").tobytes())
    except OSError as err:
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise disk_full(path) from None
        raise
    return Path(path)


def mux(video, audio, out_path, bitrate: str = "192k", container: str | None = None) -> None:
    """Copy the video stream of ``video`` (a path, or a list of segment paths with identical
    encoder settings, joined in order by ffmpeg's concat demuxer) and encode ``audio`` (an
    AudioTrack, written to a temporary float WAV beside ``out_path``, or an audio file) as AAC
    into ``out_path`` (container chosen by ``container``, a suffix, default ``out_path``'s). Raises
    MediaError with ffmpeg's stderr, DiskFullError when the disk fills."""
    from .video import _check_disk, muxer_args

    out_path = Path(out_path)
    container = (container or out_path.suffix).lower()
    wav = temp_name(out_path.with_suffix(".wav")) if isinstance(audio, AudioTrack) else Path(audio)
    listing = temp_name(out_path.with_suffix(".txt"))
    try:
        if isinstance(audio, AudioTrack):
            write_float_wav(audio, wav)
        if isinstance(video, (list, tuple)):
            listing.write_text("".join(f"file '{_concat_quote(Path(p).resolve())}'\n" for p in video))
            source = ["-f", "concat", "-safe", "0", "-i", tool_path(listing)]
        else:
            source = ["-i", tool_path(video)]
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *source, "-i", tool_path(wav),
               "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", bitrate]
        if container in _MOV_LIKE:
            cmd += ["-movflags", "+faststart"]
        r = run_tool(cmd + [*muxer_args(container), tool_path(out_path)], "mux audio")
        _check_disk(out_path, r.stderr)
        if r.returncode != 0:
            raise MediaError(f"{out_path}: ffmpeg could not mux the audio", r.stderr)
    finally:
        if isinstance(audio, AudioTrack):
            wav.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def _concat_quote(path: Path) -> str:
    """A path for a concat-demuxer list line inside single quotes."""
    return str(path).replace("'", "'\\''")
