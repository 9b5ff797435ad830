"""Runs the stages: check inputs → probe → audio → style → analyse → features → motion → render
(streamed decode → render → encode) → mux → atomic move. Returns a summary dict; never prints."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .background import Background, beside
from .errors import InputError, NoFaceError, StillImageError
from .length import POLICIES, fit_audio, plan
from .media import still
from .resume import PartialRun
from .resume import wanted as resumable
from .types import AudioFeatures, AudioTrack, FaceTrack, LipMotion, StylePack, VideoInfo

Progress = Callable[[str, int, int], None]
ENGINES = ("auto", "reference", "neural")
OUTPUT_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg")
PREVIEW_MOMENTS = 4


def default_output(video) -> Path:
    """``<dir>/<stem>.dubbed.mp4`` beside the input."""
    video = Path(video)
    return video.with_name(f"{video.stem}.dubbed.mp4")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path, overwrite: bool, inputs=(), suffixes=OUTPUT_SUFFIXES, what: str = "output") -> Path:
    """InputError (naming the path) when ``path`` cannot be written as an output: the same file as
    an input, a folder, existing without overwrite, a missing or unwritable folder, or a suffix
    that is not one of ``suffixes``."""
    path = Path(path)
    for i in inputs:
        if i is not None and _same_file(path, Path(i)):
            raise InputError(f"{path}: {what} is the same file as the input {i}; choose another path")
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: {what} must end in {', '.join(suffixes)}")
    from .media.atomic import name_max

    if len(os.fsencode(path.name)) > name_max(path.parent if path.parent.is_dir() else "."):
        raise InputError(f"{path}: {what} file name is too long for its folder's file system")
    if path.is_dir():
        raise InputError(f"{path}: {what} is a folder")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: {what} already exists (use --overwrite to replace it)")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{path}: {what} folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: {what} folder {parent} is not writable")
    return path


def fitted_motion(style) -> Path | None:
    """The speaker-tuned motion weights `prepare-style --fit` wrote beside a .lipstyle pack."""
    if style is None or Path(style).suffix.lower() != ".lipstyle":
        return None
    path = Path(style).with_name(Path(style).name + ".motion.safetensors")
    from .motion import neural as mn

    return path if path.exists() and mn.available(path) else None


def resolve_engines(engine: str) -> dict:
    """{"motion": ..., "render": ...}: the concrete engine of each stage for "auto" (neural where
    its weights are present and usable, else the CPU engines: the stage1 motion model and the
    reference renderer), "reference" (the CPU engines) or "neural" (raises WeightsNotFoundError
    naming the paths searched when weights are missing)."""
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    from .motion import stage1

    stage1.find()  # the default motion model ships in weights/: its absence is an error, not a fallback
    if engine == "reference":
        return {"motion": "stage1", "render": "reference"}
    from .motion import neural as mn
    from .render import neural as rn

    if engine == "auto":
        return {"motion": "neural" if mn.available() else "stage1",
                "render": "neural" if rn.available() else "reference"}
    for mod, what in ((mn, "motion"), (rn, "renderer")):
        if not mod.available():
            mod.find_weights(mod.FILENAME, what, mod.TRAIN_HINT)  # raises WeightsNotFoundError
            raise InputError(f"--engine neural: the {what} weights are present but torch/diffusers are not "
                             "installed (pip install -e '.[neural]')")
    return {"motion": "neural", "render": "neural"}


FACE_CHOICES = ("auto", "largest", "speaking")


def _check_options(engine: str, length_policy: str, crf: int, face=None, steps: int = 8, sampler: str = "dpm") -> None:
    from .render.neural import SAMPLERS

    if face is not None and not isinstance(face, int) and str(face) not in FACE_CHOICES and not str(face).isdigit():
        raise InputError(f"--face {face!r}: use auto, largest, speaking or a face number (0 = leftmost)")
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if length_policy not in POLICIES:
        raise InputError(f"--length-policy {length_policy!r}: choose one of {', '.join(POLICIES)}")
    if not 0 <= int(crf) <= 51:
        raise InputError(f"--crf {crf}: must be between 0 and 51")
    if int(steps) < 1:
        raise InputError(f"--steps {steps}: must be at least 1")
    if sampler not in SAMPLERS:
        raise InputError(f"--sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")


class _Clock:
    """Per-stage wall times in seconds."""

    def __init__(self):
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.times[stage] = round(self.times.get(stage, 0.0) + time.perf_counter() - t, 3)


def _style_pack(style: Path, progress: Progress | None) -> StylePack:
    """A .lipstyle pack, or the pack of another video analysed now."""
    from .style import analyse_video, load_pack

    if style.suffix.lower() == ".lipstyle":
        return load_pack(style)
    from .audio.io import load_video_audio
    from .media.probe import probe

    info = probe(style)
    sub = (lambda stage, done, total: progress("style", done, total)) if progress else None
    _, pack = analyse_video(info, load_video_audio(info), want_pack=True, progress=sub)
    if pack is None:
        raise NoFaceError(f"{style}: no face found in the style reference")
    return pack


def dub(video, audio, out=None, style=None, engine: str = "auto", face=None, length_policy: str = "pingpong",
        crf: int = 14, seed: int = 0, device: str = "cpu", steps: int = 8, sampler: str = "dpm", preview=None,
        progress: Progress | None = None,
        overwrite: bool = False, resume: bool | None = None, lips_from=None) -> dict:
    """Dub ``video`` with the speech in ``audio`` and write ``out`` (default <stem>.dubbed.mp4).

    style: None (the input video is its own style reference), a ``.lipstyle`` pack or another
    video of the speaker. engine: auto | reference | neural. face: which face when there are
    several (passed to the face tracker). length_policy: see lipdub.length. preview: a PNG path
    for a contact sheet. seed, device, steps, sampler (dpm | ddim): the neural engine's sampling.
    lips_from: a video of the voice actor saying the new audio: the lips follow the actor's face,
    retargeted to the speaker (lipdub.motion.retarget), instead of a prediction from the audio.
    progress(stage, done, total) is called as stages advance.
    resume: keep the work in a folder beside the output so that an interrupted run, started
    again with the same arguments, goes on where it stopped (see lipdub.resume); None: only for
    outputs longer than lipdub.resume.RESUME_AFTER_S. An interruption (KeyboardInterrupt) that
    keeps finished work sets ``resume_dir`` on the exception.
    Every input is checked before any heavy work; the output appears only when complete.
    Returns the summary dict (output, engines, frames, fps, faces_found, length, timings, warnings, ...).
    """
    from .media.probe import check_readable, probe

    t0 = time.perf_counter()
    clock = _Clock()
    warnings: list[str] = []
    with clock("check"):
        _check_options(engine, length_policy, crf, face, steps, sampler)
        video = check_readable(video, "video")
        audio = check_readable(audio, "audio")
        style = check_readable(style, "style reference") if style is not None else None
        lips_from = check_readable(lips_from, "--lips-from video") if lips_from is not None else None
        out = check_output(default_output(video) if out is None else out, overwrite, (video, audio, style, lips_from))
        if preview is not None:
            preview = check_output(preview, overwrite, (video, audio, style, lips_from, out), PREVIEW_SUFFIXES,
                                   "preview")
    with contextlib.ExitStack() as locks:
        _claim(locks, [out] + ([preview] if preview is not None else []), overwrite)
        return _dub(video, audio, out, style, engine, face, length_policy, crf, seed, device, steps, sampler,
                    preview, progress, overwrite, resume, t0, clock, warnings, lips_from)


def _claim(locks: contextlib.ExitStack, outputs: list, overwrite: bool) -> None:
    """Lock each output path for this run (BusyError when another run writes one) and clear the
    debris of killed runs from their folders."""
    from .media.atomic import clean_stale, output_lock

    for path in outputs:
        locks.enter_context(output_lock(path))
        if os.path.lexists(path) and not overwrite:  # finished by another run while this one was checking
            raise InputError(f"{path}: already exists (use --overwrite to replace it)")
    for folder in {Path(p).parent for p in outputs}:
        clean_stale(folder)


def _dub(video, audio, out, style, engine, face, length_policy, crf, seed, device, steps, sampler, preview,
         progress, overwrite, resume, t0, clock, warnings, lips_from=None) -> dict:
    from .audio import speech
    from .media.probe import probe

    # the speech model loads (0.5 s, 150 MB passing) while the inputs are probed and read
    speech_model = Background(speech.encoder, name="lipdub-speech-model")
    with clock("probe"):
        try:
            info = probe(video)
        except StillImageError:
            info = None  # a photo: held for as long as the speech (lipdub.media.still)
        if style is not None and style.suffix.lower() != ".lipstyle":
            probe(style)  # a bad style video fails now, not after the analysis
        actor = _probe_lips_from(lips_from) if lips_from is not None else None
        engines = resolve_engines(engine)
    fps = still.FPS if info is None else info.fps
    with clock("audio"):
        from .audio.io import load_audio

        new_audio = load_audio(audio, fps=fps)
        audio_duration = new_audio.duration
        n_src = max(1, round(audio_duration * fps)) if info is None else info.n_frames
        lp = plan(n_src, len(new_audio.samples), fps, new_audio.sample_rate, length_policy)
        if lp.trimmed_s > 0 or lp.padded_s > 1.0 / float(fps):
            warnings.append(lp.note)
    part = None
    if resume if resume is not None else resumable(lp.n_out, fps):
        options = dict(engines=engines, engine=engine, face=face, length_policy=length_policy, crf=crf, seed=seed,
                       steps=steps, sampler=sampler, device=device)
        inputs = (video, audio, style) + ((lips_from,) if lips_from is not None else ())
        part = PartialRun(out, inputs, options, lp.n_out, fps)
        resumed = part.open()
    try:
        with contextlib.ExitStack() as stack:
            from .media.atomic import scratch_dir

            work = part.dir if part is not None else stack.enter_context(scratch_dir(out))
            if info is None:
                with clock("probe"):
                    info = probe(still.still_video(video, n_src, work))
            with clock("features"):
                from .audio.features import frame_features
                from .media.mux import write_float_wav

                # the audio as it will sound in the output, written for the encoder: an hour of
                # it is 230 MB, so no copy of it is held past this stage
                out_audio = AudioTrack(fit_audio(new_audio.samples, lp.audio_samples), new_audio.sample_rate, audio)
                del new_audio
                wav = write_float_wav(out_audio, work / "audio.wav")
                speech_model.result()  # loaded (or its error raised) before the analysis starts
                # its features are computed beside the video's analysis (on the second core)
                feats = beside(frame_features, out_audio, info.fps, lp.n_out, phones=True)
                del out_audio
            track, pack = _analysis(video, info, style, face, part, clock, warnings, progress)
            with clock("features"):
                feats = feats.result()
                if feats.speech_from == "phones":
                    warnings.append(f"{audio}: the voice detector hears almost no speech in it (music or noise "
                                    "under the voice?): the mouth follows the recognised phones instead")
                if not (feats.voiced >= 0.5).any():
                    warnings.append(f"{audio}: the audio has no speech: the mouth stays closed")
            found = float(np.mean(track.found))
            if found < 1.0:
                warnings.append(f"{video}: no face in {int(np.sum(~track.found))} of {len(track)} frames; "
                                "those frames pass through unchanged")
            sampling = dict(device=device, seed=seed, steps=steps, sampler=sampler)
            driven = None
            if actor is not None:
                with clock("lips-from"):
                    from .motion.retarget import from_video

                    driven = from_video(lips_from, actor, pack, lp.n_out, info.fps, audio_duration, progress)
                    warnings.extend(driven.warnings)
            summary = _synthesise(out, info, lp, wav, feats, pack, track, style, engine, engines, crf, seed,
                                  sampling, preview, part, clock, progress, replace=overwrite,
                                  audio_frames=int(np.ceil(audio_duration * float(info.fps) - 1e-6)), driven=driven)
            if driven is not None:
                summary["lips_from"] = driven.summary()
    except BaseException as err:
        # an interruption, a full disk, a failed join: finished work is kept for the same command
        # to resume from (the CLI says so); with none yet, nothing is left behind
        if part is not None and part.has_work():
            err.resume_dir = str(part.dir)
        elif part is not None:
            part.remove()
        raise
    if part is not None:
        part.remove()
    summary["resumed"] = part is not None and resumed
    return dict({"output": str(out), "input": str(video), "audio": str(audio),
                 "style": str(style) if style is not None else "input"}, **summary,
                audio_duration=round(audio_duration, 3), faces_found=round(found, 4),
                length={"policy": length_policy, "note": lp.note, "padded_s": lp.padded_s, "trimmed_s": lp.trimmed_s},
                timings=dict(clock.times, total=round(time.perf_counter() - t0, 3)), warnings=warnings)


def _probe_lips_from(path: Path) -> VideoInfo:
    """VideoInfo of a --lips-from video; InputError for a photo (it has no motion to follow)."""
    from .media.probe import probe

    try:
        return probe(path)
    except StillImageError:
        raise InputError(f"{path}: --lips-from needs a video of the actor, not a still image") from None


def _analysis(video, info: VideoInfo, style, face, part, clock: _Clock, warnings: list, progress) -> tuple:
    """(FaceTrack, StylePack) of the input: from a resumed run's folder, or analysed now (and saved
    there). Adds the analysis' warnings."""
    saved = part.load_analysis() if part is not None else None
    if saved is not None:
        track, pack = saved
    else:
        from .audio.io import load_video_audio
        from .style import analyse_video

        with clock("style"):
            pack = _style_pack(style, progress) if style is not None else None
        with clock("analyse"):
            # only a style reference needs the input's own audio; no reference to it is kept here, so
            # analyse_video frees it (230 MB an hour) once its features are computed
            track, own_pack = analyse_video(info, load_video_audio(info) if style is None else None, face=face,
                                            want_pack=pack is None, template=None if pack is None else pack.template,
                                            progress=progress)
            _release_freed_memory()
            if track is None:
                raise NoFaceError(f"{video}: no face found in any frame")
            pack = own_pack if pack is None else pack
            if part is not None:
                part.save_analysis(track, pack)
    if style is None and not pack.meta.get("has_audio", True):
        warnings.append(f"{video}: has no audio of its own, so lips follow a generic style (give --style)")
    return track, pack


