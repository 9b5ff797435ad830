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



def _pack_and_motion(T=50, blow_up=True):
    from fractions import Fraction

    from lipdub.types import LipMotion, StylePack

    rng = np.random.default_rng(0)
    rest = rng.normal(size=(40, 2)).astype(np.float32) * 0.3
    ref = rest + rng.normal(scale=0.02, size=(80, 40, 2)).astype(np.float32)
    pack = StylePack(feats=np.zeros((80, 4), np.float32), voiced=np.ones(80, np.float32), lips=ref,
                     pose=np.zeros((80, 3), np.float32), rest_lips=rest, template=np.zeros((468, 2), np.float32),
                     crops=np.zeros((0, 8, 8, 3), np.uint8), crop_index=np.zeros(0, np.int64),
                     crop_points=np.zeros((0, 468, 2), np.float32), fps=Fraction(25))
    lips = np.repeat(rest[None], T, 0) + 0.05
    if blow_up:
        lips[:10] += 50.0  # what 0.1 s of audio did to the motion
    return pack, LipMotion(lips=lips.astype(np.float32))


def test_settle_rests_padding_and_silence_and_tames_blow_ups():
    from lipdub.pipeline import settle

    pack, motion = _pack_and_motion(T=150)
    voiced = np.ones(150)
    voiced[20:75] = 0.0  # a 2.2 s pause at 25 fps
    voiced[100:108] = 0.0  # a breath between words
    out = settle(motion, pack, voiced, audio_frames=130, fps=25.0).lips
    rest = pack.rest_lips
    assert np.abs(out[22:73] - rest).max() < 1e-5  # a long pause rests
    assert np.abs(out[130:] - rest).max() < 1e-5  # padded silence rests
    assert np.abs(out[:10] - rest).max() < 2.0  # a blown-up prediction is brought back within reach
    assert np.abs(out[12:17] - motion.lips[12:17]).max() < 1e-5  # speech far from silence is untouched
    assert np.abs(out[98:110] - motion.lips[98:110]).max() < 1e-5  # a short pause is the motion model's
    step = np.abs(np.diff(out[73:81], axis=0)).max()
    assert step < 0.05  # out of rest over a few frames, not in one jump (the full move is 0.05)
    silent = settle(motion, pack, np.zeros(150), fps=25.0).lips  # no speech at all: closed throughout
    assert np.abs(silent[12:] - rest).max() < 1e-5


def test_very_short_audio_rests_the_mouth(synth, tmp_path, monkeypatch):
    """0.1 s of audio for a 3 s face video: the lips the renderer is given rest for the whole clip."""
    from lipdub import pipeline, render
    from lipdub.face.landmarks import mouth_opening

    seen = {}
    real = render.make_renderer

    def spy(engine, pack, track, motion, schedule, **kw):
        seen.update(motion=motion, pack=pack)
        return real(engine, pack, track, motion, schedule, **kw)

    monkeypatch.setattr(render, "make_renderer", spy)
    tone = tmp_path / "short.wav"
    from tests.conftest import ffmpeg

    ffmpeg("-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=16000", "-t", "0.1", str(tone))
    s = pipeline.dub(synth.face_video(seconds=3.0), tone, tmp_path / "o.mp4", engine="reference")
    assert any("rests closed" in w for w in s["warnings"])
    op = mouth_opening(seen["motion"].lips)
    rest = float(mouth_opening(seen["pack"].rest_lips[None])[0])
    assert len(op) == 75 and np.abs(op - rest).max() < 1e-3
