"""Mux an encoded video (one file, or segments joined in order) with a new audio track (AAC)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import MediaError
from ..types import AudioTrack
from .atomic import temp_name
from .probe import run_tool

_MOV_LIKE = {".mp4", ".m4v", ".mov"}


def write_float_wav(audio: AudioTrack, path, block_s: int = 60) -> Path:
    """``audio`` clipped to [-1, 1] as a mono float WAV, a minute at a time (an hour of audio is
    230 MB: no full-length copy)."""
    block = block_s * int(audio.sample_rate)
    with sf.SoundFile(str(path), "w", int(audio.sample_rate), 1, subtype="FLOAT") as f:
        for a in range(0, len(audio.samples), block):
            f.write(np.clip(np.asarray(audio.samples[a:a + block], np.float32).reshape(-1), -1, 1))
    return Path(path)


def mux(video, audio, out_path, bitrate: str = "192k") -> None:
    """Copy the video stream of ``video`` (a path, or a list of segment paths with identical
    encoder settings, joined in order by ffmpeg's concat demuxer) and encode ``audio`` (an
    AudioTrack, written to a temporary float WAV beside ``out_path``, or an audio file) as AAC
    into ``out_path`` (container chosen by its suffix). Raises MediaError with ffmpeg's stderr."""
    out_path = Path(out_path)
    wav = temp_name(out_path.with_suffix(".wav")) if isinstance(audio, AudioTrack) else Path(audio)
    listing = temp_name(out_path.with_suffix(".txt"))
    try:
        if isinstance(audio, AudioTrack):
            write_float_wav(audio, wav)
        if isinstance(video, (list, tuple)):
            listing.write_text("".join(f"file '{_concat_quote(Path(p).resolve())}'\n" for p in video))
            source = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        else:
            source = ["-i", str(video)]
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *source, "-i", str(wav),
               "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", bitrate]
        if out_path.suffix.lower() in _MOV_LIKE:
            cmd += ["-movflags", "+faststart"]
        r = run_tool(cmd + [str(out_path)], "mux audio")
        if r.returncode != 0:
            raise MediaError(f"{out_path}: ffmpeg could not mux the audio", r.stderr)
    finally:
        if isinstance(audio, AudioTrack):
            wav.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def _concat_quote(path: Path) -> str:
    """A path for a concat-demuxer list line inside single quotes."""
    return str(path).replace("'", "'\\''")
