"""Per-frame face landmarks from an offline landmarker whose model ships in its package.

MediaPipe face mesh (468 points), one single-face mesh per face, each fed a crop around its face
(so the landmark model sees a small face in a 4K frame as it sees a close-up, and no full frame
is resized per frame); MediaPipe's face detectors find the faces. Landmarks come back in
full-frame pixels.
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

MAX_FACES = 4
SCAN_EVERY = 25  # frames between looks for faces that are not tracked yet
SMALL_EVERY = 5  # while no face is tracked, frames between looks for small faces
SCAN_SIDE = 1920  # long side of a frame searched for new faces (larger frames are shrunk first)
CROP_FACES = 2.5  # a tracked face is landmarked in a square crop this many face sizes wide...
CROP_SIDE = 480  # ...shrunk to at most this many pixels (the face at 192: as the landmark model sees it)
RECENTRE = 0.15  # the crop stays put until the face moves or grows by this share of its size
SAME_FACE = 0.5  # two faces whose centres are closer than this share of their size are one face


def backend_name() -> str:
    return "mediapipe-facemesh"


# Modules MediaPipe's package imports for parts lipdub never calls (drawing helpers: matplotlib;
# the Tasks API: audio, sounddevice): 1.2 s of every start-up. Stand-ins serve those imports and
# are removed again at once, so that a later import of any of them gets the real module.
_UNUSED = ("matplotlib", "matplotlib.pyplot", "mediapipe.tasks", "mediapipe.tasks.python")


def _import_solutions():
    """MediaPipe's face-mesh and face-detection modules, imported without _UNUSED."""
    import sys
    import types

    stubs = {}
    if "mediapipe" not in sys.modules:
        stubs = {name: types.ModuleType(name) for name in _UNUSED if name not in sys.modules}
        sys.modules.update(stubs)
    try:
        from mediapipe.python.solutions import face_detection, face_mesh
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
    return face_mesh, face_detection


def _box(points: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, size): the square around a face's landmarks (or detection box corners)."""
    lo, hi = points.min(0), points.max(0)
    return float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, float(max(hi - lo))


def _same(a: tuple, b: tuple) -> bool:
    return np.hypot(a[0] - b[0], a[1] - b[1]) < SAME_FACE * max(a[2], b[2])


class _Tracker:
    """One face followed from frame to frame: a single-face mesh in tracking mode, fed a crop
    centred on where the face was in the previous frame (so the face keeps its place and size in
    what the mesh sees, whatever the frame size)."""

    def __init__(self, face_mesh, box: tuple):
        self.mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                       min_detection_confidence=0.5, min_tracking_confidence=0.5)
        self.box = self.crop_box = box

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """[468, 2] frame-pixel landmarks, or None when the face is lost."""
        import cv2

        from ..media.frame import region

        h, w = frame.shape[:2]
        cx, cy, size = self.crop_box
        side = int(round(min(CROP_FACES * size, max(h, w))))  # inside the frame where it fits
        x0 = int(np.clip(round(cx - side / 2), 0, w - side)) if side <= w else (w - side) // 2
        y0 = int(np.clip(round(cy - side / 2), 0, h - side)) if side <= h else (h - side) // 2
        bx0, by0 = max(0, x0), max(0, y0)
        bx1, by1 = min(w, x0 + side), min(h, y0 + side)
        crop = np.ascontiguousarray(region(frame, bx0, by0, bx1, by1))
        if crop.shape[:2] != (side, side):  # a frame narrower than the crop: its edges repeated
            crop = cv2.copyMakeBorder(crop, by0 - y0, y0 + side - by1, bx0 - x0, x0 + side - bx1, cv2.BORDER_REPLICATE)
        n = min(CROP_SIDE, side)
        if n < side:
            crop = cv2.resize(crop, (n, n), interpolation=cv2.INTER_AREA)
        res = self.mesh.process(crop)
        if not res.multi_face_landmarks:
            return None
        pts = np.array([(p.x, p.y) for p in res.multi_face_landmarks[0].landmark[:468]], np.float32)
        pts = pts * np.float32(side) + np.array([x0, y0], np.float32)
        box = _box(pts)
        if not _same(box, self.box):  # jumped to another face in the crop
            return None
        self.box = box
        ox, oy, _ = self.crop_box
        if np.hypot(box[0] - ox, box[1] - oy) > RECENTRE * size or abs(box[2] - size) > RECENTRE * size:
            self.crop_box = box
        return pts

    def close(self):
        self.mesh.close()


