"""lipdub command line (Typer only: parsing, progress display, messages, exit codes).

Exit codes: 0 success; 1 other error; 2 bad input (file, option); 3 no usable face;
4 ffmpeg failed; 5 model weights missing; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM). Nothing heavy is imported at
module level, so ``lipdub --help`` is instant.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import LipdubError

class _OneLineErrors(TyperGroup):
    """The command group, with command-line mistakes (a bad value, a missing option, an unknown
    command) reported like every other error: one red line, exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):
        from typer._click import exceptions as click

        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except typer.Abort:
            if not standalone_mode:
                raise
            _say("interrupted: nothing was written", "red")
            sys.exit(130)
        except click.NoArgsIsHelpError as err:
            if not standalone_mode:
                raise
            typer.echo(err.ctx.get_help() if err.ctx is not None else err.format_message())
            sys.exit(0)
        except click.ClickException as err:
            if not standalone_mode:
                raise
            _say(f"error: {_usage_message(err, sys.argv[1:] if args is None else list(args))}", "red")
            sys.exit(err.exit_code if err.exit_code != 1 else 2)
        if not standalone_mode:
            return rv
        code = rv if isinstance(rv, int) else 0
        if code in (130, 143) and args is None:
            # interrupted, and every cleanup has run: leave now, without the seconds an interpreter
            # shutdown with native libraries loaded can take (a Ctrl-C ends the process at once)
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        sys.exit(code)


