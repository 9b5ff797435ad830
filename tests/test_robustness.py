"""Issue 4's bad-input list, the cases not covered elsewhere, end to end through the CLI on media
made at test time: each either fails with one error line naming the file, a non-zero exit, no
output and no hidden temporary file, the input untouched; or succeeds (with a warning where the
issue says so)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lipdub.cli import app
from lipdub.media.probe import probe
from tests.conftest import decode_all, ffmpeg

runner = CliRunner()
X264 = ("-c:v", "libx264", "-preset", "ultrafast")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def dub(video, audio, out, *opts):
    """A reference-engine dub through the CLI; returns (result, JSON summary or None)."""
    r = invoke("run", video, "--audio", audio, "-o", out, "--engine", "reference", "--json", *opts)
    return r, (json.loads(r.stdout) if r.exit_code == 0 else None)


def error_line(result, code, *words):
    """Exit ``code``; the last stderr line is the only error line and names every word."""
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    for w in words:
        assert str(w).lower() in errors[0].lower(), errors[0]
    assert result.stdout == ""


def only(folder: Path, *names):
    """``folder`` holds exactly ``names`` (no partial output, no hidden temporary file or folder)."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-9))


def pix_fmt(path) -> str:
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=pix_fmt",
                        "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return r.stdout.strip()


def audio_seconds(path) -> float:
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration",
                        "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return float(r.stdout.strip())


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """About 2 s of synthesised speech (espeak-ng), so the mouth really moves."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "170", "-w", str(path), "Hello there, how are you today?"],
                   check=True, capture_output=True)
    return path


def from_face(synth, tmp_path, name, vf, *extra, seconds=2.0) -> Path:
    """A new clip made from the astronaut face video through the filter graph ``vf``."""
    path = tmp_path / name
    ffmpeg("-i", str(synth.face_video(seconds, audio=False)), "-filter_complex", vf, *X264,
           *(extra or ("-pix_fmt", "yuv420p")), str(path))
    return path


# 1. several faces -----------------------------------------------------------------------------
def test_several_faces(synth, tmp_path, speech):
    """Two faces side by side, the left one larger: the default dubs one of them; --face 0 and
    --face 1 each change the pixels around that face's mouth only; --face 5 is a bad option."""
    video = from_face(synth, tmp_path, "two.mp4",
                      "[0:v]crop=110:110:15:0,scale=160:160,split[a][b];"
                      "[b]scale=112:112,pad=160:160:24:24:color=gray[s];[a][s]hstack=2")
    src = decode_all(video)
    assert src.shape[1:3] == (160, 320)
    mouths = {0: (slice(80, 125), slice(50, 115)), 1: (slice(82, 106), slice(222, 256))}  # rows, cols

    def changed(out):
        """Per mouth: does some frame differ by more than coding noise (about 12 levels here)?"""
        dubbed = decode_all(out)
        assert dubbed.shape == src.shape
        peak = {k: np.percentile(np.abs(src[:, r, c].astype(int) - dubbed[:, r, c]).max(-1).reshape(len(src), -1),
                                 99, axis=1).max() for k, (r, c) in mouths.items()}
        return {k: v > 25 for k, v in peak.items()}

    outs = {}
    for face in ("auto", "0", "1"):
        outs[face] = tmp_path / f"out_{face}.mp4"
        r, s = dub(video, speech, outs[face], "--face", face, "--length-policy", "trim")
        assert r.exit_code == 0, r.output
        assert s["faces_found"] > 0.9
    assert changed(outs["0"]) == {0: True, 1: False}
    assert changed(outs["1"]) == {0: False, 1: True}
    assert sum(changed(outs["auto"]).values()) == 1
    before = video.read_bytes()
    error_line(invoke("run", video, "--audio", speech, "-o", tmp_path / "o5.mp4", "--face", "5"), 2,
               "--face 5", "2 face")
    assert not (tmp_path / "o5.mp4").exists() and video.read_bytes() == before