class Landmarker:
    """Streaming landmarker for the frames of one video, in order: ``__call__(frame) -> [F, 468, 2]``
    float32 pixel landmarks of every face found (F may be 0, at most ``max_faces``) in an RGB
    array or a lipdub.media.frame.YuvFrame.

    Each face is tracked in a crop around it (lipdub.face.detect._Tracker). The whole frame is
    searched for faces not tracked yet on the first frame, every SCAN_EVERY frames, when a face is
    lost and on every frame while none is tracked: by the short-range face detector (faces that
    fill much of the frame) and, when it finds nothing new, the full-range one (small faces in a
    wide or 4K frame; while no face is tracked, every SMALL_EVERY frames)."""

    def __init__(self, max_faces: int = MAX_FACES, min_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        self._face_mesh, self._face_detection = _import_solutions()
        self.max_faces, self.min_confidence = max_faces, min_confidence
        self._detectors: dict[int, object] = {}  # 0: short range, 1: full range; made when first needed
        self._trackers: list[_Tracker] = []
        self._calls = 0

    def _scan(self, frame: np.ndarray, full_range: bool) -> list[tuple]:
        """Boxes of faces in ``frame`` that no tracker follows (full_range: look for small faces
        too when there are no new large ones)."""
        import cv2

        from ..media.frame import as_rgb

        frame = as_rgb(frame)
        h, w = frame.shape[:2]
        scale = min(1.0, SCAN_SIDE / max(h, w))
        img = frame if scale == 1.0 else cv2.resize(frame, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img)
        tracked = [t.box for t in self._trackers]
        for k in (0, 1) if full_range else (0,):
            if k not in self._detectors:
                self._detectors[k] = self._face_detection.FaceDetection(model_selection=k,
                                                                        min_detection_confidence=self.min_confidence)
            found = []
            for d in self._detectors[k].process(img).detections or []:
                b = d.location_data.relative_bounding_box
                box = (w * (b.xmin + b.width / 2), h * (b.ymin + b.height / 2), max(w * b.width, h * b.height))
                if box[2] > 0 and not any(_same(box, o) for o in tracked + found):
                    found.append(box)
            if found:
                return found
        return []

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self._calls += 1
        with _quiet_stderr() if self._calls <= 2 else contextlib.nullcontext():  # start-up logs
            n = len(self._trackers)
            self._trackers, faces = self._follow(frame, self._trackers, [])
            if len(self._trackers) < n or not self._trackers or self._calls % SCAN_EVERY == 1:
                # the full-range detector costs two of the short-range one: every few frames only
                full_range = len(self._trackers) < n or self._calls % SMALL_EVERY == 1
                boxes = self._scan(frame, full_range)[:self.max_faces - len(self._trackers)]
                new, more = self._follow(frame, [_Tracker(self._face_mesh, b) for b in boxes], self._trackers)
                self._trackers, faces = self._trackers + new, faces + more
        return np.stack(faces) if faces else np.zeros((0, 468, 2), np.float32)

    @staticmethod
    def _follow(frame: np.ndarray, trackers: list, others: list) -> tuple[list, list]:
        """(trackers that still find their face in ``frame``, those faces' landmarks). A tracker
        that lost its face, or is on the face of one of ``others`` or of an earlier tracker, is closed."""
        kept, faces = [], []
        for tr in trackers:
            pts = tr(frame)
            if pts is None or any(_same(tr.box, k.box) for k in others + kept):
                tr.close()
                continue
            kept.append(tr)
            faces.append(pts)
        return kept, faces

    def close(self):
        for tr in self._trackers:
            tr.close()
        self._trackers = []
        for det in self._detectors.values():
            det.close()
        self._detectors = {}


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
