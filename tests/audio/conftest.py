"""Media for the audio tests, made at test time with sox / ffmpeg / espeak-ng (once per session)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SHARED_AUDIO = Path(__file__).resolve().parents[3] / "shared" / "data" / "audio"
if not SHARED_AUDIO.is_dir():
    SHARED_AUDIO = Path("/work/shared/data/audio")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


class Media:
    """Lazily made test files in one session-wide temp folder."""

    def __init__(self, root: Path):
        self.root = root

    def _make(self, name: str, tools: tuple[str, ...], *cmds: list[str]) -> Path:
        out = self.root / name
        if not out.exists():
            _need(*tools)
            for cmd in cmds:
                _run([str(c) for c in cmd])
        return out

    # --- sines (sox) -------------------------------------------------------------------------
    def sine(self, rate: int, bits: int = 16, channels: int = 1, dur: float = 1.0,
             freq: float = 1000.0, ext: str = "wav", encoding: str | None = None) -> Path:
        enc = ["-e", encoding] if encoding else []
        name = f"sine_{rate}_{bits}_{channels}_{dur}_{freq}_{encoding}.{ext}"
        out = self.root / name
        return self._make(name, ("sox",), [
            "sox", "-D", "-n", "-r", str(rate), "-b", str(bits), *enc, "-c", str(channels), out,
            "synth", str(dur), "sine", str(freq), "vol", "0.5",
        ])

    def stereo_left_only(self, rate: int = 48000, dur: float = 1.0) -> Path:
        """Left channel: 440 Hz sine at amplitude 0.5; right channel: silence."""
        name = f"stereo_left_{rate}.wav"
        out = self.root / name
        return self._make(name, ("sox",), [
            "sox", "-D", "-n", "-r", str(rate), "-b", "16", "-c", "2", out,
            "synth", str(dur), "sine", "440", "sine", "440", "remix", "1v0.5", "2v0",
        ])

    def encoded(self, ext: str, codec: list[str] | None = None) -> Path:
        """A 2 s 440 Hz sine at 44.1 kHz encoded by ffmpeg into ``ext``."""
        src = self.sine(44100, dur=2.0, freq=440.0)
        name = f"sine2s.{ext}"
        out = self.root / name
        return self._make(name, ("ffmpeg",), [
            "ffmpeg", "-v", "error", "-y", "-i", src, *(codec or []), out,
        ])

    def video(self, with_audio: bool) -> Path:
        """A 2 s 64x64 25 fps mp4, with a 48 kHz stereo AAC 440 Hz tone when ``with_audio``."""
        name = f"video_{'a' if with_audio else 'noa'}.mp4"
        out = self.root / name
        audio = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"]
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
               "-i", "testsrc=size=64x64:rate=25:duration=2"]
        if with_audio:
            cmd += audio + ["-c:a", "aac", "-ac", "2", "-shortest"]
        cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", out]
        return self._make(name, ("ffmpeg",), cmd)

    def speech(self) -> Path:
        """espeak-ng speech (22.05 kHz) with exactly 1 s of silence before and after."""
        raw = self.root / "speech_raw.wav"
        name = "speech_padded.wav"
        out = self.root / name
        text = "The quick brown fox jumps over the lazy dog, and then it runs far away."
        return self._make(name, ("espeak-ng", "sox"),
                          ["espeak-ng", "-w", raw, text],
                          ["sox", "-D", raw, out, "pad", "1", "1"])

    def silence(self, dur: float = 2.0) -> Path:
        name = f"silence_{dur}.wav"
        out = self.root / name
        return self._make(name, ("sox",), [
            "sox", "-D", "-n", "-r", "16000", "-b", "16", "-c", "1", out, "trim", "0", str(dur)])

    def empty_wav(self) -> Path:
        """A valid wav header with 0 samples."""
        import numpy as np
        import soundfile as sf

        out = self.root / "empty.wav"
        if not out.exists():
            sf.write(str(out), np.zeros(0, np.float32), 16000, subtype="PCM_16")
        return out


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Media:
    return Media(tmp_path_factory.mktemp("audio_media"))


@pytest.fixture
def shared_audio() -> Path:
    if not SHARED_AUDIO.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_AUDIO