# 2. faces too small for the landmarker ---------------------------------------------------------
def test_face_too_small(synth, tmp_path):
    """A ~14 px face in a 320x240 frame: a clear no-face error naming the file, or a pass-through
    with a warning: one of the two documented outcomes, never a crash or a silent result."""
    folder = tmp_path / "in"
    folder.mkdir()
    video = from_face(synth, folder, "tiny.mp4", "[0:v]scale=40:40,pad=320:240:140:100:color=gray", seconds=1.0)
    before = video.read_bytes()
    out = tmp_path / "out.mp4"
    r, s = dub(video, synth.wav(), out)
    if r.exit_code == 0:
        assert any("no face" in w for w in s["warnings"]), s["warnings"]
        assert s["faces_found"] < 1
        assert psnr(decode_all(video), decode_all(out)) > 40
    else:
        error_line(r, 3, video, "no face")
        assert not out.exists()
    assert video.read_bytes() == before
    only(folder, "tiny.mp4")


# 3. extreme head turn --------------------------------------------------------------------------
def test_extreme_head_turn(synth, tmp_path):
    """Frames 15-34 of 50 squash the face to 35 % of its width (a stand-in for a profile): the run
    succeeds, every frame is there at the input's size, and no frame is corrupted: the upper face
    stays as it was, and each squashed frame is either rendered or passed through unchanged."""
    video = from_face(synth, tmp_path, "turn.mp4",
                      "[0:v]split=3[a][b][c];[a]trim=end_frame=15[a1];"
                      "[b]trim=start_frame=15:end_frame=35,setpts=PTS-STARTPTS,scale=56:160,"
                      "pad=160:160:52:0:color=gray,setsar=1[b1];"
                      "[c]trim=start_frame=35,setpts=PTS-STARTPTS[c1];[a1][b1][c1]concat=n=3:v=1:a=0")
    src = decode_all(video)
    assert len(src) == 50
    out = tmp_path / "out.mp4"
    r, s = dub(video, synth.wav(seconds=2.0), out)
    assert r.exit_code == 0, r.output
    dubbed = decode_all(out)
    assert dubbed.shape == src.shape and probe(out).fps == probe(video).fps
    for t in range(len(src)):
        assert psnr(src[t, :60], dubbed[t, :60]) > 38, t  # the top of the head never changes
        assert psnr(src[t], dubbed[t]) > 24, t  # only the lower face may differ
    assert s["faces_found"] > 0.5  # the frontal frames were found


# 4. unicode and spaces in paths ----------------------------------------------------------------
def test_unicode_and_spaces_in_paths(synth, tmp_path):
    vdir, adir, odir = tmp_path / "vidéo à dub", tmp_path / "son ü ñ", tmp_path / "sortie 出力"
    for d in (vdir, adir, odir):
        d.mkdir()
    video, audio, out = vdir / "clip 1 ü.mp4", adir / "voix 2 é.wav", odir / "résultat 1 ß.mp4"
    shutil.copy(synth.face_video(), video)
    shutil.copy(synth.wav(), audio)
    r, s = dub(video, audio, out, "--preview", odir / "aperçu ç.png")
    assert r.exit_code == 0, r.output
    assert s["output"] == str(out) and s["faces_found"] > 0.9
    assert probe(out).n_frames == probe(video).n_frames
    only(odir, out.name, "aperçu ç.png")
    only(vdir, video.name)
    # and an error names such a path in full
    error_line(invoke("run", video, "--audio", adir / "absent ü.wav", "-o", odir / "x.mp4"), 2, "absent ü.wav")


# 5. 60 fps ------------------------------------------------------------------------------------
def test_60_fps(synth, tmp_path):
    """A 1 s 60 fps face video with 1.5 s of audio: 60/1 fps kept, 90 frames (ping-pong to the audio)."""
    video = from_face(synth, tmp_path, "sixty.mp4", "[0:v]fps=60", seconds=1.0)
    info = probe(video)
    assert info.fps == 60 and info.n_frames == 60
    out = tmp_path / "out.mp4"
    r, s = dub(video, synth.wav(seconds=1.5), out)
    assert r.exit_code == 0, r.output
    dub_info = probe(out)
    assert str(dub_info.fps) == "60" and s["fps"] == "60"
    assert dub_info.n_frames == s["frames"] == 90
    assert s["faces_found"] > 0.9