def _given(args: list, name: str):
    """The value given to option ``name`` on the command line ``args`` (None if not found)."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


def _usage_message(err, args: list) -> str:
    """One line for a click usage error: ``--crf 'abc': not an integer``."""
    import re

    from typer._click import exceptions as click

    ctx = getattr(err, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    param = getattr(err, "param", None)
    name = None
    if param is not None:
        opts = [o for o in (getattr(param, "opts", None) or []) if o.startswith("--")] or getattr(param, "opts", [])
        is_option = getattr(param, "param_type_name", "") == "option"
        name = opts[0] if opts and is_option else str(getattr(param, "name", "") or "").upper()
    if isinstance(err, click.MissingParameter) and name:
        kind = "option" if is_option else "argument"
        return f"missing {kind} {name}{where}"
    if isinstance(err, click.BadParameter) and name:
        msg = str(err.message).strip().splitlines()[0].rstrip(".")
        value = _given(args, name) if is_option else None
        m = re.match(r"'(.*)' is not a valid (integer|float)", msg)
        if m:
            value, msg = m.group(1), "not an integer" if m.group(2) == "integer" else "not a number"
        elif "valid integer" in msg:
            msg = "not an integer"
        elif "valid number" in msg or "valid float" in msg:
            msg = "not a number"
        else:
            msg = re.sub(r"^Input should be ", "must be ", msg)
        return f"{name} {value!r}: {msg}" if value is not None else f"{name}: {msg}"
    if isinstance(err, click.NoSuchOption):
        return f"no such option {err.option_name}{where}"
    msg = err.format_message().strip().splitlines()[0].rstrip(".")
    m = re.match(r"No such command '(.*)'", msg)
    if m:
        return f"unknown command '{m.group(1)}' (see lipdub --help)"
    return msg[:1].lower() + msg[1:] + where


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Style-preserving lip sync: re-animate the mouth in a video to new speech.")
DEBUG = bool(os.environ.get("LIPDUB_DEBUG"))
# The stages multiply small matrices per frame, where BLAS threads cost far more than they save
# (a 63x63 solve: 4 ms with two threads, 0.03 ms with one); ffmpeg already uses the other core.
# Set before numpy loads; a user's own setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _version(value: bool):
    if value:
        typer.echo(f"lipdub {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Show the version and exit.")):
    """lipdub: dub a video of a person with new speech, in that person's own speaking style."""


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send what native libraries (MediaPipe, TensorFlow Lite) write straight to file descriptor 2
    to /dev/null while a command runs; yield a text stream that still reaches the real stderr.
    Under a test runner (sys.stderr is not fd 2) nothing is redirected. LIPDUB_DEBUG=1 keeps it."""
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if DEBUG or not real:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    stream = os.fdopen(os.dup(saved), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                       errors="replace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield stream
    finally:
        sys.stderr.flush()
        stream.flush()
        os.dup2(saved, 2)
        os.close(saved)
        stream.close()


class _Progress:
    """progress(stage, done, total) callback drawing one rich bar per stage on ``stream``."""

    def __init__(self, stream, quiet: bool):
        self.bars, self.tasks = None, {}
        if not quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bars = Progress(TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(file=stream), transient=False)

    def __enter__(self):
        if self.bars is not None:
            self.bars.start()
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        from .interrupt import check

        check()  # a Ctrl-C or SIGTERM that came meanwhile ends the run here
        if self.bars is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.bars.add_task(stage, total=max(int(total), 1))
        self.bars.update(self.tasks[stage], completed=int(done), total=max(int(total), 1))

    def __exit__(self, *exc) -> None:
        if self.bars is not None:
            self.bars.stop()


def _say(msg: str, colour: str | None = None) -> None:
    typer.secho(msg, fg=colour, err=True)


def _guarded(fn, quiet: bool):
    """Run fn(progress) with progress bars; turn errors into one red line and an exit code."""
    from .interrupt import Terminated, handling

    try:
        with handling(), _native_stderr_silenced() as stream, _Progress(stream, quiet) as prog:
            return fn(prog)
    except LipdubError as err:
        _say(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}{_kept(err)}", "red")
        raise typer.Exit(err.exit_code)
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        _say(f"{what}: no output written{_kept(err)}" if _kept(err) else f"{what}: nothing was written", "red")
        raise typer.Exit(143 if isinstance(err, Terminated) else 130)
    except (typer.Exit, typer.Abort):
        raise
    except OSError as err:  # the system's, not ours: a full disk, a folder that went away
        import errno

        where = f"{_user_path(err.filename)}: " if err.filename else ""
        why = err.strerror or str(err)
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            why = "no space left on device (the disk is full)"
        _say(f"error: {where}{why}{_kept(err)}", "red")
        raise typer.Exit(1)
    except Exception as err:  # a bug: one line, the traceback with LIPDUB_DEBUG=1
        if DEBUG:
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        _say(f"error: internal error: {type(err).__name__}: {first} (run with LIPDUB_DEBUG=1 for details)"
             f"{_kept(err)}", "red")
        raise typer.Exit(1)


def _user_path(name) -> str:
    """The user's path for a path inside lipdub's hidden names (``.out.mp4.work-12-ab/audio.wav``
    -> the folder it sits in)."""
    import re

    p = Path(os.fsdecode(name))
    for q in (p, *p.parents):
        if re.search(r"\.(partial|work)-\d+-[0-9a-f]+$|\.lipdub-(partial|lock)$", q.name):
            return str(q.parent)
    return str(p)


def _kept(err: BaseException) -> str:
    kept = getattr(err, "resume_dir", None)
    return f"; finished work kept in {kept}: run the same command again to resume" if kept else ""


def _check_report(report: Optional[Path], overwrite: bool, inputs) -> None:
    if report is not None:
        from .pipeline import check_output

        check_output(report, overwrite, inputs, (".json",), "report")


def _write_json(path: Path, data: dict, replace: bool = True) -> None:
    from .media.atomic import atomic_output

    with atomic_output(path, replace=replace) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


@app.command()
def run(
    video: Path = typer.Argument(..., help="Input video of the person (or a photo of them).", show_default=False),
    audio: Path = typer.Option(..., "--audio", "-a", help="New speech (any format ffmpeg reads).", show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output video [default: VIDEO.dubbed.mp4 beside VIDEO]."),
    style: Optional[Path] = typer.Option(None, "--style", help="Style reference: a .lipstyle pack or a video [default: the input video]."),
    lips_from: Optional[Path] = typer.Option(None, "--lips-from", help="Take the lip motion from this video of the voice actor saying --audio (retargeted to the speaker) instead of predicting it."),
    engine: str = typer.Option("auto", "--engine", help="auto | reference | neural."),
    face: Optional[str] = typer.Option(None, "--face", help="Which face: auto | largest | speaking | N (0 = leftmost)."),
    length_policy: str = typer.Option("pingpong", "--length-policy", help="When the audio is longer: pingpong | loop | freeze | trim | pad-silence."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a contact sheet PNG (source, dubbed, target lips)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or messages (errors still show)."),
    device: str = typer.Option("cpu", "--device", help="Device for the neural engine (cpu, cuda, cuda:1)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (neural engine)."),
    steps: int = typer.Option(8, "--steps", help="Sampling steps (neural engine)."),
    sampler: str = typer.Option("dpm", "--sampler", help="dpm (DPM-Solver++ multistep) | ddim (neural engine)."),
    crf: int = typer.Option(14, "--crf", help="H.264 quality, 0-51 (lower is better)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the summary and quality figures (as `lipdub eval`) to this JSON file."),
):
    """Dub VIDEO with the speech in --audio.

    Outputs longer than two minutes are resumable: the work goes to a hidden folder beside the output (.OUTPUT.lipdub-partial); if the run is interrupted, running the same command again reuses the analysis and the finished minutes of video. The folder is removed when the output is complete, and started afresh when the inputs or options have changed.
    """

    def go(prog):
        from .pipeline import default_output, dub

        out = output if output is not None else default_output(video)
        _check_report(report, overwrite, (video, audio, style, lips_from, out, preview))
        summary = dub(video, audio, out, style=style, engine=engine, face=face, length_policy=length_policy,
                      crf=crf, seed=seed, device=device, steps=steps, sampler=sampler, preview=preview,
                      progress=prog, overwrite=overwrite, lips_from=lips_from)
        if report is not None:
            from .evaluate import evaluate

            # the same figures as `lipdub eval OUT --audio AUDIO --source VIDEO`
            summary["quality"] = evaluate(out, audio=audio, source=video, progress=prog)
            summary["report"] = str(report)
            _write_json(report, summary, replace=overwrite)
        return summary

    summary = _guarded(go, quiet)
    if not quiet:
        for w in summary["warnings"]:
            _say(f"warning: {w}", "yellow")
    if as_json:
        typer.echo(json.dumps(summary))
    if not quiet:
        e = summary["engines"]
        _say(f"wrote {summary['output']} ({summary['frames']} frames, {summary['duration']:.2f} s; "
             f"motion: {e['motion']}, render: {e['render']}; {summary['timings']['total']:.1f} s)")
        if summary.get("preview"):
            _say(f"preview {summary['preview']}")


@app.command("prepare-style")
def prepare_style_cmd(
    video: Path = typer.Argument(..., help="A video of the speaker talking, with their own speech.", show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output pack [default: VIDEO.lipstyle beside VIDEO]."),
    face: Optional[str] = typer.Option(None, "--face", help="Which face: auto | largest | speaking | N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing pack."),
    fit: bool = typer.Option(False, "--fit", help="Also fine-tune the neural motion model on this speaker "
                             "(needs a base model; writes PACK.motion.safetensors, used by run --style PACK)."),
    fit_steps: int = typer.Option(300, "--fit-steps", min=1, help="Fine-tuning steps for --fit."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or messages."),
):
    """Analyse a speaker's video once and store the style reference (.lipstyle)."""
    from .pipeline import prepare_style

    def go(prog):
        summary = prepare_style(video, output, face=face, overwrite=overwrite, progress=prog)
        if fit:
            from .train.cli_hooks import fit_style

            summary["fitted_motion"] = str(fit_style(summary["output"], steps=fit_steps, progress=prog))
        return summary

    s = _guarded(go, quiet)
    if as_json:
        typer.echo(json.dumps(s))
    if not quiet:
        _say(f"wrote {s['output']} ({s['frames']} frames, {s['exemplars']} mouth exemplars)")


