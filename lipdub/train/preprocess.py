"""Training shards from a folder of talking-face videos (HDTF, VoxCeleb2 or LRS2 layouts).

One .npz shard per video: audio [N] int16 (the video's own speech, 16 kHz mono: speech features are
computed from it at training time, with augmentation), voiced [T], lips [T, 40, 2] (canonical, NaN
where no face), found [T], crops [K, S, S, 3] uint8, crop_index [K], crop_points [K, 468, 2],
canon_to_crop [2, 3], fps_num/fps_den, speaker, source. Speaker id: the ``speaker`` column of a
MANIFEST.tsv beside or inside VIDEOS_DIR (../shared/corpus has one), else the first folder under
VIDEOS_DIR (VoxCeleb2's id00012/…, LRS2's programme folder), else the file stem (HDTF).
Resumable: finished shards are skipped; a video that cannot be used gets a <name>.skip note with
the reason, so it is not retried. Shards are written to a temporary name and renamed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lipdub.errors import InputError, LipdubError

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm")


@dataclass
class PreprocessReport:
    written: list = field(default_factory=list)  # shard paths made by this run
    existing: int = 0  # shards already there (skipped)
    failed: list = field(default_factory=list)  # (video path, reason)


def find_videos(videos_dir: Path) -> list[Path]:
    return sorted(p for p in Path(videos_dir).rglob("*") if p.suffix.lower() in VIDEO_EXTS and p.is_file())


def manifest_speakers(root: Path) -> dict:
    """{clip name: speaker} from a MANIFEST.tsv (columns name ... speaker) in or beside ``root``."""
    for path in (root / "MANIFEST.tsv", root.parent / "MANIFEST.tsv"):
        if path.is_file():
            lines = [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if lines and "name" in lines[0] and "speaker" in lines[0]:
                i, j = lines[0].index("name"), lines[0].index("speaker")
                return {row[i]: row[j] for row in lines[1:] if len(row) > max(i, j)}
    return {}


def speaker_of(video: Path, root: Path, manifest: dict | None = None) -> str:
    if manifest and video.stem in manifest:
        return manifest[video.stem]
    rel = video.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else video.stem


def per_speaker(videos: list[Path], root: Path, manifest: dict, limit: int) -> list[Path]:
    """At most ``limit`` of each speaker's videos, evenly spread over their sorted order."""
    groups: dict = {}
    for v in videos:
        groups.setdefault(speaker_of(v, root, manifest), []).append(v)
    keep = set()
    for vs in groups.values():
        idx = np.linspace(0, len(vs) - 1, min(limit, len(vs))).round().astype(int)
        keep.update(vs[i] for i in idx)
    return [v for v in videos if v in keep]


def shard_name(video: Path, root: Path) -> str:
    return "__".join(video.relative_to(root).with_suffix("").parts)


def analyse(video: Path, with_crops: bool = True) -> dict:
    """Arrays of one shard (without speaker/source) for one video; raises LipdubError if unusable."""
    from lipdub.audio.io import load_video_audio
    from lipdub.media.probe import probe
    from lipdub.style import analyse_video

    info = probe(video)
    audio = load_video_audio(info)
    if audio is None:
        raise InputError(f"{video}: no audio stream")
    track, pack = analyse_video(info, audio, want_pack=True)
    if pack is None:
        raise InputError(f"{video}: no face found")
    samples = np.clip(np.round(audio.samples * 32767), -32768, 32767).astype(np.int16)
    arrays = dict(audio=samples, voiced=pack.voiced, lips=pack.lips.astype(np.float32),
                  found=np.asarray(track.found, bool), fps_num=np.int64(info.fps.numerator),
                  fps_den=np.int64(info.fps.denominator),
                  canon_to_crop=np.asarray(pack.meta["canon_to_crop"], np.float64))
    if with_crops:
        arrays.update(crops=pack.crops, crop_index=pack.crop_index, crop_points=pack.crop_points)
    else:
        arrays.update(crops=np.zeros((0, 1, 1, 3), np.uint8), crop_index=np.zeros(0, np.int64),
                      crop_points=np.zeros((0, 468, 2), np.float32))
    return arrays


def write_shard(path: Path, arrays: dict) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return path


def preprocess(videos_dir, out_dir, with_crops: bool = True, max_per_speaker: int = 0,
               progress: Callable[[str, int, int], None] | None = None) -> PreprocessReport:
    """Make one shard per video under videos_dir (recursive) in out_dir; see the module doc.
    max_per_speaker: keep at most this many videos of one speaker, evenly spread over their sorted
    names (0: all); variety of speakers matters far more than minutes of one."""
    root, out = Path(videos_dir), Path(out_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of videos")
    videos = find_videos(root)
    if not videos:
        raise InputError(f"{root}: no videos ({', '.join(VIDEO_EXTS)}) found")
    manifest = manifest_speakers(root)
    if max_per_speaker:
        videos = per_speaker(videos, root, manifest, max_per_speaker)
    out.mkdir(parents=True, exist_ok=True)
    report = PreprocessReport()
    for i, video in enumerate(videos):
        if progress:
            progress("preprocess", i, len(videos))
        name = shard_name(video, root)
        shard, skip = out / f"{name}.npz", out / f"{name}.skip"
        if shard.exists() or skip.exists():
            report.existing += 1
            continue
        try:
            arrays = analyse(video, with_crops)
        except LipdubError as e:
            skip.write_text(str(e) + "\n")
            report.failed.append((str(video), str(e)))
            continue
        arrays.update(speaker=np.str_(speaker_of(video, root, manifest)), source=np.str_(str(video.relative_to(root))))
        report.written.append(write_shard(shard, arrays))
    if progress:
        progress("preprocess", len(videos), len(videos))
    write_source(root, out, max_per_speaker)
    return report


def write_source(root: Path, out: Path, max_per_speaker: int = 0) -> Path:
    """OUT/source.json: where the shards come from (the videos folder, its MANIFEST.tsv's sha256,
    the per-speaker limit): trained weights record its hash."""
    import hashlib
    import json

    manifest = next((p for p in (root / "MANIFEST.tsv", root.parent / "MANIFEST.tsv") if p.is_file()), None)
    info = {"videos": Path(root).name, "max_per_speaker": max_per_speaker,
            "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest else None}
    path = Path(out) / "source.json"
    path.write_text(json.dumps(info, indent=1) + "\n")
    return path
