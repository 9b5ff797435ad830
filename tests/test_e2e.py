"""End to end on a real talking-face clip from ../shared/data (skipped when absent)."""
import json
import subprocess

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, ffmpeg

CLIP = SHARED_DATA / "clips" / "vox_00002.mp4"
pytestmark = pytest.mark.skipif(not CLIP.exists(), reason="../shared/data is absent")


def _probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _frames(path, w, h):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def test_dub_real_clip(tmp_path):
    from lipdub.face.landmarks import NOSE_TIP
    from lipdub.pipeline import dub

    half_a, audio_b = tmp_path / "a.mp4", tmp_path / "b.wav"
    ffmpeg("-t", "2.5", "-i", str(CLIP), "-c:v", "libx264", "-crf", "14", "-preset", "veryfast", "-c:a", "aac", str(half_a))
    ffmpeg("-ss", "1.5", "-t", "3.0", "-i", str(CLIP), "-vn", "-ac", "2", "-ar", "44100", str(audio_b))
    before = half_a.read_bytes()
    out = tmp_path / "out.mp4"
    summary = dub(half_a, audio_b, out, engine="reference")
    assert half_a.read_bytes() == before  # the input is never modified
    assert summary["engines"] == {"motion": "stage1", "render": "reference"}
    info = _probe(out)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (v["width"], v["height"]) == (224, 224) and v["avg_frame_rate"] == "25/1" and v["pix_fmt"] == "yuv420p"
    assert a["codec_name"] == "aac"
    assert abs(float(info["format"]["duration"]) - 3.0) < 0.1  # audio longer than video: extended, not cut
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary litter

    src, dst = _frames(half_a, 224, 224), _frames(out, 224, 224)
    from lipdub.face.detect import Landmarker

    nose_y = int(Landmarker()(src[0])[0, NOSE_TIP, 1])
    upper = slice(0, nose_y - 10)
    n = len(src)
    mse = ((src[:, upper].astype(float) - dst[:n, upper].astype(float)) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / mse) > 38  # above the nose: only re-encoded
    mouth = slice(nose_y + 10, nose_y + 60)
    assert np.abs(src[:, mouth].astype(float) - dst[:n, mouth]).mean() > 1.0  # the mouth was redrawn


def test_speech_over_music_moves_the_mouth(tmp_path):
    """selfie_d12 (a handheld clip with music under the voice): the voice detector hears almost
    no speech, the phone recogniser does, and the run says which it followed."""
    from lipdub.pipeline import dub

    clip = SHARED_DATA / "clips" / "selfie_d12.mp4"
    video, audio = tmp_path / "a.mp4", tmp_path / "b.wav"
    ffmpeg("-t", "3", "-i", str(clip), "-an", "-c:v", "libx264", "-crf", "14", "-preset", "veryfast", str(video))
    ffmpeg("-ss", "4", "-t", "3", "-i", str(clip), "-vn", str(audio))
    s = dub(video, audio, tmp_path / "out.mp4", engine="reference")
    assert s["speech_from"] == "phones" and s["speech_share"] > 0.5
    assert any("voice detector hears almost no speech" in w for w in s["warnings"])


def test_dub_a_photo(tmp_path):
    """A still portrait and a German track: a video as long as the speech whose mouth moves with
    it, the rest of the photo kept."""
    from lipdub.face.detect import Landmarker
    from lipdub.face.landmarks import LIPS, NOSE_TIP, mouth_opening
    from lipdub.pipeline import dub

    photo, speech = SHARED_DATA / "images" / "portrait_face3.png", tmp_path / "de.wav"
    ffmpeg("-t", "3", "-i", str(SHARED_DATA / "audio" / "de_1.wav"), str(speech))
    out = tmp_path / "out.mp4"
    s = dub(photo, speech, out, engine="reference")
    info = _probe(out)
    v = next(x for x in info["streams"] if x["codec_type"] == "video")
    assert v["avg_frame_rate"] == "25/1" and abs(float(info["format"]["duration"]) - 3.0) < 0.1
    w, h = v["width"], v["height"]
    frames = _frames(out, w, h)
    lm = Landmarker()
    pts = [lm(f) for f in frames[::5]]
    assert all(len(p) == 1 for p in pts)
    opening = mouth_opening(np.stack([p[0, LIPS] for p in pts]))
    assert np.ptp(opening) > 5  # pixels: the mouth opens and closes
    nose_y = int(pts[0][0, NOSE_TIP, 1])
    still = frames[:, : nose_y - 20].astype(float)
    assert np.abs(still - still[0]).max() < 12  # above the nose the photo stays as it was
    assert s["frames"] == len(frames)
