"""Mux an encoded video with a new audio track (AAC)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import MediaError
from ..types import AudioTrack
from .atomic import temp_name
from .probe import run_tool

_MOV_LIKE = {".mp4", ".m4v", ".mov"}


def mux(video_path, audio: AudioTrack, out_path, bitrate: str = "192k") -> None:
    """Copy the video stream of ``video_path`` and encode ``audio`` (mono float32 at
    audio.sample_rate) as AAC into ``out_path`` (container chosen by its suffix). The audio goes
    through a temporary float WAV beside ``out_path``. Raises MediaError with ffmpeg's stderr."""
    out_path = Path(out_path)
    wav = temp_name(out_path.with_suffix(".wav"))
    try:
        samples = np.clip(np.asarray(audio.samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
        sf.write(str(wav), samples, int(audio.sample_rate), subtype="FLOAT")
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(video_path), "-i", str(wav),
               "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", bitrate]
        if out_path.suffix.lower() in _MOV_LIKE:
            cmd += ["-movflags", "+faststart"]
        r = run_tool(cmd + [str(out_path)], "mux audio")
        if r.returncode != 0:
            raise MediaError(f"{out_path}: ffmpeg could not mux the audio", r.stderr)
    finally:
        wav.unlink(missing_ok=True)
