"""Every legal path works: names that begin with '-' (never read as ffmpeg options), names with
a colon (never read as a protocol), and names up to the file system's limit (the hidden
temporary names beside them always fit, and messages name the user's path)."""
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lipdub.cli import app
from tests.conftest import ffmpeg


def test_dash_names_and_long_output_name(synth, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(synth.face_video(), tmp_path / "-face.mp4")
    ffmpeg("-i", str(synth.wav(seconds=1.0)), "-c:a", "libmp3lame", str(tmp_path / "-dash.mp3"))
    out = "-" + "n" * 245 + ".mp4"  # 250 characters: legal; its hidden temporary names must fit too
    assert len(out) == 250
    r = CliRunner().invoke(app, ["run", "./-face.mp4", "--audio", "./-dash.mp3", "-o", f"./{out}", "--quiet",
                                 "--engine", "reference", "--preview", "./-sheet.png"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["-face.mp4", "-dash.mp3", out, "-sheet.png"])
    # and the output of one run is the input of the next, style reference included
    r = CliRunner().invoke(app, ["prepare-style", "./-face.mp4", "-o", "./-speaker.lipstyle", "--quiet"])
    assert r.exit_code == 0, r.output


def test_probe_and_audio_of_odd_names(synth, tmp_path, monkeypatch):
    from lipdub import batch
    from lipdub.audio.io import load_audio, load_video_audio
    from lipdub.media.probe import probe

    monkeypatch.chdir(tmp_path)
    for name in ("-v.mp4", "http:x.mp4", "-i"):
        p = Path(name)  # relative, as a user types it
        shutil.copy(synth.video(audio=True), p)
        assert probe(p).n_frames == 25
        assert load_video_audio(p) is not None
        assert batch.is_complete(p)
    a = Path("-y.m4a")
    ffmpeg("-i", str(synth.wav()), "-c:a", "aac", str(a.absolute()))
    assert load_audio(a).duration == pytest.approx(1.0, abs=0.05)


def test_hidden_names_always_fit(tmp_path):
    from lipdub.media.atomic import atomic_output, hidden_name, scratch_dir, temp_name
    from lipdub.resume import partial_dir

    final = tmp_path / ("é" * 125 + ".mp4")  # 254 bytes in UTF-8
    assert len(os.fsencode(final.name)) == 254
    for p in (temp_name(final), partial_dir(final), hidden_name(final, "lipdub-lock")):
        assert len(os.fsencode(p.name)) <= 255 and p.name.startswith(".")
        p.touch()
        p.unlink()
    assert partial_dir(final) == partial_dir(final)  # the same run finds its folder again
    with scratch_dir(final) as work:
        assert work.is_dir()
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"x")
    assert final.read_bytes() == b"x"


def test_too_long_output_name_names_the_users_path(synth, tmp_path):
    out = tmp_path / ("n" * 260 + ".mp4")
    r = CliRunner().invoke(app, ["run", str(synth.face_video()), "--audio", str(synth.wav()), "-o", str(out)])
    assert r.exit_code == 2
    line = [ln for ln in r.stderr.splitlines() if ln.strip()][-1]
    assert line.startswith(f"error: {out}: ") and "too long" in line and ".work-" not in line
