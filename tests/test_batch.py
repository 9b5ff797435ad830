"""Batch dubbing: manifests, going on past failures, resume, reports, process split.

A fake ``dub`` (a real small mp4 copied to the output, or an error) keeps these fast; one test runs
the real pipeline on a generated face video."""
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from lipdub import batch
from lipdub.errors import InputError, NoFaceError
from tests.conftest import ffmpeg


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """0.5 s 64x64 mp4 with audio, fast-start (moov first), like the pipeline writes."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=25:duration=0.5", "-f", "lavfi", "-i",
           "sine=duration=0.5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", "-movflags", "+faststart", str(path))
    return path


@pytest.fixture
def fake(monkeypatch, clip):
    """Replace lipdub.batch.dub: copies ``clip`` to the output; videos named bad* raise InputError,
    noface* NoFaceError, boom* RuntimeError. Records every call."""
    calls = []

    def fake_dub(video, audio, out, progress=None, overwrite=False, **options):
        calls.append({"video": Path(video), "audio": Path(audio), "out": Path(out), "overwrite": overwrite,
                      "options": options})
        name = Path(video).name
        if name.startswith("bad"):
            raise InputError(f"{video}: not a readable video")
        if name.startswith("noface"):
            raise NoFaceError(f"{video}: no face found in any frame")
        if name.startswith("boom"):
            raise RuntimeError("something broke\nsecond line")
        if Path(out).exists() and not overwrite:
            raise InputError(f"{out}: output already exists")
        if progress:
            progress("render", 1, 1)
        shutil.copy(clip, out)
        return {"output": str(out), "frames": 12}

    monkeypatch.setattr(batch, "dub", fake_dub)
    return calls


def _project(tmp_path, names=("a", "b", "c")) -> Path:
    """tmp/in/<name>.mp4 + .wav (contents irrelevant to the fake) and tmp/out/."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for n in names:
        (tmp_path / "in" / f"{n}.mp4").write_bytes(b"x")
        (tmp_path / "in" / f"{n}.wav").write_bytes(b"x")
    return tmp_path


def _csv(path: Path, rows: list[str], header: str = "video,audio,output") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_csv_relative_paths_options_and_failure(tmp_path, fake, clip):
    root = _project(tmp_path, ("a", "bad", "c", "boom"))
    man = _csv(root / "jobs.csv", ["in/a.mp4,in/a.wav,out/a.mp4,18,pad-silence",
                                   "in/bad.mp4,in/bad.wav,out/bad.mp4,,",
                                   "in/c.mp4,in/c.wav,out/c.mp4,,",
                                   "in/boom.mp4,in/boom.wav,out/boom.mp4,,"],
               header="video,audio,output,crf,length-policy")
    seen = []
    rep = batch.run_batch(man, progress=lambda s, d, t: seen.append((s, d, t)))

    assert [c["video"] for c in fake] == [root / "in" / f"{n}.mp4" for n in ("a", "bad", "c", "boom")]
    assert fake[0]["options"] == {"crf": 18, "length_policy": "pad-silence"}
    assert fake[0]["out"] == root / "out" / "a.mp4" and fake[2]["options"] == {}
    assert [i["status"] for i in rep["items"]] == ["ok", "failed", "ok", "failed"]
    assert rep["counts"] == {"ok": 2, "skipped": 0, "failed": 2} and rep["exit_code"] == batch.EXIT_SOME_FAILED == 6
    bad, boom = rep["items"][1], rep["items"][3]
    assert bad["exit_code"] == 2 and "bad.mp4: not a readable video" in bad["error"] and bad["line"] == 3
    assert boom["exit_code"] == 1 and boom["error"] == "internal error: RuntimeError: something broke"
    assert rep["items"][0]["summary"] == {"output": str(root / "out" / "a.mp4"), "frames": 12}
    assert rep["items"][0]["seconds"] >= 0 and rep["complete"] is True
    assert (root / "out" / "c.mp4").read_bytes() == clip.read_bytes()
    # the report is on disk (default name beside the manifest), the same as returned, no temp litter
    written = json.loads((root / "jobs.report.json").read_text())
    assert written == json.loads(json.dumps(rep)) and rep["report"] == str(root / "jobs.report.json")
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert ("batch", 0, 4) in seen and ("batch", 4, 4) in seen and ("render", 1, 1) in seen


def test_jsonl_all_ok_and_explicit_report(tmp_path, fake):
    root = _project(tmp_path)
    lines = [json.dumps({"video": f"in/{n}.mp4", "audio": f"in/{n}.wav", "output": f"out/{n}.mp4",
                         "seed": 3, "engine": "reference", "style": None}) for n in ("a", "b", "c")]
    (root / "jobs.jsonl").write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n")
    rep = batch.run_batch(root / "jobs.jsonl", report=root / "out" / "r.json")
    assert rep["exit_code"] == 0 and rep["counts"]["ok"] == 3
    assert [i["line"] for i in rep["items"]] == [1, 3, 4]
    assert fake[1]["options"] == {"seed": 3, "engine": "reference"}  # null means the default
    assert fake[2]["audio"] == root / "in" / "c.wav"
    assert json.loads((root / "out" / "r.json").read_text())["counts"]["ok"] == 3