def _release_freed_memory() -> None:
    """Give memory freed inside the heap back to the system (glibc only; elsewhere a no-op):
    after the analysis of a long video, ~90k freed per-frame buffers would otherwise stay resident."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _synthesise(out: Path, info: VideoInfo, lp, wav: Path, feats: AudioFeatures, pack: StylePack,
                track: FaceTrack, style, engine: str, engines: dict, crf: int, seed: int, sampling: dict, preview,
                part, clock: _Clock, progress, replace: bool = True, audio_frames: int | None = None,
                driven=None) -> dict:
    """Motion → render → output with the audio in ``wav`` (and preview); returns that part of the summary.
    sampling: the neural renderer's device, seed, steps and sampler. replace: whether the output
    (and preview) may replace a file that appeared there meanwhile. audio_frames: output frames
    the new audio really covers (the rest is padded silence). driven: the actor's lips
    (lipdub.motion.retarget.DrivenLips) for --lips-from; the audio's motion fills its gaps."""
    device = sampling["device"]
    with clock("motion"):
        from .motion import predict

        kw = {"device": device} if engines["motion"] == "neural" else {}
        fitted = fitted_motion(style) if engine != "reference" else None
        if fitted is not None:  # `prepare-style --fit` tuned the motion model to this speaker
            engines["motion"], kw = "neural", {"device": device, "weights": fitted}
        if driven is None:
            motion = predict(feats, pack, engine=engines["motion"], seed=seed, **kw)
            motion = settle(motion, pack, feats.voiced, audio_frames, float(info.fps))
        else:
            motion = driven.motion(lambda: settle(predict(feats, pack, engine=engines["motion"], seed=seed, **kw),
                                                  pack, feats.voiced, audio_frames, float(info.fps)))
    with clock("render"):
        from .render import make_renderer

        kw = sampling if engines["render"] == "neural" else {}
        renderer = make_renderer(engines["render"], pack, track, motion, lp.src_index, **kw)
        moments = _preview_moments(lp.src_index, track, feats.voiced) if preview is not None else []
        if part is None:
            shots = _render_to(out, info, lp, renderer, wav, crf, moments, progress, replace)
        else:
            shots = _render_segments(out, part, info, lp, renderer, wav, crf, moments, progress, replace)
    if preview is not None:
        with clock("preview"):
            _write_contact_sheet(preview, shots, track, motion, lp.src_index, replace=replace)
    return {
        "engines": {"motion": motion.engine, "render": getattr(renderer, "engine", engines["render"])},
        "lip_lead_s": motion.lead_s,
        "frames": lp.n_out, "source_frames": info.n_frames, "fps": str(info.fps),
        "width": info.width, "height": info.height, "duration": round(lp.n_out / float(info.fps), 3),
        "speech_share": round(float(np.mean(feats.voiced >= 0.5)), 4) if len(feats) else 0.0,
        "speech_from": feats.speech_from,
        "preview": str(preview) if preview is not None else None,
    }


