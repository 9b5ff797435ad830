"""Audio input/output: any file ffmpeg reads -> mono float32 at 16 kHz, and 16-bit wav writing.

Files libsndfile reads (wav of any bit depth, float wav, flac, ogg, aiff, ...) are read with
soundfile; anything else (mp3, m4a/aac, the audio stream of a video, ...) is decoded with ffmpeg
at its native rate. Channels are averaged to mono and the result is resampled to 16 kHz with a
polyphase filter (scipy.signal.resample_poly's filter and alignment, computed in numpy so that
start-up does not pay for importing scipy.signal), so every input goes through one resampler.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from fractions import Fraction
from math import gcd
from pathlib import Path

import numpy as np

from lipdub.errors import InputError, MediaError
from lipdub.types import AudioTrack

SAMPLE_RATE = 16000
"""Sample rate (Hz) of every AudioTrack this module returns."""

MIN_DURATION = 1.0 / 60.0
"""Default shortest usable audio in seconds: one frame at 60 fps (the shortest common frame)."""

_FFMPEG_TIMEOUT_S = 3600


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise MediaError(f"{name} not found on PATH; install ffmpeg (it provides {name})")
    return exe


def _tail(stderr: bytes | str, n: int = 2) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def _run(cmd: list[str], path: Path, timeout: float) -> subprocess.CompletedProcess:
    from lipdub.media.proc import run

    try:
        return run(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MediaError(f"{path}: {Path(cmd[0]).name} timed out after {timeout:.0f} s") from None
    except OSError as e:
        raise MediaError(f"{path}: cannot run {cmd[0]} ({e.strerror or e})") from None


def _arg(path: Path) -> str:
    """The path for ffmpeg's command line: absolute (a name such as ``-dash.mp3`` is not an option)."""
    from lipdub.media.proc import tool_path

    return tool_path(path)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels: [N] or [N, C] float -> [N] float32."""
    x = np.asarray(samples)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    return np.ascontiguousarray(x, dtype=np.float32)


def _kaiser_lowpass(up: int, down: int) -> np.ndarray:
    """The anti-aliasing filter scipy.signal.resample_poly designs by default: a Kaiser-windowed
    (beta 5) sinc with cutoff 1 / max(up, down) of Nyquist, 20 * max(up, down) + 1 taps, unit DC
    gain, times ``up``. [20 * max(up, down) + 1] float64."""
    max_rate = max(up, down)
    half = 10 * max_rate
    n = np.arange(-half, half + 1, dtype=np.float64)
    h = np.sinc(n / max_rate) * np.kaiser(2 * half + 1, 5.0)
    return h * (up / h.sum())


def resample(samples: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of mono [N] float samples from ``sr_in`` to ``sr_out`` Hz.

    Same filter, alignment (zero delay) and output length as scipy.signal.resample_poly, in
    numpy alone (importing scipy.signal costs ~0.6 s at start-up). Returns
    [ceil(N * sr_out / sr_in)] float32, so durations stay exact to one output sample.
    """
    x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
    sr_in, sr_out = int(sr_in), int(sr_out)
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    g = gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    n_in = len(x)
    if (up == 1 and down == 1) or n_in == 0:
        return x.copy()
    n_out = -(-n_in * up // down)
    h = _kaiser_lowpass(up, down)
    half = (len(h) - 1) // 2
    taps = -(-len(h) // up)
    # poly[p, j] = h[p + j * up]: the taps that meet real input samples for output phase p,
    # reversed so that a forward window of the input can be dotted with them.
    hp = np.zeros(taps * up, dtype=np.float64)
    hp[: len(h)] = h
    poly = np.ascontiguousarray(hp.reshape(taps, up).T[:, ::-1], dtype=np.float32)
    # Output m sits at position c = m * down + half of the zero-stuffed, filtered signal; it is
    # sum_j h[c % up + j * up] * x[c // up - j].
    pad_l = taps
    pad_r = taps + half // up + down + 2
    xp = np.concatenate([np.zeros(pad_l, np.float32), x, np.zeros(pad_r, np.float32)])
    windows = np.lib.stride_tricks.sliding_window_view(xp, taps)
    y = np.empty(n_out, dtype=np.float32)
    chunk = max(1, (1 << 21) // taps)  # bound the gathered windows to ~8 MB
    for r in range(min(up, n_out)):
        base = r * down + half
        phase, q0 = base % up, base // up
        count = len(range(r, n_out, up))
        start = q0 - (taps - 1) + pad_l
        for i0 in range(0, count, chunk):
            i1 = min(count, i0 + chunk)
            win = windows[start + i0 * down : start + (i1 - 1) * down + 1 : down]
            y[r + i0 * up : r + (i1 - 1) * up + 1 : up] = win @ poly[phase]
    return y


def _clean(x: np.ndarray) -> np.ndarray:
    """Replace NaN/inf by 0 and bring float input that exceeds full scale back into [-1, 1]."""
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 1.0:
        x = x / peak
    return x.astype(np.float32, copy=False)


# Containers handed to libsndfile, by their first bytes. Everything else (mp3 included: libsndfile
# decodes it through mpg123, which writes notes to stderr on bad data) goes to ffmpeg.
_SNDFILE_MAGIC = (b"RIFF", b"RF64", b"BW64", b"riff", b"FORM", b"fLaC", b"OggS", b"caff", b".snd")


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    """(samples [N] float32 mono, native rate) via libsndfile, or None if it cannot read the file."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    if magic not in _SNDFILE_MAGIC:
        return None
    try:
        import soundfile as sf
    except ImportError:  # pragma: no cover - soundfile is a dependency
        return None
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # libsndfile refuses: unknown format, corrupt header, ...
        return None
    if data.shape[1] == 0 or sr <= 0:
        return None
    return to_mono(data), int(sr)


def _probe_audio_streams(path: Path) -> list[dict]:
    """ffprobe the file's audio streams; raises InputError when ffprobe cannot read it."""
    cmd = [
        _tool("ffprobe"), "-v", "error", "-select_streams", "a",
        "-show_entries", "stream=index,codec_name,sample_rate,channels",
        "-of", "json", _arg(path),
    ]
    proc = _run(cmd, path, 120)
    if proc.returncode != 0:
        why = _tail(proc.stderr, 1).replace(f"{_arg(path)}: ", "").replace(f"{path}: ", "") or "unrecognised format"
        raise InputError(f"{path}: not a readable audio or video file ({why})")
    try:
        streams = json.loads(proc.stdout.decode("utf-8", "replace") or "{}").get("streams", [])
    except json.JSONDecodeError:
        raise InputError(f"{path}: not a readable audio or video file") from None
    return streams


def _decode_ffmpeg(path: Path, stream: dict) -> tuple[np.ndarray, int]:
    """Decode one probed audio stream with ffmpeg: (samples [N] float32 mono, rate in Hz)."""
    try:
        sr = int(stream.get("sample_rate") or 0)
    except (TypeError, ValueError):
        sr = 0
    if sr <= 0:
        sr = SAMPLE_RATE  # unknown native rate: let ffmpeg resample straight to 16 kHz
    try:
        channels = int(stream.get("channels") or 0)
    except (TypeError, ValueError):
        channels = 0
    # Up to stereo we average the channels ourselves (same as the soundfile path); for surround
    # layouts ffmpeg's downmix weights the centre/front channels properly.
    out_ch = channels if 1 <= channels <= 2 else 1
    cmd = [
        _tool("ffmpeg"), "-nostdin", "-hide_banner", "-v", "error", "-i", _arg(path),
        "-map", f"0:{int(stream['index'])}", "-vn", "-sn", "-dn",
        "-ac", str(out_ch), "-ar", str(sr), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]
    proc = _run(cmd, path, _FFMPEG_TIMEOUT_S)
    if proc.returncode != 0:
        why = _tail(proc.stderr).replace(f"{_arg(path)}: ", "").replace(f"{path}: ", "") or f"ffmpeg exit code {proc.returncode}"
        raise InputError(f"{path}: cannot decode audio ({why})")
    raw = np.frombuffer(proc.stdout, dtype="<f4")
    usable = len(raw) - len(raw) % out_ch
    data = raw[:usable].reshape(-1, out_ch)
    return to_mono(data), sr


def _decode(path: Path) -> tuple[np.ndarray, int]:
    got = _read_soundfile(path)
    if got is not None:
        return got
    streams = _probe_audio_streams(path)
    if not streams:
        raise InputError(f"{path}: has no audio stream")
    return _decode_ffmpeg(path, streams[0])


def _finish(x: np.ndarray, sr: int, path: Path) -> AudioTrack:
    x = _clean(resample(_clean(x), sr, SAMPLE_RATE))
    np.clip(x, -1.0, 1.0, out=x)  # resampling can overshoot full scale by a hair
    return AudioTrack(samples=x, sample_rate=SAMPLE_RATE, source=path)


def load_audio(path, *, fps: Fraction | float | None = None) -> AudioTrack:
    """Load any audio (or the first audio stream of a video) as mono float32 at 16 kHz.

    path: file path (str or Path). fps: if given, audio shorter than one frame at this rate is
    rejected; otherwise audio shorter than ``MIN_DURATION`` (1/60 s) is.
    Returns AudioTrack(samples [N] float32 in [-1, 1], sample_rate=16000, source=path).
    All-silent audio is returned as is (callers may warn; see lipdub.audio.vad.is_silent).
    Raises InputError (one line naming the file): missing file, directory, unreadable or corrupt
    data, no audio stream, zero-length or shorter-than-one-frame audio. MediaError when ffmpeg is
    not installed and the file needs it.
    """
    path = Path(path)
    _check_file(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    x, sr = _decode(path)
    if fps is not None and not float(fps) > 0:
        raise InputError(f"{path}: invalid frame rate {fps!r} for the minimum duration check")
    min_dur = MIN_DURATION if fps is None else 1.0 / float(fps)
    if len(x) == 0:
        raise InputError(f"{path}: audio has zero length")
    if len(x) / sr < min_dur:
        raise InputError(
            f"{path}: audio is too short ({len(x) / sr * 1000:.1f} ms, less than one video frame)"
        )
    return _finish(x, sr, path)


def load_video_audio(video) -> AudioTrack | None:
    """The first audio stream of a video as mono float32 at 16 kHz, or None when it has none.

    video: a path (str or Path) or a lipdub.types.VideoInfo (its ``path`` is used, with the audio
    streams its probe found: no second probe; when its ``has_audio`` is False nothing is read).
    An audio stream that decodes to no samples also gives None. Raises InputError for a
    missing/unreadable file or undecodable audio.
    """
    path = getattr(video, "path", video)
    if path is None:
        raise InputError("no video path given")
    path = Path(path)
    probed = hasattr(video, "has_audio")
    if probed and not video.has_audio:
        return None
    _check_file(path)
    if probed:
        from ..media.probe import stream_extra

        streams = stream_extra(video)["audio"]
    else:
        streams = _probe_audio_streams(path)
    if not streams:
        return None
    x, sr = _decode_ffmpeg(path, streams[0])
    if len(x) == 0:
        return None
    return _finish(x, sr, path)


def write_wav(track: AudioTrack, path) -> Path:
    """Write ``track`` as a mono 16-bit PCM wav at its own sample rate; returns the path.

    Samples are clipped to [-1, 1]. Raises InputError (naming the path) when it cannot be written.
    """
    import soundfile as sf

    path = Path(path)
    x = np.clip(np.asarray(track.samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    try:
        sf.write(str(path), x, int(track.sample_rate), subtype="PCM_16", format="WAV")
    except Exception as e:  # libsndfile / OS errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: cannot write wav ({msg})") from None
    return path