@app.command()
def batch(
    manifest: Path = typer.Argument(..., help="CSV (with a header row) or JSONL: video, audio, output, and optional run options per row.", show_default=False),
    report: Optional[Path] = typer.Option(None, "--report", help="JSON report [default: MANIFEST.report.json beside it; .rankN added per process]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo items whose output already exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout instead of a table."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Dub every row of a manifest (CSV or JSONL), resuming and reporting.

    Goes on past failures, skips outputs that exist and are complete, writes a JSON report. Exit
    code 0 when every item is ok or skipped, 6 when some failed, 2 for a bad manifest. Under
    `accelerate launch -m lipdub batch ...` the rows are split between processes."""
    from .batch import detect_processes, run_batch

    index, count = detect_processes()
    rep = _guarded(lambda prog: run_batch(manifest, report, overwrite=overwrite, progress=prog,
                                          process_index=index, num_processes=count), quiet)
    if as_json:
        typer.echo(json.dumps(rep))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"lipdub batch: {rep['manifest']}" + (f" (process {index + 1}/{count})" if count > 1 else ""))
        for col in ("line", "output", "status", "seconds", "error"):
            table.add_column(col, overflow="fold")
        colour = {"ok": "green", "skipped": "cyan", "failed": "red"}
        for it in rep["items"]:
            table.add_row(str(it["line"]), it["output"], f"[{colour[it['status']]}]{it['status']}[/]",
                          f"{it['seconds']:.1f}", it["error"] or "")
        Console().print(table)
        c = rep["counts"]
        typer.echo(f"{c['ok']} ok, {c['skipped']} skipped, {c['failed']} failed; report: {rep['report']}")
    if rep["exit_code"]:
        raise typer.Exit(rep["exit_code"])


@app.command("eval")
def eval_cmd(
    dubbed: Path = typer.Argument(..., help="A dubbed video.", show_default=False),
    truth: Optional[Path] = typer.Option(None, "--truth", help="A video of the real lips with the same timing."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="The speech the mouth should follow [default: the video's own audio]."),
    source: Optional[Path] = typer.Option(None, "--source", help="The original input video (for ratios and PSNR above the nose)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Quality figures of a dub: lip sync, sharpness, flicker, seam.

    Lip sync is measured against --truth (real lips with the same timing) or against the audio;
    sharpness, flicker and seam of the mouth region always (as ratios with --source)."""
    from .evaluate import evaluate

    res = _guarded(lambda prog: evaluate(dubbed, truth=truth, audio=audio, source=source, progress=prog), quiet)
    if as_json:
        typer.echo(json.dumps(res))
    else:
        for k, v in res.items():
            if k != "warnings" and v is not None:
                typer.echo(f"{k:<16} {v}")
    if not quiet:
        for w in res.get("warnings", []):
            _say(f"warning: {w}", "yellow")


train_app = typer.Typer(no_args_is_help=True, help="Train the neural engine's models (runs on accelerate: "
                        "CPU, one GPU, or `accelerate launch -m lipdub train ...` for several).")
app.add_typer(train_app, name="train")


@app.command()
def preprocess(
    videos_dir: Path = typer.Argument(..., help="Folder of talking-face videos (HDTF / VoxCeleb2 / LRS2 layout).",
                                      show_default=False),
    out_dir: Path = typer.Argument(..., help="Folder for the training shards (resumable).", show_default=False),
    no_crops: bool = typer.Option(False, "--no-crops", help="Skip mouth crops (motion training only)."),
    max_per_speaker: int = typer.Option(0, "--max-per-speaker", min=0,
                                        help="At most this many clips of one speaker, evenly spread (0: all)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or messages."),
):
    """Build training shards (landmarks, the speech, face crops) from a folder of videos."""
    from .train.cli_hooks import preprocess as run_preprocess

    r = _guarded(lambda prog: run_preprocess(videos_dir, out_dir, with_crops=not no_crops,
                                             max_per_speaker=max_per_speaker, progress=prog), quiet)
    if not quiet:
        _say(f"shards in {out_dir}: {r.written} written, {r.existing} already there, {r.failed} failed")


@train_app.command("motion")
def train_motion_cmd(
    data: Path = typer.Option(..., "--data", help="Shards from `lipdub preprocess`."),
    out: Path = typer.Option(Path("weights/stage1.safetensors"), "--out", help="Weights to write (resumes from OUT.ckpt)."),
    model: str = typer.Option("stage1", "--model", help="stage1 (the default engine's model) | transformer (neural)"),
    steps: int = typer.Option(3000, "--steps", min=1),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    lr: float = typer.Option(1e-3, "--lr"),
    preset: str = typer.Option("small", "--preset", help="transformer size: small | base"),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="no | fp16 | bf16"),
    holdout: list[str] = typer.Option([], "--holdout", help="Speaker id to leave out (repeatable)."),
    seed: int = typer.Option(0, "--seed"),
    cpu: bool = typer.Option(False, "--cpu", help="Train on the CPU even when a GPU is present."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Train a motion model (audio-aware cross-attention over a style reference) on speech features."""
    import shlex
    import sys

    from .train.cli_hooks import train_motion

    command = "lipdub " + shlex.join(sys.argv[1:])
    path = _guarded(lambda prog: train_motion(data, out, steps=steps, batch_size=batch_size, lr=lr, model=model,
                                              preset=preset, mixed_precision=mixed_precision, holdout=holdout,
                                              seed=seed, cpu=cpu, command=command, progress=prog), quiet)
    if not quiet:
        _say(f"wrote {path}")


@train_app.command("renderer")
def train_renderer_cmd(
    data: Path = typer.Option(..., "--data", help="Shards from `lipdub preprocess` (with crops)."),
    out: Path = typer.Option(Path("weights/renderer.safetensors"), "--out", help="Weights to write (resumes from OUT.ckpt)."),
    steps: int = typer.Option(5000, "--steps", min=1),
    vae_steps: int = typer.Option(2000, "--vae-steps", min=0),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    lr: float = typer.Option(2e-4, "--lr"),
    image_size: int = typer.Option(64, "--image-size", min=16),
    vae: Optional[str] = typer.Option(None, "--vae", help="A local diffusers AutoencoderKL folder (e.g. under weights/)."),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="no | fp16 | bf16"),
    holdout: list[str] = typer.Option([], "--holdout", help="Speaker id to leave out (repeatable)."),
    seed: int = typer.Option(0, "--seed"),
    cpu: bool = typer.Option(False, "--cpu"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Train the conditional latent-diffusion mouth renderer."""
    from .train.cli_hooks import train_renderer

    path = _guarded(lambda prog: train_renderer(data, out, steps=steps, vae_steps=vae_steps, batch_size=batch_size,
                                                lr=lr, image_size=image_size, vae_path=vae,
                                                mixed_precision=mixed_precision, holdout=holdout, seed=seed,
                                                cpu=cpu, progress=prog), quiet)
    if not quiet:
        _say(f"wrote {path}")


def _doctor_lines() -> tuple[list[tuple[str, str]], bool]:
    """(name, finding) rows and whether everything essential is there."""
    import shutil
    import subprocess

    rows, ok = [("lipdub", __version__)], True
    for tool in ("ffmpeg", "ffprobe"):
        exe = shutil.which(tool)
        if exe:
            first = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
            rows.append((tool, first.replace(" Copyright", "  (").split("  (")[0]))
        else:
            rows.append((tool, "NOT FOUND: install ffmpeg (apt-get install ffmpeg)"))
            ok = False
    rows.append(("espeak-ng", shutil.which("espeak-ng") or "not found (only `make demo` needs it)"))
    try:
        import torch

        dev = f"cuda x{torch.cuda.device_count()} ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu only"
        rows.append(("torch", f"{torch.__version__}, {dev}"))
    except ImportError:
        rows.append(("torch", "not installed (only the neural engine needs it)"))
    try:
        from .face.detect import backend_name

        rows.append(("landmarks", backend_name()))
    except Exception as err:  # report, do not crash the doctor
        rows.append(("landmarks", f"unavailable: {type(err).__name__}: {err}"))
        ok = False
    try:
        from .audio.vad import vad_backend

        rows.append(("voice", vad_backend()))
    except Exception as err:
        rows.append(("voice", f"unavailable: {type(err).__name__}: {err}"))
    from .audio.phones import available

    rows.append(("phones", "pocketsphinx (en-us model from its package): hears speech over music" if available()
                 else "not installed: speech over music goes unheard (pip install pocketsphinx)"))
    try:
        from .audio.speech import _package_files

        files = _package_files()
        rows.append(("speech", f"Whisper base (CTranslate2, {len(files['model.bin']) // 1_000_000} MB, sha256 checked)"))
        del files
    except Exception as err:
        rows.append(("speech", f"unavailable: {err}"))
        ok = False
    from .motion import stage1

    if stage1.available():
        rows.append(("stage1", f"motion weights {stage1.find()}"))
    else:
        rows.append(("stage1", "motion weights NOT FOUND: " + stage1.TRAIN_HINT))
        ok = False
    try:
        from .motion import neural as mn
        from .render import neural as rn

        for name, mod in (("motion", mn), ("render", rn)):
            paths = mod.search_paths(mod.FILENAME) if hasattr(mod, "search_paths") else []
            found = next((p for p in paths if Path(p).is_file()), None)
            usable = mod.available()
            state = (f"neural weights {found}" + ("" if usable else " (torch/diffusers missing)")) if found \
                else "neural weights not found (searched: " + ", ".join(map(str, paths)) + ")"
            cpu = "stage1" if name == "motion" else "reference"
            rows.append((name, f"{cpu} engine ready; {state}; --engine auto uses {'neural' if usable else cpu}"))
    except Exception as err:
        rows.append(("engines", f"CPU engines ready; neural check failed: {type(err).__name__}: {err}"))
    return rows, ok


@app.command()
def doctor():
    """Report ffmpeg, torch and its device, the landmark backend, the engines and weights found."""
    with _native_stderr_silenced():
        rows, ok = _doctor_lines()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"{k:<{width}}  {v}")
    if not ok:
        raise typer.Exit(1)


@app.command(hidden=True)
def demo(out: Path = typer.Option(Path("out/demo"), "--out", help="Folder for the sample and the result.")):
    """Build the built-in sample (astronaut photo + espeak-ng speech) and dub it."""
    from .demo import run_demo

    s = _guarded(lambda prog: run_demo(out, progress=prog), False)
    for w in s.get("warnings", []):
        _say(f"warning: {w}", "yellow")
    typer.echo(f"input video:   {s['input']}")
    typer.echo(f"dubbed video:  {s['output']}")
    typer.echo(f"preview:       {s['preview']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