REST_RAMP = np.array([1, 2, 3, 2, 1], np.float64) / 3.0  # frames of the move into and out of rest
# A pause in the speech at least this long rests the mouth; shorter ones are the motion model's
# (resting every frame the voice detector calls silent lowered the motion r on ../shared/bench
# from 0.43 to 0.37: lips keep moving between words).
REST_PAUSE_S = 2.0


def settle(motion: LipMotion, pack: StylePack, voiced: np.ndarray, audio_frames: int | None = None,
           fps: float = 25.0) -> LipMotion:
    """What the warnings promise, whatever the motion engine: frames past the real end of the new
    audio (padded silence), pauses of REST_PAUSE_S or more, and every frame of audio with no speech
    at all rest at the speaker's resting lips,
    moving there and back over a few frames; a frame whose lips are not finite or lie far outside
    any shape the speaker's mouth can take (a prediction that blew up, e.g. on 0.1 s of audio) is
    brought back within reach of the rest shape. motion.lips [T, L, 2] canonical."""
    lips = np.array(motion.lips, np.float64, copy=True)
    T = len(lips)
    rest = np.asarray(pack.rest_lips, np.float64)
    if T == 0 or rest.shape != lips.shape[1:] or not np.isfinite(rest).all():
        return motion
    bad = ~np.isfinite(lips).all(axis=(1, 2))
    lips[bad] = rest
    # reach: how far each lip point may move from rest; generous (1.5x the speaker's own largest
    # moves, and never less than the mouth's width) so that only a blown-up prediction is touched
    dev = np.linalg.norm(np.asarray(pack.lips, np.float64) - rest, axis=2)  # [N, L]
    dev = dev[np.isfinite(dev).all(axis=1)]
    from .face.landmarks import mouth_width

    width = float(mouth_width(rest))
    reach = np.maximum(1.5 * (np.percentile(dev, 99, axis=0) if len(dev) else 0.0), width)
    d = lips - rest
    scale = np.minimum(1.0, np.min(reach / np.maximum(np.linalg.norm(d, axis=2), 1e-9), axis=1))
    lips = rest + d * scale[:, None, None]
    w = np.zeros(T)
    v = np.asarray(voiced, np.float64).reshape(-1)
    if len(v) >= T:
        w[_long_pauses(v[:T] < 0.5, max(1, int(round(REST_PAUSE_S * fps))))] = 1.0
    if audio_frames is not None:
        w[max(0, int(audio_frames)):] = 1.0
    if w.any():
        k = len(REST_RAMP) // 2
        ramp = np.convolve(np.pad(w, k, mode="edge"), REST_RAMP / REST_RAMP.sum() * 3 / 2, mode="valid")
        w = np.clip(np.maximum(w, ramp), 0.0, 1.0)
        lips = lips + (rest - lips) * w[:, None, None]
    from dataclasses import replace

    return replace(motion, lips=lips.astype(np.float32))


