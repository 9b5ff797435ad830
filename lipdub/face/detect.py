"""Per-frame face landmarks from an offline landmarker whose model ships in its package.

MediaPipe face mesh (468 points) is the default backend. Frames are analysed at most
``MAX_SIDE`` pixels on their long side; landmarks come back in full-frame pixels.
"""
from __future__ import annotations

import contextlib
import mmap
import os
from array import array

import numpy as np


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ start-up chatter MediaPipe writes straight to file descriptor 2."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

MAX_SIDE = 1280
MAX_FACES = 4


def backend_name() -> str:
    return "mediapipe-facemesh"


def _import_face_mesh():
    """MediaPipe's face-mesh module. MediaPipe's package imports matplotlib.pyplot for drawing
    helpers lipdub never calls (0.4 s of every start-up); a stand-in serves that one import and
    is removed again at once, so a later ``import matplotlib.pyplot`` gets the real module."""
    import sys
    import types

    stub = None
    if "mediapipe" not in sys.modules and "matplotlib.pyplot" not in sys.modules:
        stub = sys.modules["matplotlib.pyplot"] = types.ModuleType("matplotlib.pyplot")
    try:
        from mediapipe.python.solutions import face_mesh
    finally:
        if stub is not None and sys.modules.get("matplotlib.pyplot") is stub:
            sys.modules.pop("matplotlib.pyplot", None)
    return face_mesh


class Landmarker:
    """Streaming landmarker: ``__call__(frame) -> [F, 468, 2]`` float32 pixel landmarks of every
    face found (F may be 0)."""

    def __init__(self, max_faces: int = MAX_FACES, min_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        face_mesh = _import_face_mesh()
        with _quiet_stderr():
            self._mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=max_faces,
                                            refine_landmarks=False, min_detection_confidence=min_confidence,
                                            min_tracking_confidence=0.5)
        self._calls = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        scale = min(1.0, MAX_SIDE / max(h, w))
        img = frame
        if scale < 1.0:
            import cv2

            img = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        self._calls += 1
        if self._calls <= 2:  # the graph finishes starting up (and logs) on the first frames
            with _quiet_stderr():
                res = self._mesh.process(np.ascontiguousarray(img))
        else:
            res = self._mesh.process(np.ascontiguousarray(img))
        if not res.multi_face_landmarks:
            return np.zeros((0, 468, 2), np.float32)
        out = np.array([[(p.x, p.y) for p in f.landmark[:468]] for f in res.multi_face_landmarks], np.float32)
        out *= np.array([w, h], np.float32)
        return out

    def close(self):
        self._mesh.close()


class Detections:
    """Every frame's landmarks ([F, 468, 2] float32, F may be 0), stored in large float32 blocks of
    ``BLOCK`` faces instead of one small array per frame: an hour of video is 90k frames, whose
    small arrays fragment the heap. ``append(faces)`` frame after frame; ``d[t]`` is frame t's
    faces (a view); ``release_before(t)`` frees every block holding only frames before t."""

    BLOCK = 2048  # faces per block (7.7 MB)

    def __init__(self):
        self._blocks: list[np.ndarray | None] = []
        self._used = self.BLOCK  # rows filled in the last block
        self._block, self._row, self._count = array("i"), array("i"), array("b")

    def append(self, faces: np.ndarray) -> None:
        n = len(faces)
        if self._used + n > self.BLOCK:
            # its own anonymous mapping: freeing a block gives its memory back to the system at once
            buf = mmap.mmap(-1, self.BLOCK * 468 * 2 * 4)
            self._blocks.append(np.frombuffer(buf, np.float32).reshape(self.BLOCK, 468, 2))
            self._used = 0
        if n:
            self._blocks[-1][self._used:self._used + n] = faces
        self._block.append(len(self._blocks) - 1)
        self._row.append(self._used)
        self._count.append(n)
        self._used += n

    def __len__(self) -> int:
        return len(self._count)

    def __getitem__(self, t: int) -> np.ndarray:
        if not self._count[t]:
            return np.zeros((0, 468, 2), np.float32)
        block = self._blocks[self._block[t]]
        if block is None:
            raise IndexError(f"frame {t}: its detections were released")
        r = self._row[t]
        return block[r:r + self._count[t]]

    def release_before(self, t: int) -> None:
        last = self._block[t] if t < len(self) else len(self._blocks)
        for b in range(last):
            self._blocks[b] = None
