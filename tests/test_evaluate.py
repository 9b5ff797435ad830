"""Quality check: lip sync against a truth video or the audio, and mouth-region image figures."""
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lipdub import evaluate as ev
from lipdub.errors import InputError, NoFaceError
from tests.conftest import ffmpeg

IMAGE_KEYS = ("sharpness", "flicker", "seam")


@pytest.fixture(scope="module")
def clips(synth, tmp_path_factory):
    """(source face video, speech wav, dubbed output, frozen: the dubbed output's first frame held
    still under the same audio)."""
    tts = shutil.which("espeak-ng")
    if tts is None:
        pytest.skip("espeak-ng not installed")
    from lipdub.pipeline import dub

    root = tmp_path_factory.mktemp("eval")
    source = synth.face_video(seconds=1.5)
    speech = root / "speech.wav"
    subprocess.run([tts, "-s", "160", "-w", str(speech), "hello there, how are you"], check=True, capture_output=True)
    dubbed = Path(dub(source, speech, root / "dubbed.mp4", engine="reference")["output"])
    still = root / "first.png"
    ffmpeg("-i", str(dubbed), "-frames:v", "1", str(still))
    frozen = root / "frozen.mp4"
    ffmpeg("-loop", "1", "-framerate", "25", "-i", str(still), "-i", str(dubbed), "-map", "0:v", "-map", "1:a",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(frozen))
    return source, speech, dubbed, frozen


def _finite(res, keys):
    return all(res[k] is not None and math.isfinite(res[k]) for k in keys)


def test_best_lag_and_corr():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(100)
    x = np.roll(y, 3)  # x[t + 3] == y[t]: x moves 3 frames after y
    assert ev._best_lag(x, y) == (3, pytest.approx(1.0))
    assert ev._best_lag(y, y) == (0, pytest.approx(1.0))
    assert ev._corr(np.ones(50), y[:50]) == 0.0  # a constant signal: no correlation
    x[::7] = np.nan
    assert ev._corr(x, x) == pytest.approx(1.0)  # NaN frames (no face) are left out
    assert ev._corr(np.arange(2.0), np.arange(2.0)) is None


def test_self_as_truth(clips):
    _, _, dubbed, _ = clips
    seen = []
    res = ev.evaluate(dubbed, truth=dubbed, progress=lambda s, d, t: seen.append(s))
    assert res["open_corr"] == pytest.approx(1.0, abs=1e-3) and res["open_lag"] == 0
    assert res["open_lag_corr"] == pytest.approx(1.0, abs=1e-3)
    assert res["lmd"] == pytest.approx(0.0, abs=0.05)
    assert res["av_corr"] is None and res["faces_found"] == 1.0 and res["warnings"] == []
    assert _finite(res, IMAGE_KEYS) and res["sharpness"] > 0 and res["seam"] > 0
    assert {"landmarks", "truth", "images"} <= set(seen)
    json.dumps(res, allow_nan=False)  # flat and JSON-able


def test_truth_differs_from_other_video(clips):
    source, speech, dubbed, _ = clips
    res = ev.evaluate(dubbed, truth=source, audio=speech)  # the source keeps its own (closed) mouth
    assert res["lmd"] > 0.5 and res["open_corr"] < 0.9  # the same video scores 0
    assert res["av_corr"] > 0.5 and res["audio"] == str(speech)  # --audio given: both kinds of figures
    assert any("frames" in w for w in res["warnings"])  # 46 dubbed frames vs 38 source frames


def test_audio_agreement_and_frozen_mouth(clips):
    _, speech, dubbed, frozen = clips
    moving = ev.evaluate(dubbed)  # the dubbed file's own audio
    also = ev.evaluate(dubbed, audio=speech)
    still = ev.evaluate(frozen)
    assert moving["audio"] == str(dubbed) and also["audio"] == str(speech)
    assert moving["av_corr"] > 0.5 and abs(moving["av_lag"]) <= 2 and also["av_corr"] > 0.5
    assert abs(still["av_corr"]) < 0.3 and moving["av_corr"] - still["av_corr"] > 0.4
    assert still["flicker"] < 0.5 * moving["flicker"]  # a still picture barely changes
    assert _finite(still, IMAGE_KEYS) and still["lmd"] is None


def test_against_source(clips):
    source, _, dubbed, _ = clips
    same = ev.evaluate(source, source=source)
    assert same["psnr_upper_db"] == ev.PSNR_CAP
    assert all(same[f"{k}_ratio"] == pytest.approx(1.0) for k in IMAGE_KEYS)
    res = ev.evaluate(dubbed, source=source)
    assert 30 < res["psnr_upper_db"] < ev.PSNR_CAP  # above the nose only re-encoded
    assert _finite(res, [f"{k}_ratio" for k in IMAGE_KEYS]) and res["source"] == str(source)
    assert res["flicker_ratio"] > 1.0  # the redrawn mouth moves; the source's does not


def test_errors_name_the_file(synth, tmp_path):
    with pytest.raises(NoFaceError, match="blank.mp4: no face"):
        ev.evaluate(synth.blank())
    with pytest.raises(InputError, match="missing.mp4"):
        ev.evaluate(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="frame size"):
        ev.evaluate(synth.face_video(seconds=1.0), source=synth.video(size="96x64"))
