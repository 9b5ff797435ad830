"""The built-in sample, made at run time from material that ships inside packages (the repository
holds no media): scikit-image's astronaut photo as the face, moved by a slow zoom and pan so it is
a real video, and speech from the espeak-ng synthesiser. ``run_demo`` dubs it."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .errors import MediaError

SENTENCE = "Hello! This video was dubbed on an ordinary processor, with no downloads and no graphics card."
SIZE = 320


def make_video(path: Path, seconds: float = 4.0, fps: int = 25) -> Path:
    """[SIZE x SIZE] H.264 video of the astronaut's face with a gentle zoom (4 %) and pan."""
    import cv2
    import numpy as np
    from skimage import data

    from .media.video import VideoWriter

    img = np.ascontiguousarray(data.astronaut()[:360, 60:420])  # 360x360 around the face
    n = int(round(seconds * fps))
    with VideoWriter(path, SIZE, SIZE, fps, crf=16) as w:
        for t in range(n):
            a = t / max(n - 1, 1)
            z = SIZE / 360 * (1.0 + 0.04 * a)
            cx, cy = 180 + 6 * np.sin(2 * np.pi * a), 165 + 3 * a
            m = np.array([[z, 0, SIZE / 2 - z * cx], [0, z, SIZE / 2 - z * cy]], np.float64)
            w.write(cv2.warpAffine(img, m, (SIZE, SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return path


def make_speech(path: Path, text: str = SENTENCE) -> Path:
    """WAV of ``text`` spoken by espeak-ng."""
    tts = shutil.which("espeak-ng") or shutil.which("espeak")
    if tts is None:
        raise MediaError("espeak-ng not found: install it (apt-get install espeak-ng) to build the demo")
    r = subprocess.run([tts, "-s", "150", "-w", str(path), text], capture_output=True, text=True)
    if r.returncode != 0 or not path.exists():
        raise MediaError("espeak-ng could not synthesise the demo speech", r.stderr)
    return path


def make_sample(folder, seconds: float = 4.0, fps: int = 25) -> tuple[Path, Path]:
    """(astronaut.mp4, speech.wav) in ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return make_video(folder / "astronaut.mp4", seconds, fps), make_speech(folder / "speech.wav")


def run_demo(folder="out/demo", progress=None) -> dict:
    """Build the sample in ``folder`` and dub it: writes astronaut.mp4, speech.wav,
    demo.dubbed.mp4 and demo.preview.png there. Returns the dub summary (plus "input")."""
    from .pipeline import dub

    folder = Path(folder)
    video, speech = make_sample(folder)
    summary = dub(video, speech, folder / "demo.dubbed.mp4", preview=folder / "demo.preview.png",
                  overwrite=True, progress=progress)
    summary["input"] = str(video)
    # a still photo has no speech of its own: the generic style is the intended one here
    summary["warnings"] = [w for w in summary["warnings"] if "no audio of its own" not in w]
    return summary
