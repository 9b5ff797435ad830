"""The command line through typer's CliRunner: exit codes, one-line messages, no litter."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lipdub import __version__
from lipdub.cli import app
from lipdub.media.probe import probe

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _error_line(result, code, *words):
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # progress bars may come before
    for w in words:
        assert str(w).lower() in errors[0].lower(), errors[0]
    assert result.stdout == ""


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and __version__ in r.stdout
    r = invoke("run", "--help")
    assert r.exit_code == 0
    for opt in ("--audio", "--output", "--style", "--engine", "--face", "--length-policy", "--preview",
                "--json", "--quiet", "--device", "--seed", "--crf", "--overwrite", "--report"):
        assert opt in r.stdout


def test_importing_the_cli_stays_light():
    code = ("import sys, lipdub.cli; heavy = [m for m in ('torch', 'diffusers', 'mediapipe', 'cv2', 'scipy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_video(tmp_path, synth):
    missing = tmp_path / "nope.mp4"
    _error_line(invoke("run", missing, "--audio", synth.wav()), 2, missing, "no such file")


def test_missing_audio(tmp_path, synth):
    missing = tmp_path / "nope.wav"
    _error_line(invoke("run", synth.video(), "--audio", missing), 2, missing, "no such file")


def test_not_a_video(tmp_path, synth):
    fake = tmp_path / "fake video.mp4"
    fake.write_text("hello\n" * 100)
    out = tmp_path / "o.mp4"
    _error_line(invoke("run", fake, "--audio", synth.wav(), "-o", out), 2, fake, "not a readable video")
    assert fake.read_text() == "hello\n" * 100 and not out.exists()


def test_audio_file_as_video(synth, tmp_path):
    _error_line(invoke("run", synth.wav(), "--audio", synth.wav(), "-o", tmp_path / "o.mp4"), 2, "no video stream")


def test_output_equal_to_input(tmp_path, synth):
    video = tmp_path / "in.mp4"
    video.write_bytes(synth.video().read_bytes())
    before = video.read_bytes()
    _error_line(invoke("run", video, "--audio", synth.wav(), "-o", video, "--overwrite"), 2, video, "same file")
    assert video.read_bytes() == before


def test_existing_output_needs_overwrite(tmp_path, synth):
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"keep me")
    _error_line(invoke("run", synth.video(), "--audio", synth.wav(), "-o", out), 2, out, "already exists", "--overwrite")
    assert out.read_bytes() == b"keep me"


def test_output_folder_missing_or_bad_suffix(tmp_path, synth):
    out = tmp_path / "missing" / "o.mp4"
    _error_line(invoke("run", synth.video(), "--audio", synth.wav(), "-o", out), 2, "does not exist")
    _error_line(invoke("run", synth.video(), "--audio", synth.wav(), "-o", tmp_path / "o.txt"), 2, "must end in")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder(tmp_path, synth):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _error_line(invoke("run", synth.video(), "--audio", synth.wav(), "-o", ro / "o.mp4"), 2, "not writable")
    finally:
        ro.chmod(0o700)


def test_bad_options(synth, tmp_path):
    v, a = synth.video(), synth.wav()
    _error_line(invoke("run", v, "--audio", a, "-o", tmp_path / "o.mp4", "--engine", "magic"), 2, "--engine")
    _error_line(invoke("run", v, "--audio", a, "-o", tmp_path / "o.mp4", "--length-policy", "stretch"), 2, "length-policy")
    _error_line(invoke("run", v, "--audio", a, "-o", tmp_path / "o.mp4", "--crf", "99"), 2, "--crf")
    _error_line(invoke("run", v, "--audio", a, "-o", tmp_path / "o.mp4", "--face", "left"), 2, "--face")


def test_missing_style(synth, tmp_path):
    missing = tmp_path / "speaker.lipstyle"
    _error_line(invoke("run", synth.video(), "--audio", synth.wav(), "-o", tmp_path / "o.mp4", "--style", missing),
                2, missing, "no such file")


def test_no_face_anywhere(synth, tmp_path):
    out = tmp_path / "o.mp4"
    _error_line(invoke("run", synth.blank(), "--audio", synth.wav(), "-o", out), 3, "no face")
    assert list(tmp_path.iterdir()) == []


def _streams(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0",
                        str(path)], capture_output=True, text=True, check=True)
    return sorted(r.stdout.split())


def test_run_end_to_end(synth, tmp_path):
    """A real dub of a tiny face video: output beside the input by default, same fps and size,
    the new audio as AAC, length from the (longer) audio by ping-pong, JSON summary, preview,
    report, and nothing else left in the folder."""
    video = tmp_path / "my clip é.mp4"
    video.write_bytes(synth.face_video().read_bytes())
    audio = synth.wav(seconds=1.5)
    r = invoke("run", video, "--audio", audio, "--json", "--preview", tmp_path / "sheet.png",
               "--report", tmp_path / "report.json", "--engine", "reference")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    out = tmp_path / "my clip é.dubbed.mp4"
    assert summary["output"] == str(out) and out.exists()
    assert summary["engines"] == {"motion": "stage1", "render": "reference"}
    assert summary["frames"] == 38 and summary["faces_found"] > 0.9
    assert any("no speech" in w for w in summary["warnings"])  # a pure tone is not speech
    src, dub = probe(video), probe(out)
    assert (dub.width, dub.height, dub.fps) == (src.width, src.height, src.fps)
    assert dub.n_frames == 38 and dub.duration == pytest.approx(1.52, abs=0.05)
    assert _streams(out) == ["aac,audio", "h264,video"]
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["frames"] == 38 and rep["quality"]["frames"] == 38 and rep["quality"]["psnr_upper_db"] > 35
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [video.name, out.name, "sheet.png", "report.json"])


def test_default_engines_are_stage1_motion_and_reference_render(synth, tmp_path):
    """No --engine: auto picks the shipped Stage 1 motion model (no neural weights here) and says so."""
    video = tmp_path / "face.mp4"
    video.write_bytes(synth.face_video().read_bytes())
    tts = shutil.which("espeak-ng")
    if tts is None:
        pytest.skip("needs espeak-ng")
    speech = tmp_path / "speech.wav"
    subprocess.run([tts, "-w", str(speech), "open wide"], check=True, capture_output=True)
    r = invoke("run", video, "--audio", speech, "-o", tmp_path / "out.mp4")
    assert r.exit_code == 0, r.output
    assert "motion: stage1, render: reference" in r.stderr + r.stdout
    r = invoke("run", video, "--audio", speech, "-o", tmp_path / "out2.mp4", "--json")
    summary = json.loads(r.stdout)
    assert summary["engines"] == {"motion": "stage1", "render": "reference"}
    assert summary["speech_share"] > 0.3


def test_interrupt_leaves_no_litter(synth, tmp_path, monkeypatch):
    from lipdub.media import video as V

    calls = {"n": 0}
    original = V.VideoWriter.write

    def write_then_interrupt(self, frame):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        original(self, frame)

    monkeypatch.setattr(V.VideoWriter, "write", write_then_interrupt)
    video = tmp_path / "in.mp4"
    video.write_bytes(synth.face_video().read_bytes())
    before = video.read_bytes()
    r = invoke("run", video, "--audio", synth.wav(), "--engine", "reference")
    assert r.exit_code == 130
    assert "interrupted" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"] and video.read_bytes() == before


def test_doctor():
    r = invoke("doctor")
    assert r.exit_code == 0, r.output
    for word in ("ffmpeg", "torch", "landmarks", "phones", "motion", "render"):
        assert word in r.stdout


def test_prepare_style_then_dub_with_the_pack(synth, tmp_path):
    video = tmp_path / "speaker.mp4"
    video.write_bytes(synth.face_video().read_bytes())
    r = invoke("prepare-style", video, "--json")
    assert r.exit_code == 0, r.output
    pack = tmp_path / "speaker.lipstyle"
    assert json.loads(r.stdout)["output"] == str(pack) and pack.exists()
    _error_line(invoke("prepare-style", video), 2, pack, "already exists")
    _error_line(invoke("prepare-style", video, "-o", tmp_path / "x.zip"), 2, ".lipstyle")
    out = tmp_path / "short.mp4"
    r = invoke("run", video, "--audio", synth.wav(seconds=0.6), "--style", pack, "-o", out,
               "--length-policy", "trim", "--engine", "reference", "--quiet")
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and r.stderr == ""  # --quiet
    assert probe(out).n_frames == 15  # trim: the video is cut to the 0.6 s of audio
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.mp4", "speaker.lipstyle", "speaker.mp4"]


def test_neural_engine_without_weights(synth, tmp_path):
    from lipdub.motion import neural as mn
    from lipdub.render import neural as rn

    if mn.available() and rn.available():
        pytest.skip("neural weights are installed")
    out = tmp_path / "o.mp4"
    _error_line(invoke("run", synth.face_video(), "--audio", synth.wav(), "-o", out, "--engine", "neural"),
                5, "weights not found", "searched")
    assert not out.exists()


def test_sampling_options_reach_the_neural_renderer(synth, tmp_path, monkeypatch):
    from lipdub import pipeline
    from lipdub.render import exemplar, neural

    seen = {}

    class Recorder(exemplar.ExemplarRenderer):  # draws like the reference engine, records its options
        def __init__(self, pack, track, motion, schedule, **kw):
            seen.update(kw)
            super().__init__(pack, track, motion, schedule)

    monkeypatch.setattr(pipeline, "resolve_engines", lambda engine: {"motion": "stage1", "render": "neural"})
    monkeypatch.setattr(neural, "NeuralRenderer", Recorder)
    out = tmp_path / "o.mp4"
    r = invoke("run", synth.face_video(), "--audio", synth.wav(), "-o", out, "--engine", "neural",
               "--steps", 20, "--sampler", "ddim", "--seed", 3, "--quiet")
    assert r.exit_code == 0, r.output
    assert seen == {"device": "cpu", "seed": 3, "steps": 20, "sampler": "ddim"}
    for bad, word in (("--sampler", "euler"), ("--steps", 0)):
        _error_line(invoke("run", synth.face_video(), "--audio", synth.wav(), "-o", tmp_path / "b.mp4", bad, word),
                    2, bad)
    assert not (tmp_path / "b.mp4").exists()


def test_batch_goes_on_past_failures_and_reports(tmp_path, synth):
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("video,audio,output\nmissing.mp4,a.wav,o1.mp4\n"
                        f"{synth.wav()},{synth.wav()},o2.mp4\n")
    r = invoke("batch", manifest, "--quiet")
    assert r.exit_code == 6, r.output
    assert "0 ok, 0 skipped, 2 failed" in r.stdout
    rep = json.loads((tmp_path / "jobs.report.json").read_text())
    assert [it["exit_code"] for it in rep["items"]] == [2, 2] and rep["complete"]
    assert not (tmp_path / "o1.mp4").exists() and not (tmp_path / "o2.mp4").exists()


def test_batch_bad_manifest(tmp_path):
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("video,output\nx.mp4,y.mp4\n")
    r = invoke("batch", manifest)
    assert r.exit_code == 2 and "error: " in r.stderr


def test_eval_json(synth):
    r = invoke("eval", synth.face_video(), "--source", synth.face_video(), "--json", "--quiet")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["faces_found"] > 0.9 and res["psnr_upper_db"] == 100.0 and res["sharpness_ratio"] == 1.0


@pytest.mark.parametrize("args,line", [
    (["run", "v.mp4", "--audio", "a.wav", "--crf", "abc"], "error: --crf 'abc': not an integer"),
    (["run", "v.mp4"], "error: missing option --audio"),
    (["frobnicate"], "error: unknown command 'frobnicate'"),
    (["run", "v.mp4", "--audio", "a.wav", "--bogus"], "error: no such option --bogus"),
    (["prepare-style", "v.mp4", "--fit-steps", "0"], "error: --fit-steps '0': must be"),
])
def test_parser_errors_are_one_line(args, line):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(line), r.stderr
    assert "─" not in r.stderr and "╭" not in r.stderr and r.stdout == ""