# 6. rotated phone video ------------------------------------------------------------------------
def test_rotated_phone_video(synth, tmp_path):
    """Stored 128x160 on its side, tagged to display rotated by 90 degrees: the output is the
    upright 160x128 picture and the face is found."""
    upright = from_face(synth, tmp_path, "upright.mp4", "[0:v]crop=160:128:0:16", seconds=1.0)
    ref = decode_all(upright)
    for turn in ("clock", "cclock"):  # ffmpeg versions differ in which way the rotate tag turns
        sideways = from_face(synth, tmp_path, f"{turn}.mp4", f"[0:v]crop=160:128:0:16,transpose={turn}", seconds=1.0)
        video = tmp_path / f"phone_{turn}.mp4"
        ffmpeg("-i", str(sideways), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(video))
        ffmpeg("-i", str(video), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", str(tmp_path / "f.rgb"))
        shown = np.frombuffer((tmp_path / "f.rgb").read_bytes(), np.uint8)
        if shown.size == ref[0].size and psnr(shown.reshape(ref[0].shape), ref[0]) > 30:
            break  # ffmpeg itself shows this one upright
    else:
        pytest.fail("could not make an upright-displaying rotated video")
    info = probe(video)
    assert info.rotation in (90, -90, 270) and (info.width, info.height) == (160, 128)
    out = tmp_path / "out.mp4"
    r, s = dub(video, synth.wav(), out)
    assert r.exit_code == 0, r.output
    assert s["faces_found"] > 0.9
    dub_info = probe(out)
    assert (dub_info.width, dub_info.height) == (160, 128)
    dubbed = decode_all(out)
    assert dubbed.shape == ref.shape
    assert psnr(ref[:, :40], dubbed[:, :40]) > 35  # upright: the top rows match the upright source


# 7. variable frame rate, 10-bit, 4:4:4 ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["vfr", "yuv420p10le", "yuv444p"])
def test_vfr_10bit_and_444_inputs(synth, tmp_path, kind):
    if kind == "vfr":  # 30 frames 1/30 s apart, then 15 frames 1/15 s apart
        video = from_face(synth, tmp_path, "in.mp4", "[0:v]fps=30,setpts='if(lt(N,30),N/30,1+(N-30)/15)/TB'",
                          "-fps_mode", "vfr", "-pix_fmt", "yuv420p")
        assert probe(video).vfr
    else:
        video = from_face(synth, tmp_path, "in.mp4", "[0:v]null", "-pix_fmt", kind, seconds=1.0)
        assert pix_fmt(video) == kind
    info = probe(video)
    out = tmp_path / "out.mp4"
    r, s = dub(video, synth.wav(seconds=info.duration), out)
    assert r.exit_code == 0, r.output
    assert pix_fmt(out) == "yuv420p" and s["faces_found"] > 0.9
    dub_info = probe(out)
    assert (dub_info.width, dub_info.height, dub_info.fps) == (info.width, info.height, info.fps)
    assert not dub_info.vfr and abs(dub_info.n_frames - info.n_frames) <= 1


# 8. bad audio ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["corrupt", "zero-length", "no audio stream"])
def test_bad_audio(synth, tmp_path, kind):
    folder = tmp_path / "in"
    folder.mkdir()
    video = folder / "clip.mp4"
    shutil.copy(synth.face_video(), video)
    if kind == "corrupt":
        audio = folder / "noise.wav"
        audio.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    elif kind == "zero-length":
        audio = folder / "empty.wav"
        ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0", "-c:a", "pcm_s16le", str(audio))
        assert audio.stat().st_size <= 100  # just a header
    else:
        audio = folder / "silent film.mp4"
        shutil.copy(synth.face_video(audio=False), audio)
    before = {p: p.read_bytes() for p in (video, audio)}
    out = tmp_path / "out.mp4"
    error_line(invoke("run", video, "--audio", audio, "-o", out), 2, audio)
    assert not out.exists()
    only(folder, video.name, audio.name)
    only(tmp_path, "in")
    assert all(p.read_bytes() == b for p, b in before.items())


# 9. audio much longer or shorter than the video ------------------------------------------------
def test_audio_four_times_longer(synth, tmp_path):
    video, audio = synth.face_video(1.0), synth.wav(seconds=4.0)
    out = tmp_path / "pingpong.mp4"
    r, s = dub(video, audio, out)
    assert r.exit_code == 0, r.output
    assert probe(out).n_frames == s["frames"] == 100 and audio_seconds(out) == pytest.approx(4.0, abs=0.1)
    out = tmp_path / "trim.mp4"
    r, s = dub(video, audio, out, "--length-policy", "trim")
    assert r.exit_code == 0, r.output
    assert probe(out).n_frames == s["frames"] == 25 and audio_seconds(out) == pytest.approx(1.0, abs=0.1)
    assert s["length"]["trimmed_s"] == pytest.approx(3.0, abs=0.05)
    assert any("trim" in w.lower() or "cut" in w.lower() for w in s["warnings"]), s["warnings"]


def test_audio_four_times_shorter(synth, tmp_path):
    video, audio = synth.face_video(2.0), synth.wav(seconds=0.5)
    out = tmp_path / "out.mp4"
    r, s = dub(video, audio, out)
    assert r.exit_code == 0, r.output
    assert probe(out).n_frames == s["frames"] == 50 and audio_seconds(out) == pytest.approx(2.0, abs=0.1)
    assert s["length"]["padded_s"] == pytest.approx(1.5, abs=0.05)


# 10. unwritable output, output equal to input by another spelling ------------------------------
def test_output_in_read_only_folder(synth, tmp_path):
    ro = tmp_path / "read only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("this user can write to a read-only folder (root)")
        error_line(invoke("run", synth.face_video(), "--audio", synth.wav(), "-o", ro / "o.mp4"), 2,
                   ro / "o.mp4", "not writable")
        only(ro)
    finally:
        ro.chmod(0o755)


def test_output_equal_to_input_spelled_differently(synth, tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    video = tmp_path / "in.mp4"
    shutil.copy(synth.face_video(), video)
    before = video.read_bytes()
    monkeypatch.chdir(tmp_path / "sub")
    for spelling in ("../in.mp4", "../sub/../in.mp4", str(video), "./../in.mp4"):
        error_line(invoke("run", "../in.mp4", "--audio", synth.wav(), "-o", spelling, "--overwrite"), 2,
                   "same file")
    (tmp_path / "link.mp4").symlink_to(video)
    error_line(invoke("run", video, "--audio", synth.wav(), "-o", tmp_path / "link.mp4", "--overwrite"), 2,
               "same file")
    assert video.read_bytes() == before
    only(tmp_path, "in.mp4", "link.mp4", "sub")
    only(tmp_path / "sub")


def test_animated_gif_is_a_video_with_its_own_timing(synth, tmp_path):
    """An animated GIF (and APNG) is read as a video at its own frame rate, never as a still of its
    first frame; an animated WebP, which ffmpeg cannot decode, is a clear error."""
    from fractions import Fraction

    from PIL import Image

    from lipdub.errors import InputError
    from lipdub.media.probe import probe
    from lipdub.pipeline import dub
    from tests.conftest import decode_all, ffmpeg

    gif = tmp_path / "talk.gif"
    ffmpeg("-i", str(synth.face_video(seconds=2.0)), "-r", "10", str(gif))
    info = probe(gif)
    assert info.fps == Fraction(10) and info.n_frames in (20, 21)
    s = dub(gif, synth.wav(seconds=2.0), tmp_path / "o.mp4", engine="reference")
    out = decode_all(tmp_path / "o.mp4")
    assert s["fps"] == "10" and len(out) == info.n_frames
    assert np.abs(out[0].astype(int) - out[-1]).mean() > 1.0  # it moves: not the first frame held
    frames = [Image.fromarray(f) for f in out[:6]]
    apng, webp = tmp_path / "a.png", tmp_path / "a.webp"
    frames[0].save(apng, save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(webp, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert probe(apng).n_frames == 6
    with pytest.raises(InputError, match="animated WebP"):
        probe(webp)
