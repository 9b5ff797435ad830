"""ffprobe -> VideoInfo: exact frame rate, variable frame rate, rotation, sample aspect ratio."""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
from fractions import Fraction
from pathlib import Path

from .. import interrupt
from ..errors import InputError, MediaError, StillImageError
from ..types import VideoInfo
from .proc import run as run_child
from .proc import tool_path

# Frame rates a variable-frame-rate video is snapped to when its average rate is close to one.
STANDARD_RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                  Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60)]
HEIF_SUFFIXES = (".heic", ".heif")
_STILL_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif"}


# How ffmpeg ends when Ctrl-C (or SIGTERM) reaches it: its own exit code 255, or killed by the signal.
INTERRUPTED = (255, -signal.SIGINT, -signal.SIGTERM)


def check_interrupted(returncode: int | None) -> None:
    """Raise KeyboardInterrupt when a tool stopped because the user interrupted the run (the
    terminal sends Ctrl-C to ffmpeg too, and lipdub's own handler kills it), so it is reported as an
    interruption, not a bad file."""
    interrupt.check()
    if returncode in INTERRUPTED:
        raise KeyboardInterrupt


def run_tool(args: list[str], what: str) -> subprocess.CompletedProcess:
    """Run ffmpeg/ffprobe to completion; MediaError when the tool itself is missing."""
    try:
        r = run_child(args, text=True)
    except FileNotFoundError:
        raise MediaError(f"{args[0]} not found; install ffmpeg (e.g. apt-get install ffmpeg) to {what}") from None
    check_interrupted(r.returncode)
    return r


def _frac(text, default=None) -> Fraction | None:
    """'30000/1001' -> Fraction; '0/0', 'N/A', '0:1' or missing -> default."""
    if not text or text in ("N/A", "0/0"):
        return default
    try:
        num, _, den = str(text).replace(":", "/").partition("/")
        f = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return default
    return f if f > 0 else default


