"""A long dub is resumable: an interrupted run keeps its analysis and finished video segments in a
hidden folder beside the output, and the same command run again renders only the rest, giving
the same frames as an uninterrupted run. Tiny media made at test time; segments of 10 frames."""
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lipdub.render
import lipdub.style
from lipdub import errors as pipeline_errors, pipeline, resume
from lipdub.cli import app
from lipdub.media.probe import probe
from tests.conftest import decode_all

FRAMES = 50  # 2 s at 25 fps: five segments of 10 frames
MAKE_RENDERER = lipdub.render.make_renderer


@pytest.fixture
def clip(synth, tmp_path, monkeypatch):
    """(video, audio, output) in a folder of their own; segments of 0.4 s (10 frames)."""
    monkeypatch.setattr(resume, "SEGMENT_S", 0.4)
    folder = tmp_path / "work"
    folder.mkdir()
    video, audio = folder / "in.mp4", folder / "speech.wav"
    video.write_bytes(synth.face_video(2.0, audio=False).read_bytes())
    audio.write_bytes(synth.wav(2.0).read_bytes())
    return video, audio, folder / "out.mp4"


class Counting:
    """Wraps make_renderer: counts the frames rendered; raises KeyboardInterrupt at ``stop``."""

    def __init__(self, monkeypatch, stop=None):
        self.frames, self.stop = [], stop

        def make(*a, **kw):
            r = MAKE_RENDERER(*a, **kw)
            render = r.render

            def counted(frame, out_t, src_t):
                if out_t == self.stop:
                    raise KeyboardInterrupt
                self.frames.append(out_t)
                return render(frame, out_t, src_t)

            r.render = counted
            return r

        monkeypatch.setattr(lipdub.render, "make_renderer", make)


def run(video, audio, out, **kw):
    return pipeline.dub(video, audio, out, engine="reference", resume=True, **kw)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_interrupted_run_resumes_with_the_same_frames(clip, monkeypatch):
    video, audio, out = clip
    whole = out.with_name("whole.mp4")
    s = run(video, audio, whole, preview=out.with_name("whole.png"))
    assert s["resumed"] is False and s["frames"] == FRAMES
    assert names(out.parent) == ["in.mp4", "speech.wav", "whole.mp4", "whole.png"]  # the folder is gone

    Counting(monkeypatch, stop=25)  # in the third segment
    with pytest.raises(KeyboardInterrupt) as err:
        run(video, audio, out, preview=out.with_name("out.png"))
    kept = resume.partial_dir(out)
    assert err.value.resume_dir == str(kept)
    assert not out.exists() and not out.with_name("out.png").exists()
    assert names(kept) == ["analysis.npz", "audio.wav", "key",
                           "seg_00000.mp4", "seg_00000.npz", "seg_00001.mp4", "seg_00001.npz"]

    count = Counting(monkeypatch)
    monkeypatch.setattr(lipdub.style, "analyse_video", lambda *a, **k: pytest.fail("the analysis ran again"))
    s = run(video, audio, out, preview=out.with_name("out.png"))
    assert s["resumed"] is True
    assert count.frames == list(range(20, FRAMES))  # only the unfinished segments were rendered
    assert not kept.exists()
    info = probe(out)
    assert info.n_frames == FRAMES and abs(info.duration - FRAMES / 25) < 0.05
    assert np.array_equal(decode_all(out), decode_all(whole))
    assert out.with_name("out.png").read_bytes() == out.with_name("whole.png").read_bytes()


def test_stale_folder_is_not_reused(clip, monkeypatch):
    video, audio, out = clip
    Counting(monkeypatch, stop=25)
    with pytest.raises(KeyboardInterrupt):
        run(video, audio, out)
    assert resume.partial_dir(out).is_dir()
    count = Counting(monkeypatch)
    s = run(video, audio, out, crf=20)  # another option: the kept work does not apply
    assert s["resumed"] is False and count.frames == list(range(FRAMES))
    assert probe(out).n_frames == FRAMES and not resume.partial_dir(out).exists()


def test_interruption_without_finished_work_leaves_nothing(clip, monkeypatch):
    video, audio, out = clip

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(lipdub.style, "analyse_video", interrupted)
    for long_run in (True, None):  # resumable, or short (not resumable)
        with pytest.raises(KeyboardInterrupt) as err:
            pipeline.dub(video, audio, out, engine="reference", resume=long_run)
        assert getattr(err.value, "resume_dir", None) is None
        assert names(out.parent) == ["in.mp4", "speech.wav"]


def test_cli_says_how_to_resume(clip, monkeypatch):
    video, audio, out = clip
    monkeypatch.setattr(resume, "RESUME_AFTER_S", 1.0)  # this 2 s clip counts as long
    Counting(monkeypatch, stop=15)
    r = CliRunner().invoke(app, ["run", str(video), "--audio", str(audio), "-o", str(out), "--engine", "reference"])
    assert r.exit_code == 130
    assert "run the same command again to resume" in r.stderr and str(resume.partial_dir(out)) in r.stderr
    assert names(out.parent) == [resume.partial_dir(out).name, "in.mp4", "speech.wav"]
    monkeypatch.undo()
    monkeypatch.setattr(resume, "SEGMENT_S", 0.4)
    monkeypatch.setattr(resume, "RESUME_AFTER_S", 1.0)
    r = CliRunner().invoke(app, ["run", str(video), "--audio", str(audio), "-o", str(out), "--engine", "reference",
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert '"resumed": true' in r.stdout
    assert names(out.parent) == ["in.mp4", "out.mp4", "speech.wav"]


@pytest.mark.parametrize("failure, code, says", [
    (lambda: pipeline_errors.MediaError("out.mp4: ffmpeg could not mux the audio", "No space left on device"), 4,
     "could not mux the audio: No space left on device"),
    (lambda: OSError(28, "No space left on device", "out.mp4"), 1, "no space left on device (the disk is full)")])
def test_failed_join_keeps_the_finished_work(clip, monkeypatch, failure, code, says):
    """The disk fills while the segments are joined: the error says so in one line and where the
    rendered segments are kept; the same command then only joins them."""
    import importlib

    muxing = importlib.import_module("lipdub.media.mux")  # the module, not the function lipdub.media exports
    video, audio, out = clip
    monkeypatch.setattr(resume, "RESUME_AFTER_S", 1.0)
    join = muxing.mux

    def full_disk(*a, **k):
        raise failure()

    monkeypatch.setattr(muxing, "mux", full_disk)
    args = ["run", str(video), "--audio", str(audio), "-o", str(out), "--engine", "reference"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == code
    line = r.stderr.strip().splitlines()[-1]
    assert says in line and f"kept in {resume.partial_dir(out)}: run the same command again to resume" in line
    assert names(out.parent) == [resume.partial_dir(out).name, "in.mp4", "speech.wav"]
    monkeypatch.setattr(muxing, "mux", join)
    count = Counting(monkeypatch)
    r = CliRunner().invoke(app, args + ["--json"])
    assert r.exit_code == 0, r.output
    assert '"resumed": true' in r.stdout and count.frames == []
    assert names(out.parent) == ["in.mp4", "out.mp4", "speech.wav"] and probe(out).n_frames == FRAMES
