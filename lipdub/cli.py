"""lipdub command line (Typer only: parsing, progress display, messages, exit codes)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import LipdubError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Style-preserving lip sync: re-animate the mouth in a video to new speech.")


def _version(value: bool):
    if value:
        typer.echo(f"lipdub {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version.")):
    """lipdub: dub a video of a person with new speech, in that person's own speaking style."""


class _Progress:
    """Rich progress bars on stderr, one per stage."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bars = None
        self.tasks = {}

    def __enter__(self):
        if not self.quiet:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bars = Progress(TextColumn("{task.description:>8}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self.bars.__enter__()
        return self

    def __call__(self, stage: str, done: int, total: int):
        if self.bars is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.bars.add_task(stage, total=total)
        self.bars.update(self.tasks[stage], completed=done, total=total)

    def __exit__(self, *exc):
        if self.bars is not None:
            self.bars.__exit__(*exc)


def _fail(err: BaseException) -> None:
    msg = str(err).splitlines()[0] if str(err) else err.__class__.__name__
    typer.secho(f"error: {msg}", fg="red", err=True)
    raise typer.Exit(getattr(err, "exit_code", 1))


def _run_guarded(fn, quiet: bool):
    try:
        with _Progress(quiet) as prog:
            return fn(prog)
    except LipdubError as e:
        _fail(e)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="red", err=True)
        raise typer.Exit(130)


@app.command()
def run(
    video: Path = typer.Argument(..., help="Input video of the person."),
    audio: Path = typer.Option(..., "--audio", "-a", help="New speech track (any format ffmpeg reads)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output mp4 (default: INPUT.dubbed.mp4)."),
    style: Optional[Path] = typer.Option(None, "--style", help="Style reference: a .lipstyle pack or a video (default: the input)."),
    engine: str = typer.Option("auto", "--engine", help="auto | reference | neural"),
    face: Optional[str] = typer.Option(None, "--face", help="auto | largest | speaking | N (0 = leftmost face)."),
    length_policy: str = typer.Option("pingpong", "--length-policy", help="pingpong | loop | freeze | trim | pad-silence"),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a contact-sheet PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable summary on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    device: str = typer.Option("cpu", "--device", help="Device for the neural engine (cpu, cuda, cuda:1)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (neural engine)."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="H.264 quality (lower is better)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
):
    """Dub VIDEO with the speech in --audio."""
    from .pipeline import dub

    def go(prog):
        summary = dub(video, audio, output, style=style, engine=engine, face=face, length_policy=length_policy,
                      crf=crf, seed=seed, device=device, overwrite=overwrite, progress=prog)
        if preview:
            from .preview import contact_sheet

            summary["preview"] = str(contact_sheet(video, Path(summary["output"]), preview))
        return summary

    summary = _run_guarded(go, quiet or as_json)
    for w in summary["warnings"]:
        typer.secho(f"warning: {w}", fg="yellow", err=True)
    if as_json:
        typer.echo(json.dumps(summary))
    elif not quiet:
        e = summary["engines"]
        typer.echo(f"wrote {summary['output']} ({summary['frames']} frames, motion: {e['motion']}, "
                   f"render: {e['render']}, {summary['wall']:.1f} s)", err=True)


@app.command("prepare-style")
def prepare_style_cmd(
    video: Path = typer.Argument(..., help="A video of the speaker talking, with their own speech."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output .lipstyle (default: VIDEO.lipstyle)."),
    face: Optional[str] = typer.Option(None, "--face"),
    overwrite: bool = typer.Option(False, "--overwrite"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Analyse a speaker's video once and store the style reference pack."""
    from .pipeline import prepare_style

    s = _run_guarded(lambda prog: prepare_style(video, output, face=face, overwrite=overwrite, progress=prog), quiet)
    typer.echo(f"wrote {s['output']} ({s['frames']} frames, {s['exemplars']} mouth exemplars)", err=True)


@app.command()
def doctor():
    """Report ffmpeg, torch, the landmark backend, the engines and the weights found."""
    import shutil
    import subprocess

    ff = shutil.which("ffmpeg")
    ver = subprocess.run([ff, "-version"], capture_output=True, text=True).stdout.split("\n")[0] if ff else "NOT FOUND"
    typer.echo(f"lipdub     {__version__}")
    typer.echo(f"ffmpeg     {ver}")
    try:
        import torch

        dev = "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else "cpu"
        typer.echo(f"torch      {torch.__version__}, device {dev}")
    except ImportError:
        typer.echo("torch      not installed (the neural engine needs it)")
    from .audio.vad import vad_backend
    from .face.detect import backend_name

    typer.echo(f"landmarks  {backend_name()}")
    typer.echo(f"vad        {vad_backend()}")
    from .motion import neural as mn
    from .render import neural as rn

    typer.echo(f"motion     reference (always); neural weights: {'found' if mn.available() else 'not found'}")
    typer.echo(f"render     reference (always); neural weights: {'found' if rn.available() else 'not found'}")


@app.command(hidden=True)
def demo(out: Path = typer.Option(Path("out/demo"), "--out")):
    """Build the built-in sample and dub it."""
    from .demo import run_demo

    s = _run_guarded(lambda prog: run_demo(out, progress=prog), False)
    typer.echo(f"demo video:   {s['output']}")
    typer.echo(f"demo preview: {s['preview']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
