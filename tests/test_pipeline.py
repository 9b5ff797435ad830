"""dub() on synthetic media: frames without a face pass through in place; warnings in the summary."""
import numpy as np
import pytest

from lipdub.media.probe import probe
from lipdub.pipeline import dub
from tests.conftest import decode_all, ffmpeg


def test_face_in_part_of_the_video_and_silent_audio(synth, tmp_path):
    """Both succeed with a warning: frames without a face come back unchanged at the same times,
    and silent audio keeps the mouth closed."""
    video = tmp_path / "part.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=0x5080a0:size=160x160:rate=25:duration=0.6", "-i", str(synth.face_video()),
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(video))
    out = tmp_path / "out.mp4"
    s = dub(video, synth.wav(seconds=1.6, silent=True), out, engine="reference")
    assert s["frames"] == 40 and s["faces_found"] == pytest.approx(25 / 40, abs=0.05)
    assert any("no face in" in w for w in s["warnings"])
    assert any("no speech" in w for w in s["warnings"]) and s["speech_share"] == 0 and s["speech_from"] == "vad"
    src, dubbed = decode_all(video), decode_all(out)
    assert dubbed.shape == src.shape
    no_face = slice(0, 14)  # the plain frames come back as they were, at the same times
    mse = np.mean((src[no_face].astype(float) - dubbed[no_face]) ** 2)
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) > 40
    assert probe(out).fps == probe(video).fps

