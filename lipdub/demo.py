"""The built-in sample, made at run time from material that ships inside packages: scikit-image's
astronaut photo as the face (a slow zoom makes it a real video) and espeak-ng speech."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .errors import MediaError

SENTENCE = "Hello! This video was dubbed on a plain processor, with no downloads and no graphics card."


def make_sample(folder: Path, seconds: float = 4.0, fps: int = 25) -> tuple[Path, Path]:
    """(video.mp4, speech.wav) in ``folder``."""
    import cv2
    import numpy as np
    from skimage import data

    from .media.video import VideoWriter

    folder.mkdir(parents=True, exist_ok=True)
    img = np.ascontiguousarray(data.astronaut()[:320, 80:400])
    video, speech = folder / "astronaut.mp4", folder / "speech.wav"
    n = int(seconds * fps)
    with VideoWriter(video, 320, 320, fps, crf=16) as w:
        for t in range(n):
            z = 1.0 + 0.04 * t / n
            m = cv2.getRotationMatrix2D((160, 150), 0.0, z)
            w.write(cv2.warpAffine(img, m, (320, 320), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    tts = shutil.which("espeak-ng") or shutil.which("espeak")
    if tts is None:
        raise MediaError("espeak-ng not found: install it (apt-get install espeak-ng) to build the demo")
    r = subprocess.run([tts, "-s", "150", "-w", str(speech), SENTENCE], capture_output=True, text=True)
    if r.returncode != 0:
        raise MediaError("espeak-ng failed", r.stderr)
    return video, speech


def run_demo(folder: Path, progress=None) -> dict:
    from .pipeline import dub
    from .preview import contact_sheet

    folder = Path(folder)
    video, speech = make_sample(folder)
    out = folder / "demo.dubbed.mp4"
    summary = dub(video, speech, out, overwrite=True, progress=progress)
    summary["preview"] = str(contact_sheet(video, out, folder / "demo.preview.png"))
    return summary
