"""Resumable long dubs. A `lipdub run` whose output is longer than RESUME_AFTER_S keeps its work
in a hidden folder beside the output, ``.<output name>.lipdub-partial/``:

- ``key``: a hash of the inputs (paths, sizes, modification times) and of every option that
  changes the result; a folder with another key is stale and is started afresh;
- ``analysis.npz``: the face track and the style pack, once the analysis pass is done;
- ``seg_00000.mp4``, ...: the video in segments of SEGMENT_S seconds (video only, identical
  encoder settings), each with ``seg_00000.npz``: the renderer's running state after it and the
  preview shots taken in it. Both are written under temporary names and renamed when complete.

Rerunning the same command reuses the analysis and every finished segment, renders the rest,
joins the segments (stream copy) with the new audio into the output and removes the folder.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from .media.atomic import atomic_output
from .types import FaceTrack, StylePack

RESUME_AFTER_S = 120.0  # outputs longer than this are rendered resumably
SEGMENT_S = 60.0  # seconds of video per segment
VERSION = 1  # of the folder's layout


def partial_dir(out) -> Path:
    from .media.atomic import hidden_name

    return hidden_name(out, "lipdub-partial")


def run_key(inputs, options: dict) -> str:
    """sha256 of the input files' resolved paths, sizes and modification times, and ``options``."""
    files = []
    for p in inputs:
        if p is not None:
            st = Path(p).stat()
            files.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    from . import __version__

    blob = json.dumps({"version": [VERSION, __version__], "files": files, "options": options},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def wanted(n_frames: int, fps) -> bool:
    """Whether an output of ``n_frames`` at ``fps`` is long enough to be rendered resumably."""
    return n_frames / float(fps) > RESUME_AFTER_S


class PartialRun:
    """The work folder of the run writing ``out`` from the files ``inputs`` with ``options``."""

    def __init__(self, out, inputs, options: dict, n_frames: int, fps):
        self.dir = partial_dir(out)
        self.seg_frames = max(1, int(round(SEGMENT_S * float(fps))))
        self.n_segments = -(-int(n_frames) // self.seg_frames)
        self.key = run_key(inputs, dict(options, segment_frames=self.seg_frames))

    def open(self) -> bool:
        """Use the folder when its key matches (True: a resumed run); otherwise (none, or a stale
        one from other inputs or options) start it empty."""
        key_file = self.dir / "key"
        if self.dir.is_dir():
            try:
                if key_file.read_text() == self.key:
                    from .media.atomic import clean_stale

                    clean_stale(self.dir)  # temporary files of a killed run
                    return True
            except OSError:
                pass
            self.remove()
        self.dir.mkdir()
        key_file.write_text(self.key)
        return False

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def has_work(self) -> bool:
        """Anything worth resuming from: the analysis or a finished segment."""
        return (self.dir / "analysis.npz").exists() or self.segments_done() > 0

    # --- analysis ------------------------------------------------------------------------------
    def save_analysis(self, track: FaceTrack, pack: StylePack) -> None:
        arrays = {f"track_{k}": getattr(track, k) for k in _TRACK_ARRAYS if getattr(track, k) is not None}
        arrays.update({f"pack_{k}": getattr(pack, k) for k in _PACK_ARRAYS})
        meta = {"meta": pack.meta, "fps": [pack.fps.numerator, pack.fps.denominator]}
        arrays["pack_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        with atomic_output(self.dir / "analysis.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def load_analysis(self) -> tuple[FaceTrack, StylePack] | None:
        path = self.dir / "analysis.npz"
        if not path.exists():
            return None
        with np.load(path) as z:
            track = FaceTrack(**{k: z[f"track_{k}"] for k in _TRACK_ARRAYS if f"track_{k}" in z.files})
            meta = json.loads(z["pack_json"].tobytes())
            pack = StylePack(fps=Fraction(*meta["fps"]), meta=meta["meta"],
                             **{k: z[f"pack_{k}"] for k in _PACK_ARRAYS})
        return track, pack

    # --- segments ------------------------------------------------------------------------------
    def bounds(self, k: int) -> tuple[int, int]:
        """Output frames [a, b) of segment k."""
        return k * self.seg_frames, (k + 1) * self.seg_frames

    def segment(self, k: int) -> Path:
        return self.dir / f"seg_{k:05d}.mp4"

    def segments_done(self) -> int:
        """How many segments, from the first, are finished (video and state both present)."""
        k = 0
        while k < self.n_segments and self.segment(k).exists() and self.segment(k).with_suffix(".npz").exists():
            k += 1
        return k

    def save_state(self, k: int, state: np.ndarray, shots: dict) -> None:
        """The renderer's running state after segment k and the preview shots taken in it
        ({out_t: (source frame, dubbed frame)}); call before the segment itself is renamed."""
        arrays = {"state": np.asarray(state)}
        for t, (src, dub) in shots.items():
            arrays[f"src_{t}"], arrays[f"dub_{t}"] = src, dub
        with atomic_output(self.segment(k).with_suffix(".npz")) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def load_state(self, k: int) -> tuple[np.ndarray, dict]:
        """(state after segment k, preview shots taken in it)."""
        with np.load(self.segment(k).with_suffix(".npz")) as z:
            shots = {int(n[4:]): (z[n], z[f"dub_{n[4:]}"]) for n in z.files if n.startswith("src_")}
            return z["state"], shots


_TRACK_ARRAYS = ("points", "found", "to_canon", "template", "held")
_PACK_ARRAYS = ("feats", "voiced", "lips", "pose", "rest_lips", "template", "crops", "crop_index", "crop_points")
