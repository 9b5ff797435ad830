"""Runs the stages: probe → analyse → audio features → motion → render → encode → mux → move."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError, NoFaceError
from .types import StylePack

Progress = Callable[[str, int, int], None]
ENGINES = ("auto", "reference", "neural")


def default_output(video: Path) -> Path:
    return video.with_name(f"{video.stem}.dubbed.mp4")


def resolve_engines(engine: str) -> dict:
    """{"motion": ..., "render": ...} concrete engines for "auto" | "reference" | "neural"."""
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "reference":
        return {"motion": "reference", "render": "reference"}
    from .motion import neural as mn
    from .render import neural as rn

    if engine == "neural":
        return {"motion": "neural", "render": "neural"}  # missing weights raise when loaded
    return {"motion": "neural" if mn.available() else "reference",
            "render": "neural" if rn.available() else "reference"}


def _load_style(style, video_info, video_audio, progress) -> tuple[StylePack | None, object]:
    """(pack, track-of-style-video-or-None) for --style: a .lipstyle pack or another video."""
    from .media.probe import probe
    from .style import analyse_video, load_pack

    path = Path(style)
    if not path.exists():
        raise InputError(f"{path}: no such file (style reference)")
    if path.suffix == ".lipstyle":
        return load_pack(path), None
    info = probe(path)
    from .audio.io import load_video_audio

    track, pack = analyse_video(info, load_video_audio(info), progress=progress)
    if pack is None:
        raise NoFaceError(f"{path}: no face found in the style reference")
    return pack, track


def dub(video, audio, out=None, style=None, engine: str = "auto", face=None, length_policy: str = "pingpong",
        crf: int = 18, seed: int = 0, device: str = "cpu", overwrite: bool = False,
        progress: Progress | None = None) -> dict:
    """Dub ``video`` with ``audio``; returns a summary dict (see the CLI's --json)."""
    from .audio.io import load_audio, load_video_audio
    from .audio.vad import is_silent
    from .media.output import atomic_output, check_writable, mux
    from .media.probe import probe
    from .length import fit_audio, plan

    t_start = time.time()
    timings: dict[str, float] = {}
    video, audio = Path(video), Path(audio)
    out = Path(out) if out else default_output(video)
    info = probe(video)
    if style is not None and not Path(style).exists():
        raise InputError(f"{style}: no such file (style reference)")
    check_writable(out, overwrite, inputs=(video, audio, style))
    engines = resolve_engines(engine)
    new_audio = load_audio(audio, fps=info.fps)
    warnings: list[str] = []
    if is_silent(new_audio):
        warnings.append(f"{audio}: the audio is silent: the mouth stays closed")
    lp = plan(info.n_frames, len(new_audio.samples), info.fps, new_audio.sample_rate, length_policy)
    sched = lp.src_index
    if lp.padded_s or lp.trimmed_s or lp.n_out != info.n_frames:
        warnings.append(lp.note)
    timings["probe"] = time.time() - t_start

    from .style import analyse_video

    t = time.time()
    own_audio = load_video_audio(info)
    pack = None
    if style is None:
        track, pack = analyse_video(info, own_audio, face=face, progress=progress)
        if pack is not None and not pack.meta.get("has_audio"):
            warnings.append(f"{video}: has no speech of its own: lips follow a generic style (give --style)")
    else:
        pack, _ = _load_style(style, info, own_audio, progress)
        track, _ = analyse_video(info, None, face=face, want_pack=False, template=pack.template, progress=progress)
    if track is None:
        raise NoFaceError(f"{video}: no face found in any frame")
    found_share = float(track.found.mean())
    if found_share < 1:
        warnings.append(f"{video}: no face in {int((~track.found).sum())} of {len(track)} frames: they pass through unchanged")
    timings["analyse"] = time.time() - t

    t = time.time()
    from .audio.features import frame_features
    from .motion import predict
    from .render import make_renderer

    n_out = len(sched)
    samples = fit_audio(new_audio.samples, lp.audio_samples)
    from .types import AudioTrack

    out_audio = AudioTrack(samples, new_audio.sample_rate, new_audio.source)
    feats = frame_features(out_audio, info.fps, n_out)
    motion = predict(feats, pack, engine=engines["motion"], seed=seed)
    renderer = make_renderer(engines["render"], pack, track, motion, sched)
    timings["motion"] = time.time() - t

    t = time.time()
    from .media.video import VideoWriter, read_frames

    with atomic_output(out) as tmp_final:
        tmp_video = tmp_final.with_name(tmp_final.stem + ".video.mp4")
        try:
            with VideoWriter(tmp_video, info.width, info.height, info.fps, crf=crf) as writer:
                for k, frame in enumerate(read_frames(info, sched)):
                    writer.write(renderer.render(frame, k, int(sched[k])))
                    if progress and k % 10 == 0:
                        progress("render", k + 1, n_out)
            if progress:
                progress("render", n_out, n_out)
            mux(tmp_video, out_audio, tmp_final)
        finally:
            tmp_video.unlink(missing_ok=True)
    timings["render"] = time.time() - t
    return {"output": str(out), "input": str(video), "audio": str(audio), "style": str(style) if style else "input",
            "engines": {"motion": motion.engine, "render": getattr(renderer, "engine", engines["render"])},
            "frames": n_out, "fps": str(info.fps), "size": [info.width, info.height],
            "faces_found": round(found_share, 4), "seconds": round(n_out / float(info.fps), 3),
            "length_policy": length_policy, "warnings": warnings,
            "timings": {k: round(v, 3) for k, v in timings.items()}, "wall": round(time.time() - t_start, 3)}


def prepare_style(video, out=None, face=None, overwrite: bool = False, progress: Progress | None = None) -> dict:
    """Analyse ``video`` once and save its style pack (.lipstyle)."""
    from .audio.io import load_video_audio
    from .media.output import check_writable
    from .media.probe import probe
    from .style import analyse_video, save_pack

    video = Path(video)
    out = Path(out) if out else video.with_suffix(".lipstyle")
    info = probe(video)
    check_writable(out, overwrite, inputs=(video,))
    own = load_video_audio(info)
    if own is None:
        raise InputError(f"{video}: has no audio track: a style reference needs the speaker's own speech")
    _, pack = analyse_video(info, own, face=face, progress=progress)
    if pack is None:
        raise NoFaceError(f"{video}: no face found in any frame")
    save_pack(pack, out)
    return {"output": str(out), "frames": int(len(pack.lips)), "exemplars": int(len(pack.crops)),
            "faces_found": round(float(np.isfinite(pack.lips[:, 0, 0]).mean()), 4)}
