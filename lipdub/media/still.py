"""A still photo as input: the photo held for as long as the new speech, as a video the pipeline
dubs like any other (the reference engine then has no lip motion to learn from and animates the
mouth from the audio priors, with a synthesised inner mouth where the photo's is shut)."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError, MediaError
from .probe import run_tool
from .proc import tool_path

FPS = 25
MAX_SIDE = 1920  # a 12-megapixel phone photo becomes a 1920-pixel video, not a 4000-pixel one


def still_video(image, n_frames: int, folder, fps: int = FPS) -> Path:
    """``folder``/still.mp4: ``n_frames`` frames of ``image`` at ``fps`` (lossless H.264),
    upright by its EXIF orientation, its long side at most MAX_SIDE, its size even."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        from pillow_heif import register_heif_opener  # HEIC, the photos of iPhones

        register_heif_opener()
    except ImportError:
        pass
    image, folder = Path(image), Path(folder)
    try:
        with Image.open(image) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{image}: not a readable image ({err.__class__.__name__})") from None
    scale = min(1.0, MAX_SIDE / max(im.size))
    w, h = (max(2, int(round(s * scale)) // 2 * 2) for s in im.size)
    if (w, h) != im.size:
        im = im.resize((w, h), Image.LANCZOS)
    png, out = folder / "still.png", folder / "still.mp4"
    im.save(png)
    n = max(1, int(n_frames))
    # decoded once and repeated by the loop filter; lossless, so every frame decodes identically
    # (the analysis then finds the face once: lipdub.style.pack.analyse_video)
    r = run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", "-framerate", str(fps), "-i", tool_path(png),
                  "-vf", f"loop=loop={n - 1}:size=1:start=0,format=yuv420p", "-frames:v", str(n),
                  "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", tool_path(out)], "turn a photo into a video")
    if r.returncode != 0:
        raise MediaError(f"{image}: ffmpeg could not turn the photo into a video", r.stderr)
    return out
