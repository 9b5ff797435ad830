"""`lipdub run --lips-from VIDEO` (performance-driven dubbing) through the command line on
generated media, its bad inputs, the batch column, and a real clip from ../shared/data."""
import json

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, ffmpeg
from tests.test_cli import _error_line, invoke


def _actor(synth, tmp_path, name: str, seconds: float, rate: int = 25):
    """The generated face video re-timed: ``seconds`` long at ``rate`` fps, with its audio."""
    path = tmp_path / name
    ffmpeg("-stream_loop", "-1", "-i", str(synth.face_video(1.0)), "-t", str(seconds), "-r", str(rate),
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def test_lips_from_another_frame_rate_and_length(synth, tmp_path):
    """An actor video at 50 fps, as long as the audio: every output frame is driven from it; one
    shorter than the audio drives its own span and the audio the rest, with a warning."""
    video, audio = synth.face_video(1.0), synth.wav(seconds=1.5)
    actor = _actor(synth, tmp_path, "actor50.mp4", 1.5, rate=50)
    out = tmp_path / "o.mp4"
    r = invoke("run", video, "--audio", audio, "--lips-from", actor, "-o", out, "--json", "--quiet",
               "--engine", "reference")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["engines"]["motion"] == "video" and s["frames"] == 38
    lf = s["lips_from"]
    assert lf["path"] == str(actor) and lf["fps"] == "50" and lf["face_frames"] == lf["frames"] == 75
    assert lf["frames_from_video"] == 38 and lf["frames_from_audio"] == 0 and lf["video_ranges"] == [[0, 38]]
    assert not any("lips-from" in w for w in s["warnings"])

    short = _actor(synth, tmp_path, "actor_short.mp4", 0.6)
    out2 = tmp_path / "o2.mp4"
    r = invoke("run", video, "--audio", audio, "--lips-from", short, "-o", out2, "--json", "--engine", "reference")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    lf = s["lips_from"]
    assert lf["video_ranges"] == [[0, 15]] and lf["frames_from_audio"] == 38 - 15
    assert any("shorter than the audio" in w for w in s["warnings"])
    assert "warning: " in r.stderr and "shorter than the audio" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["actor50.mp4", "actor_short.mp4", "o.mp4", "o2.mp4"])


def test_lips_from_bad_inputs(synth, tmp_path):
    v, a, out = synth.face_video(1.0), synth.wav(), tmp_path / "o.mp4"
    missing = tmp_path / "actor.mp4"
    _error_line(invoke("run", v, "--audio", a, "--lips-from", missing, "-o", out), 2, missing, "no such file")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    _error_line(invoke("run", v, "--audio", a, "--lips-from", text, "-o", out), 2, text)
    _error_line(invoke("run", v, "--audio", a, "--lips-from", synth.face_png(), "-o", out), 2, "still image")
    _error_line(invoke("run", v, "--audio", a, "--lips-from", synth.wav(), "-o", out), 2, "no video stream")
    actor = tmp_path / "actor_in.mp4"
    actor.write_bytes(synth.face_video(1.0).read_bytes())
    _error_line(invoke("run", v, "--audio", a, "--lips-from", actor, "-o", actor, "--overwrite"), 2, "same file")
    _error_line(invoke("run", v, "--audio", a, "--lips-from", synth.blank(), "-o", out, "--engine", "reference"),
                3, "no face", "--lips-from")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actor_in.mp4", "notes.mp4"]


def test_batch_lips_from_column(tmp_path, monkeypatch):
    from lipdub import batch

    seen = []
    monkeypatch.setattr(batch, "dub", lambda video, audio, out, **kw: seen.append(kw) or {"frames": 1})
    man = tmp_path / "jobs.csv"
    man.write_text("video,audio,output,lips_from\na.mp4,a.wav,o1.mp4,actors/a.mp4\nb.mp4,b.wav,o2.mp4,\n")
    rep = batch.run_batch(man)
    assert [it["status"] for it in rep["items"]] == ["ok", "ok"]
    assert seen[0]["lips_from"] == tmp_path / "actors" / "a.mp4" and "lips_from" not in seen[1]


CLIP = SHARED_DATA / "clips" / "hdtf_katiehill.mp4"  # a frontal face (vox_00002, in profile, keeps some of its opening)


@pytest.mark.skipif(not CLIP.exists(), reason="../shared/data is absent")
def test_closed_actor_gives_closed_rendered_lips(tmp_path):
    """A real clip driven by an actor whose mouth stays shut (the clip's own most-closed frame,
    held): the dubbed mouth stays shut, as the landmarker sees it, while the source's opens."""
    from lipdub.face.landmarks import LIPS, mouth_opening
    from lipdub.media.probe import probe
    from lipdub.pipeline import dub
    from lipdub.style import analyse_video

    video, audio = tmp_path / "a.mp4", tmp_path / "b.wav"
    ffmpeg("-t", "3", "-i", str(CLIP), "-c:v", "libx264", "-crf", "14", "-preset", "veryfast", "-c:a", "aac", str(video))
    ffmpeg("-ss", "2", "-t", "3", "-i", str(CLIP), "-vn", str(audio))

    def openings(path):
        track, _ = analyse_video(probe(path), None, want_pack=False)
        lips = np.stack([np.asarray(track.to_canon[t][:, :2] @ track.points[t, LIPS].T).T + track.to_canon[t][:, 2]
                         for t in range(len(track))])
        return mouth_opening(lips)

    src = openings(video)
    closed = int(np.argmin(src))
    actor = tmp_path / "actor.mp4"
    ffmpeg("-i", str(video), "-vf", f"select=eq(n\\,{closed}),loop=loop=99:size=1,setpts=N/25/TB", "-frames:v", "75",
           "-r", "25", "-c:v", "libx264", "-crf", "14", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(actor))
    out = tmp_path / "out.mp4"
    s = dub(video, audio, out, engine="reference", lips_from=actor)
    assert s["lips_from"]["frames_from_video"] == s["frames"] == 75
    dubbed = openings(out)
    # the source opens well past its closed shape; the dub stays within a hair of it
    assert np.percentile(src, 90) - src.min() > 0.04
    assert np.percentile(dubbed, 90) - src.min() < 0.3 * (np.percentile(src, 90) - src.min())


def test_help_and_a_photo_driven_by_an_actor(synth, tmp_path):
    """A photo has no motion of its own: it borrows the actor's range and follows the actor."""
    r = invoke("run", "--help")
    assert r.exit_code == 0 and "--lips-from" in r.stdout
    out = tmp_path / "photo.mp4"
    r = invoke("run", synth.face_png(), "--audio", synth.wav(seconds=1.0), "--lips-from", synth.face_video(1.0),
               "-o", out, "--json", "--quiet", "--engine", "reference")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["frames"] == 25 and s["lips_from"]["frames_from_video"] == 25 and out.exists()