def _long_pauses(silent: np.ndarray, n: int) -> np.ndarray:
    """[T] bool: frames in runs of at least ``n`` silent frames (all of them when none is voiced)."""
    out = np.zeros(len(silent), bool)
    if silent.all():
        return ~out
    edges = np.flatnonzero(np.diff(np.r_[0, silent.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a >= n:
            out[a:b] = True
    return out


def _render_frames(frames, a: int, b: int, renderer, lp, writer, want: set, progress: Progress | None) -> dict:
    """Render output frames a..b-1 (``frames`` yields their source frames) into ``writer``.
    Returns {out_t: (source frame, dubbed frame)} for the output frames in ``want``."""
    from .media.frame import as_rgb

    shots = {}
    step = max(1, lp.n_out // 200)
    for t in range(a, b):
        frame = next(frames)
        dubbed = renderer.render(frame, t, int(lp.src_index[t]))
        writer.write(dubbed)
        if t in want:
            shots[t] = (as_rgb(frame).copy(), as_rgb(dubbed).copy())
        if progress and (t % step == 0 or t == lp.n_out - 1):
            progress("render", t + 1, lp.n_out)
    return shots


def _render_to(out: Path, info: VideoInfo, lp, renderer, wav: Path, crf: int,
               moments: list[int], progress: Progress | None, replace: bool = True) -> dict:
    """Stream source frames in schedule order through the renderer into one H.264 + AAC encode
    (the audio in ``wav`` goes in the same pass) and move the result to ``out``. Returns
    {out_t: (source frame, dubbed frame)} for the preview moments."""
    from .media.atomic import atomic_output
    from .media.video import VideoWriter, read_frames

    with atomic_output(out, replace=replace) as tmp_out:
        with VideoWriter(tmp_out, info.width, info.height, info.fps, crf=crf, like=info, audio=wav,
                         container=out.suffix) as writer, \
                contextlib.closing(read_frames(info, lp.src_index, yuv=True)) as frames:
            return _render_frames(frames, 0, lp.n_out, renderer, lp, writer, set(moments), progress)


def _render_segments(out: Path, part, info: VideoInfo, lp, renderer, wav: Path, crf: int,
                     moments: list[int], progress: Progress | None, replace: bool = True) -> dict:
    """As _render_to, resumably: the video is encoded in ``part``'s segments; finished ones (from
    an interrupted run) are kept and the renderer's running state is restored from the last of
    them, so every frame comes out as in an uninterrupted run. The segments are then joined with
    the new audio into ``out``. Returns the preview shots."""
    from .media.atomic import atomic_output
    from .media.mux import mux
    from .media.video import VideoWriter, read_frames

    shots: dict = {}
    done = part.segments_done()
    for k in range(done):
        state, got = part.load_state(k)
        shots.update(got)
    if done:
        renderer.comp.restore(state)
    start = part.bounds(done)[0]
    if progress and start:
        progress("render", start, lp.n_out)
    with contextlib.closing(read_frames(info, lp.src_index[start:], yuv=True)) as frames:
        for k in range(done, part.n_segments):
            a, b = part.bounds(k)
            b = min(b, lp.n_out)
            with atomic_output(part.segment(k)) as tmp:
                with VideoWriter(tmp, info.width, info.height, info.fps, crf=crf, like=info,
                                 container=".mp4") as writer:
                    got = _render_frames(frames, a, b, renderer, lp, writer, set(moments), progress)
                part.save_state(k, renderer.comp.state, got)
            shots.update(got)
    with atomic_output(out, replace=replace) as tmp_out:
        mux([part.segment(k) for k in range(part.n_segments)], wav, tmp_out, container=out.suffix)
    return shots


def _preview_moments(src_index: np.ndarray, track: FaceTrack, voiced: np.ndarray, k: int = PREVIEW_MOMENTS) -> list[int]:
    """Output frames to show in the preview: evenly spread over frames with a face, speech first."""
    has_face = np.asarray(track.found)[src_index]
    cand = np.flatnonzero(has_face & (np.asarray(voiced) >= 0.5))
    if len(cand) < k:
        cand = np.flatnonzero(has_face)
    if len(cand) == 0:
        cand = np.arange(len(src_index))
    pick = np.linspace(0, len(cand) - 1, min(k, len(cand)) + 2)[1:-1] if len(cand) > k else np.arange(len(cand))
    return sorted({int(cand[int(round(i))]) for i in pick})


def _write_contact_sheet(path: Path, shots: dict, track: FaceTrack, motion: LipMotion, src_index: np.ndarray,
                         cell: int = 256, replace: bool = True) -> None:
    """PNG: one column per moment; rows: source frame, dubbed frame, dubbed frame with the target
    lip shape drawn (green), all cropped around the face."""
    import cv2

    from .face.landmarks import INNER_LIPS, OUTER_LIPS
    from .media.atomic import atomic_output

    cols = []
    for t in sorted(shots):
        src, dub = shots[t]
        s = int(src_index[t])
        h, w = src.shape[:2]
        x0, y0, x1, y1 = 0, 0, w, h
        pts = np.asarray(track.points[s])
        if track.found[s] and np.isfinite(pts).all():
            (px0, py0), (px1, py1) = pts.min(0), pts.max(0)
            m = 0.25 * max(px1 - px0, py1 - py0)
            cx, cy, half = (px0 + px1) / 2, (py0 + py1) / 2, (max(px1 - px0, py1 - py0) / 2 + m)
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        drawn = np.ascontiguousarray(dub.copy())
        if track.found[s] and t < len(motion.lips):
            back = cv2.invertAffineTransform(np.asarray(track.to_canon[s], np.float64))
            lips = motion.lips[t].astype(np.float64) @ back[:, :2].T + back[:, 2]
            n_out = len(OUTER_LIPS)
            for ring in (lips[:n_out], lips[n_out:n_out + len(INNER_LIPS)]):
                if np.isfinite(ring).all():
                    cv2.polylines(drawn, [np.round(ring).astype(np.int32)], True, (0, 255, 0),
                                  max(1, int(round((x1 - x0) / 200))), cv2.LINE_AA)
        col = [cv2.resize(np.ascontiguousarray(im[y0:y1, x0:x1]), (cell, cell), interpolation=cv2.INTER_AREA)
               for im in (src, dub, drawn)]
        cols.append(np.concatenate(col, axis=0))
    if not cols:
        cols = [np.zeros((3 * cell, cell, 3), np.uint8)]
    sheet = np.concatenate(cols, axis=1)
    ok, data = cv2.imencode(path.suffix.lower(), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"{path}: could not write the preview image")
    with atomic_output(path, replace=replace) as tmp:
        tmp.write_bytes(data.tobytes())


def prepare_style(video, out=None, face=None, overwrite: bool = False, progress: Progress | None = None) -> dict:
    """Analyse ``video`` once and save its style pack (default <stem>.lipstyle beside it).
    Returns a summary dict (output, frames, exemplars, faces_found, timings)."""
    from .media.probe import check_readable

    t0 = time.perf_counter()
    video = check_readable(video, "video")
    out = check_output(video.with_suffix(".lipstyle") if out is None else out, overwrite, (video,),
                       (".lipstyle",), "style pack")
    with contextlib.ExitStack() as locks:
        _claim(locks, [out], overwrite)
        return _prepare_style(video, out, face, overwrite, progress, t0)


def _prepare_style(video: Path, out: Path, face, overwrite: bool, progress, t0: float) -> dict:
    from .audio.io import load_video_audio
    from .media.atomic import atomic_output
    from .media.probe import probe
    from .style import analyse_video, save_pack

    info = probe(video)
    own = load_video_audio(info)
    if own is None:
        raise InputError(f"{video}: has no audio track: a style reference needs the speaker's own speech")
    _, pack = analyse_video(info, own, face=face, progress=progress)
    if pack is None:
        raise NoFaceError(f"{video}: no face found in any frame")
    with atomic_output(out, replace=overwrite) as tmp:
        save_pack(pack, tmp)
    return {"output": str(out), "input": str(video), "frames": int(len(pack.lips)),
            "exemplars": int(len(pack.crops)), "fps": str(info.fps),
            "faces_found": round(float(np.isfinite(pack.lips[:, 0, 0]).mean()), 4),
            "timings": {"total": round(time.perf_counter() - t0, 3)}}
