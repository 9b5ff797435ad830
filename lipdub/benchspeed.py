"""Speed and memory benchmark: `python -m lipdub.benchspeed [--long] [--pairs N]`.

Dubs talking-head videos of several sizes with the installed `lipdub run` under /usr/bin/time and,
alternating with it, a plain transcode of the same input and audio (ffmpeg, H.264 veryfast at
lipdub's default CRF 14 + AAC: the decode and encode every dub needs). Prints the median wall
time of each over ``--pairs`` runs, their ratio, the dub's real-time factor and peak memory.
The media are generated from the built-in sample (a still face with a slow zoom, espeak-ng
speech); a real phone clip from ../shared/data is added when present. --long adds the 5-minute
720p case (peak memory must not grow with length)."""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [("256x256", 10), ("1280x720", 20), ("1080x1920", 20), ("3840x2160", 1), ("3840x2160", 5)]
LONG = [("1280x720", 300)]
REAL_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "portrait_hevc_1080x1920.mp4"
FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]


def make_case(folder: Path, size: str, seconds: int) -> tuple[Path, Path]:
    """(video, audio) of ``seconds`` at ``size`` (WxH) from the built-in sample."""
    from .demo import make_sample

    base_v, base_a = make_sample(folder / "base", seconds=10.0)
    w, h = map(int, size.split("x"))
    video = folder / f"v_{size}_{seconds}.mp4"
    vf = f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1"
    subprocess.run([*FFMPEG, "-stream_loop", "-1", "-i", str(base_v), "-t", str(seconds), "-vf", vf,
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(video)],
                   check=True)
    return video, loop_audio(folder, base_a, seconds)


def loop_audio(folder: Path, audio: Path, seconds: float) -> Path:
    out = folder / f"a_{audio.stem}_{seconds}.wav"
    subprocess.run([*FFMPEG, "-stream_loop", "-1", "-i", str(audio), "-t", str(seconds), str(out)], check=True)
    return out


def real_case(folder: Path) -> tuple[str, float, Path, Path] | None:
    """The phone clip of ../shared/data (HEVC 1080x1920) with the built-in sample's speech."""
    if not REAL_CLIP.exists():
        return None
    from .demo import make_sample
    from .media.probe import probe

    seconds = float(probe(REAL_CLIP).duration)
    return "phone HEVC", seconds, REAL_CLIP, loop_audio(folder, make_sample(folder / "base", seconds=10.0)[1], seconds)


def timed(cmd: list) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak memory MB) of ``cmd`` under /usr/bin/time -v."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return p.returncode, wall, int(m.group(1)) / 1024 if m else float("nan")


def dub_cmd(video: Path, audio: Path, out: Path) -> list:
    return [sys.executable, "-m", "lipdub", "run", str(video), "--audio", str(audio), "-o", str(out),
            "--quiet", "--overwrite"]


def transcode_cmd(video: Path, audio: Path, out: Path) -> list:
    return [*FFMPEG, "-i", str(video), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "14", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--long", action="store_true", help="add the 5-minute 720p case")
    ap.add_argument("--pairs", type=int, default=3, help="alternating dub/transcode runs per case (median)")
    a = ap.parse_args(argv)
    print(f"{'input':>12} {'seconds':>8} {'dub s':>7} {'transcode s':>11} {'ratio':>6} {'rtf':>6} {'peak MB':>8}  status")
    worst = 0
    with tempfile.TemporaryDirectory(prefix="lipdub-bench-") as d:
        d = Path(d)
        cases = [(size, secs, *make_case(d, size, secs)) for size, secs in CASES + (LONG if a.long else [])]
        real = real_case(d)
        cases += [real] if real is not None else []
        for name, secs, video, audio in cases:
            dubs, codes, peak, rc = [], [], 0.0, 0
            for _ in range(max(1, a.pairs)):
                code, wall, rss = timed(dub_cmd(video, audio, d / "out.mp4"))
                rc, peak = max(rc, code), max(peak, rss)
                dubs.append(wall)
                codes.append(timed(transcode_cmd(video, audio, d / "transcode.mp4"))[1])
            worst = max(worst, rc)
            dub, code = statistics.median(dubs), statistics.median(codes)
            print(f"{name:>12} {secs:>8.1f} {dub:>7.1f} {code:>11.1f} {dub / code:>6.2f} {dub / secs:>6.2f} "
                  f"{peak:>8.0f}  {'ok' if rc == 0 else 'FAILED'}", flush=True)
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
