"""Training from the command line: preprocess -> train motion (stage1, transformer) -> prepare-style --fit -> run."""
import json

from typer.testing import CliRunner

from lipdub.cli import app


def test_preprocess_train_fit_and_dub(synth, tmp_path, monkeypatch):
    runner = CliRunner()
    videos = tmp_path / "videos" / "speaker1"
    videos.mkdir(parents=True)
    clip = synth.face_video(seconds=3.0)
    (videos / "a.mp4").write_bytes(clip.read_bytes())
    shards = tmp_path / "shards"
    r = runner.invoke(app, ["preprocess", str(tmp_path / "videos"), str(shards), "--quiet"])
    assert r.exit_code == 0, r.output
    assert list(shards.glob("*.npz"))

    weights = tmp_path / "w"
    r = runner.invoke(app, ["train", "motion", "--data", str(shards), "--out", str(weights / "stage1.safetensors"),
                            "--steps", "3", "--batch-size", "2", "--cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    from lipdub.motion.stage1 import Stage1

    assert Stage1.load(weights / "stage1.safetensors").cfg.feat_dim == 512  # trained on Whisper states
    r = runner.invoke(app, ["train", "motion", "--model", "transformer", "--data", str(shards),
                            "--out", str(weights / "motion.safetensors"), "--steps", "3", "--batch-size", "2",
                            "--cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    assert (weights / "motion.safetensors").exists()

    monkeypatch.setenv("LIPDUB_WEIGHTS", str(weights))
    pack = tmp_path / "spk.lipstyle"
    r = runner.invoke(app, ["prepare-style", str(clip), "-o", str(pack), "--fit", "--fit-steps", "2", "--quiet"])
    assert r.exit_code == 0, r.output
    fitted = tmp_path / "spk.lipstyle.motion.safetensors"
    assert fitted.exists()

    out = tmp_path / "out.mp4"
    r = runner.invoke(app, ["run", str(clip), "--audio", str(synth.wav(2.0)), "--style", str(pack), "-o", str(out),
                            "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["engines"]["motion"] == "neural"  # the speaker-tuned model was used
    assert summary["engines"]["render"] == "reference"  # no renderer weights: auto falls back
    assert out.exists()