def test_resume_skips_complete_and_refuses_changed(tmp_path, fake):
    root = _project(tmp_path)
    man = _csv(root / "jobs.csv", [f"in/{n}.mp4,in/{n}.wav,out/{n}.mp4" for n in ("a", "b", "c")])
    assert batch.run_batch(man)["counts"]["ok"] == 3
    b = root / "out" / "b.mp4"
    b.write_bytes(b.read_bytes()[: b.stat().st_size // 2])  # cut short, header (fast start) intact
    assert not batch.is_complete(b)
    fake.clear()
    rep = batch.run_batch(man)
    # changed since lipdub wrote it: not lipdub's file any more, so it is refused, not replaced
    assert [i["status"] for i in rep["items"]] == ["skipped", "failed", "skipped"]
    assert [c["video"].name for c in fake] == ["b.mp4"] and fake[0]["overwrite"] is False
    assert "already exists" in rep["items"][1]["error"] and not batch.is_complete(b)
    fake.clear()
    rep = batch.run_batch(man, overwrite=True)
    assert [i["status"] for i in rep["items"]] == ["ok"] * 3 and len(fake) == 3


def test_is_complete(tmp_path, clip):
    assert batch.is_complete(clip)
    assert not batch.is_complete(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    assert not batch.is_complete(tmp_path / "junk.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert not batch.is_complete(tmp_path / "empty.mp4")
    head = tmp_path / "head.mp4"
    head.write_bytes(clip.read_bytes()[:-200])
    assert not batch.is_complete(head)


@pytest.mark.parametrize("name, text, where, words", [
    ("m.csv", "video,audio\nin/a.mp4,in/a.wav\n", ":1:", "output"),
    ("m.csv", "video,audio,output,colour\na,b,c.mp4,red\n", ":1:", "colour"),
    ("m.csv", "video,audio,output,crf\na,b,c.mp4,18\na,b,d.mp4,high\n", ":3:", "crf"),
    ("m.csv", "video,audio,output\na,b,c.mp4\na,b,\n", ":3:", "missing output"),
    ("m.csv", "video,audio,output\na,b,c.mp4,extra\n", ":2:", "more cells"),
    ("m.csv", "video,audio,output\na,b,c.mp4\nd,e,c.mp4\n", ":3:", "line 2"),
    ("m.jsonl", '{"video": "a", "audio": "b", "output": "c.mp4"}\n\n{"video": "a", "audio"\n', ":3:", "JSON"),
    ("m.jsonl", '["a", "b", "c"]\n', ":1:", "object"),
    ("m.jsonl", '{"video": "a", "audio": "b", "output": "c.mp4", "crf": 1.5}\n', ":1:", "crf"),
    ("m.txt", "video,audio,output\n", "m.txt", ".csv or .jsonl"),
    ("m.csv", "", "m.csv", "empty"),
    ("m.csv", "video,audio,output\n", "m.csv", "no items"),
])
def test_bad_manifest_names_file_and_line(tmp_path, fake, name, text, where, words):
    man = tmp_path / name
    man.write_text(text)
    with pytest.raises(InputError) as err:
        batch.run_batch(man)
    msg = str(err.value)
    assert str(man) in msg and where in msg and words in msg and "\n" not in msg
    assert err.value.exit_code == batch.EXIT_BAD_MANIFEST == 2
    assert fake == [] and not list(tmp_path.glob("*.json"))


def test_missing_manifest(tmp_path):
    with pytest.raises(InputError, match="nope.csv: no such file"):
        batch.run_batch(tmp_path / "nope.csv")


def test_process_split(tmp_path, fake):
    names = ("a", "b", "c", "d", "e")
    root = _project(tmp_path, names)
    man = _csv(root / "jobs.csv", [f"in/{n}.mp4,in/{n}.wav,out/{n}.mp4" for n in names])
    r0 = batch.run_batch(man, process_index=0, num_processes=2)
    r1 = batch.run_batch(man, report=root / "rep.json", process_index=1, num_processes=2)
    assert [i["index"] for i in r0["items"]] == [0, 2, 4] and [i["index"] for i in r1["items"]] == [1, 3]
    assert (root / "jobs.report.rank0.json").is_file() and (root / "rep.rank1.json").is_file()
    assert sorted(c["video"].name for c in fake) == [f"{n}.mp4" for n in names]  # each item once
    with pytest.raises(InputError):
        batch.run_batch(man, process_index=2, num_processes=2)


def test_detect_processes(monkeypatch):
    for k in [k for k in __import__("os").environ if k in ("WORLD_SIZE", "RANK") or k.startswith("ACCELERATE_")]:
        monkeypatch.delenv(k)
    assert batch.detect_processes() == (0, 1)
    fake_acc = types.ModuleType("accelerate")
    fake_acc.PartialState = lambda: types.SimpleNamespace(process_index=1, num_processes=3)
    monkeypatch.setitem(sys.modules, "accelerate", fake_acc)
    assert batch.detect_processes() == (0, 1)  # not launched: accelerate is not asked
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert batch.detect_processes() == (1, 3)
    monkeypatch.setitem(sys.modules, "accelerate", None)  # not installed
    assert batch.detect_processes() == (0, 1)


def test_interrupt_keeps_a_valid_report(tmp_path, fake, monkeypatch):
    root = _project(tmp_path)
    man = _csv(root / "jobs.csv", [f"in/{n}.mp4,in/{n}.wav,out/{n}.mp4" for n in ("a", "b", "c")])
    real = batch.dub

    def stop_at_b(video, *a, **k):
        if Path(video).name == "b.mp4":
            raise KeyboardInterrupt
        return real(video, *a, **k)

    monkeypatch.setattr(batch, "dub", stop_at_b)
    with pytest.raises(KeyboardInterrupt):
        batch.run_batch(man)
    rep = json.loads((root / "jobs.report.json").read_text())
    assert rep["complete"] is False and [i["status"] for i in rep["items"]] == ["ok"]
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".")]


def test_real_pipeline_item(tmp_path, synth):
    """One real item through the real pipeline (reference engine) on a generated face video."""
    tts = shutil.which("espeak-ng")
    if tts is None:
        pytest.skip("espeak-ng not installed")
    folder = tmp_path / "my clips"
    folder.mkdir()
    shutil.copy(synth.face_video(seconds=1.0), folder / "face.mp4")
    subprocess.run([tts, "-w", str(folder / "speech.wav"), "hello there"], check=True, capture_output=True)
    man = _csv(folder / "jobs.csv", ["face.mp4,speech.wav,dubbed.mp4,reference", "face.mp4,missing.wav,x.mp4,"],
               header="video,audio,output,engine")
    rep = batch.run_batch(man)
    ok, bad = rep["items"]
    assert ok["status"] == "ok" and ok["summary"]["engines"] == {"motion": "stage1", "render": "reference"}
    assert ok["summary"]["frames"] > 0 and batch.is_complete(folder / "dubbed.mp4")
    assert bad["status"] == "failed" and "missing.wav" in bad["error"] and bad["exit_code"] == 2
    assert rep["exit_code"] == 6 and not (folder / "x.mp4").exists()
    again = batch.run_batch(man)
    assert [i["status"] for i in again["items"]] == ["skipped", "failed"]


def test_existing_files_lipdub_did_not_write_are_refused(tmp_path, fake, clip):
    """A text file, or a complete video someone else put there, is never taken for finished or
    unfinished work: its row fails with a one-line reason and the file is untouched."""
    root = _project(tmp_path, ("a", "b", "c"))
    (root / "out" / "a.mp4").write_text("precious notes")
    shutil.copy(clip, root / "out" / "b.mp4")
    man = _csv(root / "jobs.csv", [f"in/{n}.mp4,in/{n}.wav,out/{n}.mp4" for n in ("a", "b", "c")])
    rep = batch.run_batch(man)
    assert [i["status"] for i in rep["items"]] == ["failed", "failed", "ok"] and rep["exit_code"] == 6
    assert "already exists" in rep["items"][0]["error"] and rep["items"][0]["exit_code"] == 2
    assert (root / "out" / "a.mp4").read_text() == "precious notes"
    assert [c["overwrite"] for c in fake] == [False, False, False]
    # the rerun skips what it wrote itself, and still refuses the others
    fake.clear()
    rep = batch.run_batch(man)
    assert [i["status"] for i in rep["items"]] == ["failed", "failed", "skipped"]
    # a file replaced after lipdub wrote it is not lipdub's any more
    (root / "out" / "c.mp4").write_text("replaced by hand")
    rep = batch.run_batch(man)
    assert rep["items"][2]["status"] == "failed" and (root / "out" / "c.mp4").read_text() == "replaced by hand"
    assert batch.run_batch(man, overwrite=True)["counts"]["ok"] == 3


def test_own_output_that_does_not_decode_is_redone(tmp_path, fake, monkeypatch):
    root = _project(tmp_path, ("a",))
    man = _csv(root / "jobs.csv", ["in/a.mp4,in/a.wav,out/a.mp4"])
    assert batch.run_batch(man)["counts"]["ok"] == 1
    monkeypatch.setattr(batch, "is_complete", lambda path: False)  # recorded and unchanged, yet broken
    fake.clear()
    assert [i["status"] for i in batch.run_batch(man)["items"]] == ["ok"] and fake[0]["overwrite"] is True
