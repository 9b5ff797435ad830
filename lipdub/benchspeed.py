"""Speed and memory benchmark on generated media: `python -m lipdub.benchspeed [--long]`.

Builds talking-head videos of several sizes and lengths from the built-in sample (a still face
with a slow zoom, espeak-ng speech), dubs each with the installed `lipdub run` under
/usr/bin/time, and prints wall time, real-time factor and peak memory. --long adds the
5-minute 720p case (peak memory must not grow with length)."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [("256x256", 10), ("256x256", 60), ("1280x720", 10), ("1280x720", 60)]
LONG = [("1280x720", 300)]


def make_case(folder: Path, size: str, seconds: int) -> tuple[Path, Path]:
    from .demo import make_sample

    base_v, base_a = make_sample(folder / "base", seconds=10.0)
    w, h = map(int, size.split("x"))
    video, audio = folder / f"v_{size}_{seconds}.mp4", folder / f"a_{seconds}.wav"
    vf = f"scale=-2:{h},pad={w}:{h}:(ow-iw)/2:0" if w != h else f"scale={w}:{h}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base_v), "-t", str(seconds),
                    "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                    str(video)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base_a), "-t", str(seconds),
                    str(audio)], check=True)
    return video, audio


def timed_run(video: Path, audio: Path, out: Path) -> tuple[int, float, float]:
    t = time.time()
    p = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "lipdub", "run", str(video), "--audio", str(audio),
                        "-o", str(out), "--quiet", "--overwrite"], capture_output=True, text=True)
    wall = time.time() - t
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return p.returncode, wall, int(m.group(1)) / 1024 if m else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--long", action="store_true", help="add the 5-minute 720p case")
    a = ap.parse_args(argv)
    print(f"{'size':>10} {'seconds':>8} {'wall s':>8} {'rtf':>6} {'peak MB':>8}  status")
    worst = 0
    with tempfile.TemporaryDirectory(prefix="lipdub-bench-") as d:
        for size, secs in CASES + (LONG if a.long else []):
            v, au = make_case(Path(d), size, secs)
            rc, wall, rss = timed_run(v, au, Path(d) / "out.mp4")
            worst = max(worst, rc)
            print(f"{size:>10} {secs:>8} {wall:>8.1f} {wall / secs:>6.2f} {rss:>8.0f}  {'ok' if rc == 0 else 'FAILED'}",
                  flush=True)
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
