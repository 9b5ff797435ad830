"""Shared fixtures: tiny synthetic media generated at test time with ffmpeg (no media in the repo),
and ``shared_data`` for the development clips in ../shared/data (skipped when absent)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; fail the test with its stderr when it fails."""
    r = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"ffmpeg {' '.join(args)} failed: {r.stderr[-500:]}")


class Synth:
    """Makes each named clip once per session under ``root`` and returns its path."""

    def __init__(self, root: Path):
        self.root = root
        self._done: dict[str, Path] = {}

    def _make(self, name: str, *args: str) -> Path:
        path = self.root / name
        if name not in self._done:
            ffmpeg(*args, str(path))
            self._done[name] = path
        return path

    def video(self, rate: str = "25", size: str = "96x64", seconds: float = 1.0, audio: bool = False,
              pix_fmt: str = "yuv420p", ext: str = "mp4", extra: tuple[str, ...] = ()) -> Path:
        """testsrc2 video (moving, every frame different) at an exact ``rate`` such as 30000/1001."""
        name = f"src_{rate.replace('/', '_')}_{size}_{seconds}_{int(audio)}_{pix_fmt}_{'_'.join(extra)}.{ext}"
        args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}"]
        args += ["-vf", f"scale={size.replace('x', ':')}", "-c:v", "libx264", "-preset", "ultrafast",
                 "-pix_fmt", pix_fmt, *extra]
        if audio:
            args += ["-c:a", "aac", "-shortest"]
        return self._make(name, *args)

    def blank(self) -> Path:
        """1 s of a plain coloured picture: no face anywhere."""
        return self._make("blank.mp4", "-f", "lavfi", "-i", "color=c=0x5080a0:size=96x64:rate=25:duration=1",
                          "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")

    def rotated(self) -> Path:
        """96x64 stored, tagged to display rotated by 90 degrees (a phone video)."""
        src = self.video(size="96x64")
        return self._make("rotated.mp4", "-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90")

    def vfr(self) -> Path:
        """Variable frame rate: 30 frames 1/30 s apart, then 15 frames 1/15 s apart."""
        return self._make("vfr.mp4", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=30", "-t", "2",
                          "-vf", "setpts='if(lt(N,30),N/30,1+(N-30)/15)/TB'", "-fps_mode", "vfr",
                          "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")

    def transport_stream(self) -> Path:
        """MPEG-TS with its usual 1.4 s start offset and a single key frame."""
        src = self.video(rate="30000/1001", size="96x64", audio=True)
        return self._make("offset.ts", "-i", str(src), "-c:v", "libx264", "-preset", "ultrafast",
                          "-c:a", "aac", "-f", "mpegts")

    def wav(self, seconds: float = 1.0, silent: bool = False) -> Path:
        src = "anullsrc=r=16000:cl=mono" if silent else "sine=frequency=220:sample_rate=16000"
        return self._make(f"tone_{seconds}_{int(silent)}.wav", "-f", "lavfi", "-i", src, "-t", str(seconds))

    def face_png(self) -> Path:
        """The astronaut photo (scikit-image ships it) cropped to the face, 160x160."""
        path = self.root / "face.png"
        if not path.exists():
            import cv2
            from skimage import data

            img = data.astronaut()[20:340, 90:410]
            cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(img, (160, 160), interpolation=cv2.INTER_AREA),
                                                cv2.COLOR_RGB2BGR))
        return path

    def face_video(self, seconds: float = 1.0, audio: bool = True) -> Path:
        """160x160 25 fps video of the astronaut's face with a slow zoom, with a tone as audio."""
        args = ["-loop", "1", "-framerate", "25", "-i", str(self.face_png())]
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=frequency=200:duration={seconds}"]
        args += ["-t", str(seconds), "-vf", "scale=176:176,zoompan=z='1+0.001*on':d=1:s=160x160:fps=25",
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        if audio:
            args += ["-c:a", "aac"]
        return self._make(f"face_{seconds}_{int(audio)}.mp4", *args)


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg/ffprobe not installed")
    return Synth(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models run fastest on one thread, and the test machine's cores are shared."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (development clips); the test is skipped when it is absent."""
    if not (SHARED_DATA / "clips").is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


def decode_all(path: Path) -> np.ndarray:
    """Every frame of ``path`` through the project's decoder: [T, H, W, 3] uint8."""
    from lipdub.media.probe import probe
    from lipdub.media.video import iter_frames

    return np.stack(list(iter_frames(probe(path))))