def _float(text, default=None):
    try:
        x = float(text)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def check_readable(path: str | os.PathLike, what: str = "input") -> Path:
    """Path of an existing readable regular file, else InputError naming it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file ({what})")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a file ({what})")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: permission denied ({what})")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty ({what})")
    return p


def _rotation(stream: dict) -> int:
    """Display rotation in degrees as ffprobe reports the display matrix (counter-clockwise), 0..270."""
    for sd in stream.get("side_data_list") or []:
        if "rotation" in sd:
            return int(round(_float(sd["rotation"], 0) / 90.0)) * 90 % 360
    return int(round(_float((stream.get("tags") or {}).get("rotate"), 0) / 90.0)) * 90 % 360


PACKET_SECONDS = 10.0  # the stretch of packets read to tell a variable frame rate


def _packet_times(packets: list[dict], index: int) -> list[float]:
    """Presentation times (s) of stream ``index``'s packets (ffprobe's first PACKET_SECONDS), sorted."""
    times = [_float(pk.get("pts_time")) for pk in packets if int(_float(pk.get("stream_index"), -1)) == index]
    return sorted(t for t in times if t is not None)


def _is_vfr(times: list[float], fps: Fraction) -> bool:
    """True when frame intervals vary by more than a quarter of the nominal interval."""
    if len(times) < 3:
        return False
    step = 1.0 / float(fps)
    gaps = [b - a for a, b in zip(times, times[1:])]
    odd = sum(abs(g - step) > 0.25 * step for g in gaps)
    return odd > max(1, 0.02 * len(gaps))


def _vfr_rate(avg: Fraction, r: Fraction | None) -> Fraction:
    """The constant rate a variable-frame-rate video is decoded at."""
    if r is not None and r <= 120 and abs(float(r / avg) - 1) < 0.05:
        return r
    best = min(STANDARD_RATES, key=lambda s: abs(float(s / avg) - 1))
    if abs(float(best / avg) - 1) < 0.02:
        return best
    return avg.limit_denominator(100)


_COLOR_KEYS = ("color_space", "color_primaries", "color_transfer")
_EXTRA: dict[tuple[str, float], dict] = {}


def _extra(stream: dict, fmt: dict, streams: list[dict]) -> dict:
    """Facts VideoInfo does not carry: the stream's index in the file, its first timestamp and the
    container start (s, as stored), colour tags, whether it is full range, and the file's audio
    streams (index, codec_name, sample_rate, channels)."""
    tags = {k: stream[k] for k in _COLOR_KEYS if stream.get(k) not in (None, "", "unknown", "reserved")}
    full = stream.get("color_range") == "pc" or str(stream.get("pix_fmt", "")).startswith("yuvj")
    audio = [{k: a[k] for k in ("index", "codec_name", "sample_rate", "channels") if k in a}
             for a in streams if a.get("codec_type") == "audio"]
    return {"index": int(stream.get("index", 0)), "vstart": _float(stream.get("start_time"), 0.0),
            "fstart": _float(fmt.get("start_time"), 0.0), "color": tags, "full_range": full, "audio": audio}


def stream_extra(info: VideoInfo) -> dict:
    """See _extra; recorded by probe(), probed again if the file changed since."""
    key = (str(info.path), os.path.getmtime(info.path))
    if key not in _EXTRA:
        probe(info.path)
    return _EXTRA[key]


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file. Raises InputError (missing, not a video, no video stream, corrupt)
    naming the file, or MediaError when ffprobe itself cannot run."""
    p = check_readable(path, "video")
    # one ffprobe: the streams, the container and the first packets' times (a variable rate)
    r = run_tool(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-show_entries",
                  "packet=pts_time,stream_index", "-read_intervals", f"%+{PACKET_SECONDS:g}", "-of", "json",
                  tool_path(p)], "probe videos")
    if r.returncode != 0:
        if p.suffix.lower() in HEIF_SUFFIXES:  # phone photos ffmpeg cannot open (lipdub.media.still can)
            raise StillImageError(f"{p}: is a still image, not a video")
        lines = [re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*", "", ln.strip()).replace(tool_path(p), "").replace(str(p), "").strip(": ")
                 for ln in r.stderr.strip().splitlines()[-2:]]
        tail = "; ".join(ln for ln in lines if ln)
        raise InputError(f"{p}: not a readable video (corrupt, truncated or not a media file){': ' + tail if tail else ''}")
    try:
        data = json.loads(r.stdout or "{}")
    except json.JSONDecodeError:
        raise MediaError(f"{p}: ffprobe gave unreadable output", r.stderr) from None
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    video = [s for s in streams if s.get("codec_type") == "video"
             and not (s.get("disposition") or {}).get("attached_pic")]
    if not video:
        raise InputError(f"{p}: has no video stream")
    still_codec = video[0].get("codec_name") in ("png", "mjpeg", "bmp", "webp", "tiff")
    s = video[0]
    frames = _image_frames(p, s, fmt) if fmt.get("format_name") in _ANIMATED_FORMATS else 0
    if frames > 1:  # an animated GIF or APNG: a video with its own frame timing
        if not int(_float(s.get("nb_frames"), 0) or 0):
            s = dict(s, nb_frames=str(frames))
    elif fmt.get("format_name") in _STILL_FORMATS or (still_codec and _frac(video[0].get("nb_frames"), 1) <= 1):
        if fmt.get("format_name") == "webp_pipe" and _animated_webp(p):
            raise InputError(f"{p}: is an animated WebP, which ffmpeg cannot decode: convert it to a video "
                             "(e.g. an MP4) or an animated GIF first")
        raise StillImageError(f"{p}: is a still image, not a video")
    width, height = int(s.get("width") or 0), int(s.get("height") or 0)
    if width <= 0 or height <= 0:
        raise InputError(f"{p}: video stream has no frame size (corrupt?)")

    r_rate = _frac(s.get("r_frame_rate"))
    avg = _frac(s.get("avg_frame_rate"))
    if r_rate is not None and r_rate > 1000:  # timebase-like rates some muxers report
        r_rate = None
    nominal = r_rate or avg
    if nominal is None:
        raise InputError(f"{p}: video stream has no frame rate (corrupt?)")
    vfr = bool(r_rate and avg and abs(float(r_rate / avg) - 1) > 0.002)
    if not vfr:
        vfr = _is_vfr(_packet_times(data.get("packets") or [], int(s.get("index", 0))), nominal)
    fps = _vfr_rate(avg or nominal, r_rate) if vfr else nominal

    duration = _float(s.get("duration")) or _float((s.get("tags") or {}).get("DURATION") and
                                                   _hms(s["tags"]["DURATION"])) or _float(fmt.get("duration"))
    nb = int(_float(s.get("nb_frames"), 0) or 0)
    if not vfr and nb > 0:
        n_frames = nb
        duration = duration or float(nb / fps)
    elif duration:
        n_frames = max(1, int(round(duration * fps)))
    else:
        raise InputError(f"{p}: video has no duration or frame count (corrupt or truncated?)")
    if duration is None or duration <= 0:
        duration = float(n_frames / fps)

    if len(_EXTRA) > 64:
        _EXTRA.clear()
    _EXTRA[(str(p), os.path.getmtime(p))] = _extra(s, fmt, streams)
    rotation = _rotation(s)
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(path=p, width=width, height=height, fps=fps, n_frames=n_frames, duration=float(duration),
                     rotation=rotation, vfr=vfr, pix_fmt=s.get("pix_fmt") or "", codec=s.get("codec_name") or "",
                     sar=_frac(s.get("sample_aspect_ratio"), Fraction(1)),
                     has_audio=any(x.get("codec_type") == "audio" for x in streams))


_ANIMATED_FORMATS = {"gif", "apng"}


def _image_frames(path: Path, stream: dict, fmt: dict) -> int:
    """Frames of a GIF or APNG (ffprobe counts its packets when the stream does not say)."""
    n = int(_float(stream.get("nb_frames"), 0) or 0)
    if n:
        return n
    r = run_tool(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                  "stream=nb_read_packets", "-of", "csv=p=0", tool_path(path)], "probe videos")
    return int(_float(r.stdout.strip().strip(","), 0) or 0) if r.returncode == 0 else 0


def _animated_webp(path: Path) -> bool:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:  # not readable by Pillow either: the still-image path says so
        return False


def _hms(text: str) -> float | None:
    """'00:00:01.500000000' -> 1.5 (Matroska DURATION tag)."""
    try:
        h, m, sec = str(text).split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None
