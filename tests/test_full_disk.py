"""A full disk at every stage (the audio, the video, the final move): one line naming the output
folder and saying it is full, exit 1 as documented, nothing left behind."""
import os
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from lipdub.cli import app
from lipdub.errors import DiskFullError


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_audio_and_video_writers_report_a_full_disk(tmp_path):
    from lipdub.media.mux import write_float_wav
    from lipdub.media.video import VideoWriter
    from lipdub.types import AudioTrack

    with pytest.raises(DiskFullError, match="no space left on device"):
        write_float_wav(AudioTrack(np.zeros(16000, np.float32), 16000, None), "/dev/full")
    target = tmp_path / "v.mp4"
    target.symlink_to("/dev/full")  # every write to it fails with ENOSPC, as on a full disk
    with pytest.raises(DiskFullError) as e:
        with VideoWriter(target, 64, 64, 25, container=".mp4") as w:
            for _ in range(50):
                w.write(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    assert str(e.value) == f"{tmp_path}: no space left on device (the disk is full)"


def test_atomic_output_reports_a_full_disk(tmp_path, monkeypatch):
    import errno

    from lipdub.media import atomic

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(DiskFullError, match=str(tmp_path)):
        with atomic.atomic_output(tmp_path / "r.json") as tmp:
            tmp.write_text("{}")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of a given size mounted under tmp_path (root only; skipped elsewhere)."""
    mounted = []

    def make(size: str):
        d = tmp_path / f"fs_{size}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.decode().strip()}")
        mounted.append(d)
        return d

    yield make
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.mark.parametrize("size", ["64k", "320k"])
def test_full_disk_on_the_command_line(synth, small_fs, size):
    folder = small_fs(size)
    r = CliRunner().invoke(app, ["run", str(synth.face_video(seconds=3.0)), "--audio", str(synth.wav(seconds=3.0)),
                                 "-o", str(folder / "out.mp4"), "--crf", "0", "--quiet", "--engine", "reference"])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 1, r.output
    assert lines == [f"error: {folder}: no space left on device (the disk is full)"], lines
    assert os.listdir(folder) == []
