"""The style reference: analyse a video once (landmarks, lips, audio features, mouth exemplars)
and store it as a ``.lipstyle`` pack that loads in well under a second."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..face import geometry as G
from ..face.align import CropSpace
from ..face.landmarks import EYES, LIPS, RIGID, mouth_opening
from ..face.track import build_track, canonical_lips, head_pose
from ..types import AudioTrack, FaceTrack, StylePack, VideoInfo

FORMAT_VERSION = 3  # 3: speech features are Whisper states (float16)
MAX_EXEMPLARS = 1200  # mouth crops kept in memory; longer videos keep every k-th frame
EXEMPLAR_BYTES = 160 << 20  # at most this much memory of crops (large faces keep fewer frames)
PACK_EXEMPLARS = 400  # mouth crops stored in a .lipstyle file (the most varied ones)
Progress = Callable[[str, int, int], None]


def _normalised(points: np.ndarray) -> np.ndarray:
    iod = np.linalg.norm(points[EYES[0]] - points[EYES[1]])
    return (points - points[RIGID].mean(0)) / iod


class _Exemplars:
    """Bounded reservoir of mouth crops: every ``stride``-th frame, stride doubling when full
    (full = MAX_EXEMPLARS crops or EXEMPLAR_BYTES of them, whichever comes first)."""

    def __init__(self, limit: int = MAX_EXEMPLARS):
        self.limit, self.stride = limit, 1
        self.items: dict[int, tuple] = {}  # frame -> (crop, crop-pixel points, frame points)

    def wants(self, t: int) -> bool:
        return t % self.stride == 0

    def add(self, t: int, crop: np.ndarray, points: np.ndarray, raw: np.ndarray):
        self.items[t] = (crop, points, raw.copy())  # raw: a copy, not a view of the frame's detections
        if len(self.items) > min(self.limit, EXEMPLAR_BYTES // crop.nbytes):
            self.stride *= 2
            self.items = {k: v for k, v in self.items.items() if k % self.stride == 0}


def source_hash(path: Path, limit: int = 64 << 20) -> str:
    """sha256 of the file's first ``limit`` bytes and its size."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(limit))
    h.update(str(path.stat().st_size).encode())
    return h.hexdigest()


def analyse_video(info: VideoInfo, audio: AudioTrack | None, face=None, want_pack: bool = True,
                  template: np.ndarray | None = None, progress: Progress | None = None
                  ) -> tuple[FaceTrack | None, StylePack | None]:
    """One decode pass over ``info``: the face track and (want_pack) the style pack.

    audio: the video's own speech (None: the pack has no audio-lip pairs and motion falls back to
    the generic prior); pass it without keeping a reference, so it is freed once its features are
    computed. template: canonical space to use (a style pack's, so that lips of two
    videos are comparable). Returns (None, None) when no face is found in any frame.
    """
    from ..face.detect import Detections, Landmarker
    from ..media.frame import change, held, same_picture
    from ..media.video import iter_frames

    voiced = feats = own = None
    if audio is not None and info.n_frames:
        from ..audio.features import frame_features
        from ..background import beside

        own = beside(frame_features, audio, info.fps, info.n_frames)  # iter_frames yields exactly n_frames
        del audio
    lm = Landmarker()
    dets = Detections()
    ex = _Exemplars()
    space: CropSpace | None = None
    tmpl = template
    prev = faces = None
    changes = []
    try:
        for t, frame in enumerate(iter_frames(info, yuv=True)):
            if not same_picture(frame, prev):  # a held frame (a photo, a freeze) has the same faces
                faces = lm(frame)
            changes.append(change(frame, prev, _faces_box(faces, frame.shape)) if len(faces) else np.inf)
            prev = frame
            dets.append(faces)
            if want_pack and len(faces):
                f = faces[int(np.argmax(np.linalg.norm(faces[:, EYES[0]] - faces[:, EYES[1]], axis=1)))]
                if tmpl is None:
                    tmpl = _normalised(f).astype(np.float32)
                if space is None:
                    space = CropSpace.from_template(tmpl, float(np.linalg.norm(f[EYES[0]] - f[EYES[1]])))
                if ex.wants(t):
                    ex.add(t, *_crop(frame, f, tmpl, space), f)
            if progress and t % 10 == 0:
                progress("analyse", t + 1, info.n_frames)
    finally:
        lm.close()
    if progress:
        progress("analyse", len(dets), len(dets))
    if own is not None:
        af = own.result()
        feats, voiced = af.feats, af.voiced
        del af, own
    if tmpl is None and template is None:
        first = next((dets[t] for t in range(len(dets)) if len(dets[t])), None)
        if first is not None:
            tmpl = _normalised(first[0]).astype(np.float32)
    track = build_track(dets, face=face, voiced=voiced, template=tmpl)
    if track is None:
        return None, None
    track = replace(track, held=held(np.asarray(changes)))
    if not want_pack:
        return track, None
    if sum(_same_face(raw, track, t) for t, (_, _, raw) in ex.items.items()) < 0.5 * track.found.sum() / ex.stride:
        # the reservoir holds the largest face, but --face (or the speaking face) chose another
        ex, space = _recrop(info, track, tmpl)
    return track, _make_pack(info, track, ex, space, feats, voiced)


def _faces_box(faces: np.ndarray, shape) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around every face of [F, 468, 2] landmarks, within a frame of ``shape``."""
    pts = faces.reshape(-1, 2)
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int), 0)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    return int(x0), int(y0), int(min(x1, shape[1])), int(min(y1, shape[0]))


def _crop(frame: np.ndarray, f: np.ndarray, tmpl: np.ndarray, space: CropSpace) -> tuple[np.ndarray, np.ndarray]:
    """(mouth crop, face points in crop pixels) of the face with frame landmarks ``f``."""
    import cv2

    from ..media.frame import warp

    to_crop = space.frame_to_crop(G.fit_similarity(f[RIGID], tmpl[RIGID]))
    crop = warp(frame, to_crop, (space.size, space.size), flags=cv2.INTER_CUBIC)
    return crop, G.apply(to_crop, f).astype(np.float32)


def _same_face(raw: np.ndarray, track: FaceTrack, t: int) -> bool:
    return bool(track.found[t]) and np.median(np.linalg.norm(raw - track.points[t], axis=1)) < 0.2 * _iod_px(track, t)


def _recrop(info: VideoInfo, track: FaceTrack, tmpl: np.ndarray) -> tuple["_Exemplars", CropSpace]:
    """A second decode pass that takes the mouth exemplars from the tracked face."""
    from ..media.video import iter_frames

    found = np.flatnonzero(track.found)
    space = CropSpace.from_template(tmpl, float(np.median([_iod_px(track, t) for t in found])))
    ex = _Exemplars()
    for t, frame in enumerate(iter_frames(info, yuv=True)):
        if track.found[t] and ex.wants(t):
            ex.add(t, *_crop(frame, track.points[t], tmpl, space), track.points[t])
    return ex, space


def _make_pack(info, track, ex, space, feats, voiced) -> StylePack:
    T = len(track)
    keep_t, crops, cpts = [], [], []
    for t, (crop, pts, raw) in sorted(ex.items.items()):
        # the reservoir held the largest face; keep it only where that is the tracked face
        if _same_face(raw, track, t):
            keep_t.append(t)
            crops.append(crop)
            # the exemplar's points are the track's (steadied over time), placed in the crop as
            # the frame's own points placed it: the renderer puts them where the track puts the
            # face, so a frame's own mouth lands back where it was instead of shaking by the
            # landmarker's jitter
            to_crop = G.fit_similarity(raw[RIGID], pts[RIGID])  # exactly _crop's frame-to-crop map
            cpts.append(G.apply(to_crop, track.points[t]).astype(np.float32))
    lips = canonical_lips(track)
    if feats is None:
        feats = np.zeros((T, 0), np.float16)
        voiced = np.zeros(T, np.float32)
    return StylePack(
        feats=feats.astype(np.float16), voiced=voiced.astype(np.float32), lips=lips.astype(np.float32),
        pose=head_pose(track), rest_lips=rest_shape(lips, voiced), template=track.template,
        crops=np.asarray(crops, np.uint8).reshape(-1, space.size, space.size, 3),
        crop_index=np.asarray(keep_t, np.int64), crop_points=np.asarray(cpts, np.float32).reshape(-1, 468, 2),
        fps=Fraction(info.fps),
        meta={"version": FORMAT_VERSION, "source": Path(info.path).name, "sha256": source_hash(Path(info.path)),
              "canon_to_crop": space.canon_to_crop.tolist(), "crop_size": space.size,
              "frames": T, "has_audio": bool(feats.shape[1])})


def _iod_px(track: FaceTrack, t: int) -> float:
    p = track.points[t]
    return float(np.linalg.norm(p[EYES[0]] - p[EYES[1]]))


def rest_shape(lips: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """[40, 2] the speaker's resting lips: median of silent frames with the mouth nearly closed."""
    ok = np.isfinite(lips[:, 0, 0])
    op = mouth_opening(lips)
    cand = ok & (voiced < 0.5) if voiced is not None and len(voiced) == len(lips) else ok
    if cand.sum() < 3:
        cand = ok
    thr = np.nanpercentile(op[cand], 25)
    sel = cand & (op <= thr)
    return np.median(lips[sel], axis=0).astype(np.float32)


def crop_space(pack: StylePack) -> CropSpace:
    return CropSpace(np.asarray(pack.meta["canon_to_crop"], np.float64), int(pack.meta["crop_size"]))


# --- .lipstyle files: a zip of .npy arrays, crops as JPEG, meta.json ---------------------------
_ARRAYS = ("feats", "voiced", "lips", "pose", "rest_lips", "template", "crop_index", "crop_points")


def diverse(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of k rows of points [N, D] chosen by farthest-point sampling (sorted)."""
    if len(points) <= k:
        return np.arange(len(points))
    chosen = [int(np.argmin(np.linalg.norm(points - points.mean(0), axis=1)))]
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(k - 1):
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(points - points[j], axis=1))
    return np.sort(np.asarray(chosen))


def shrink(pack: StylePack, k: int = PACK_EXEMPLARS) -> StylePack:
    """The pack with at most k exemplars, chosen to cover the speaker's lip shapes and poses."""
    if len(pack.crops) <= k:
        return pack
    from dataclasses import replace

    key = np.concatenate([pack.crop_points[:, LIPS].reshape(len(pack.crops), -1) / pack.meta["crop_size"],
                          np.nan_to_num(pack.pose[pack.crop_index])], 1)
    keep = diverse(key, k)
    return replace(pack, crops=pack.crops[keep], crop_index=pack.crop_index[keep], crop_points=pack.crop_points[keep])


def save_pack(pack: StylePack, path) -> Path:
    """Write ``pack`` to ``path`` (a .lipstyle zip) atomically, keeping its PACK_EXEMPLARS most
    varied exemplars (JPEG, quality 95) so that it loads in well under a second."""
    import cv2

    path = Path(path)
    pack = shrink(pack)
    from ..media.atomic import temp_name

    tmp = temp_name(path)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            meta = dict(pack.meta, fps=[pack.fps.numerator, pack.fps.denominator], n_crops=len(pack.crops))
            z.writestr("meta.json", json.dumps(meta))
            for name in _ARRAYS:
                buf = io.BytesIO()
                np.save(buf, getattr(pack, name))
                z.writestr(f"{name}.npy", buf.getvalue())
            for i, crop in enumerate(pack.crops):
                ok, jpg = cv2.imencode(".jpg", crop[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
                z.writestr(f"crops/{i:05d}.jpg", jpg.tobytes())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# A pack is untrusted input: every field, shape and count is checked against the archive before
# anything is allocated (a pack that claims 10^9 exemplars is refused, not allocated).
MAX_PACK_CROPS = 20000
MAX_CROP_SIZE = 1024
MAX_PACK_BYTES = 2 << 30  # decoded arrays and crops together
_DTYPES = {"feats": "f", "voiced": "f", "lips": "f", "pose": "f", "rest_lips": "f", "template": "f",
           "crop_index": "iu", "crop_points": "f"}


class _Bad(Exception):
    pass


def _meta_int(meta: dict, key: str, lo: int, hi: int) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f"meta.json: {key} is {'missing' if v is None else repr(v)}, not a whole number")
    if not lo <= v <= hi:
        raise _Bad(f"meta.json: {key} {v} is outside {lo}..{hi}")
    return v


def _read_meta(z: zipfile.ZipFile) -> tuple[dict, Fraction, int, int]:
    info = z.getinfo("meta.json")
    if info.file_size > 1 << 20:
        raise _Bad("meta.json is larger than 1 MB")
    meta = json.loads(z.read(info))
    if not isinstance(meta, dict):
        raise _Bad("meta.json is not a JSON object")
    if meta.get("version") != FORMAT_VERSION:
        old = isinstance(meta.get("version"), int) and meta["version"] < FORMAT_VERSION
        raise InputError(f"style pack format version {meta.get('version')} is not supported (this lipdub reads "
                         f"version {FORMAT_VERSION}{', with Whisper speech features' if old else ''}); "
                         "run lipdub prepare-style again")
    fps = meta.get("fps")
    if (not isinstance(fps, list) or len(fps) != 2 or not all(isinstance(x, int) and not isinstance(x, bool)
                                                            and 0 < x <= 1_000_000 for x in fps)
            or not 0.5 <= fps[0] / fps[1] <= 1000):
        raise _Bad(f"meta.json: fps is {'missing' if fps is None else repr(fps)}, not [numerator, denominator]")
    n = _meta_int(meta, "n_crops", 0, MAX_PACK_CROPS)
    size = _meta_int(meta, "crop_size", 8, MAX_CROP_SIZE)
    c2c = meta.get("canon_to_crop")
    try:
        ok = np.asarray(c2c, np.float64).shape == (2, 3) and np.isfinite(np.asarray(c2c, np.float64)).all()
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise _Bad("meta.json: canon_to_crop is not a 2x3 matrix of numbers")
    return meta, Fraction(*fps), n, size


def _read_array(z: zipfile.ZipFile, name: str) -> np.ndarray:
    """One .npy member, its header checked (dtype, size against the archive) before it is read."""
    info = z.getinfo(f"{name}.npy")
    with z.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise _Bad(f"{name}.npy: unknown .npy version {version}")
        except ValueError as e:
            raise _Bad(f"{name}.npy: not a numpy array ({e})") from None
    if dtype.hasobject or dtype.kind not in _DTYPES[name]:
        raise _Bad(f"{name}.npy: holds {dtype}, not numbers of the expected kind")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > MAX_PACK_BYTES or nbytes > info.file_size:
        raise _Bad(f"{name}.npy: claims {shape} ({nbytes} bytes) but holds {info.file_size} bytes")
    try:
        return np.load(io.BytesIO(z.read(info)), allow_pickle=False)
    except ValueError as e:
        raise _Bad(f"{name}.npy: not a numpy array ({e})") from None


def _check_shapes(a: dict, n: int) -> None:
    N = len(a["lips"]) if a["lips"].ndim else 0
    L = len(LIPS)
    want = {"lips": (N, L, 2), "voiced": (N,), "pose": (N, 3), "rest_lips": (L, 2), "crop_index": (n,)}
    for key, shape in want.items():
        if a[key].shape != shape:
            raise _Bad(f"{key}.npy has shape {a[key].shape}, expected {shape}")
    if N < 1:
        raise _Bad("it holds no reference frames")
    if a["feats"].ndim != 2 or len(a["feats"]) != N:
        raise _Bad(f"feats.npy has shape {a['feats'].shape}, expected ({N}, D)")
    P = a["template"].shape[0] if a["template"].ndim == 2 else -1
    if a["template"].shape != (P, 2) or P <= max(LIPS):
        raise _Bad(f"template.npy has shape {a['template'].shape}, expected (P, 2) face points")
    if a["crop_points"].shape != (n, P, 2):
        raise _Bad(f"crop_points.npy has shape {a['crop_points'].shape}, expected ({n}, {P}, 2)")
    for key in ("rest_lips", "template", "crop_points"):
        if not np.isfinite(a[key]).all():
            raise _Bad(f"{key}.npy holds NaN or infinite values")
    if n and (a["crop_index"].min() < 0 or a["crop_index"].max() >= N):
        raise _Bad(f"crop_index.npy points outside the {N} reference frames")


def load_pack(path) -> StylePack:
    """Read a .lipstyle pack; InputError naming the file and saying what is wrong when it is not
    one, of another version, or inconsistent (a pack is untrusted input: see MAX_PACK_BYTES)."""
    import cv2

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            meta, fps, n, s = _read_meta(z)
            if n * s * s * 3 > MAX_PACK_BYTES:
                raise _Bad(f"{n} exemplars of {s}x{s} pixels are more than this lipdub loads")
            names = set(z.namelist())
            missing = [f"crops/{i:05d}.jpg" for i in range(n) if f"crops/{i:05d}.jpg" not in names]
            if missing:
                raise _Bad(f"meta.json claims {n} mouth images but {missing[0]} is missing")
            arrays = {name: _read_array(z, name) for name in _ARRAYS}
            _check_shapes(arrays, n)
            crops = np.empty((n, s, s, 3), np.uint8)
            for i in range(n):
                info = z.getinfo(f"crops/{i:05d}.jpg")
                if info.file_size > 64 << 20:
                    raise _Bad(f"crops/{i:05d}.jpg is larger than 64 MB")
                img = cv2.imdecode(np.frombuffer(z.read(info), np.uint8), cv2.IMREAD_COLOR)
                if img is None or img.shape != (s, s, 3):
                    what = "not a readable JPEG" if img is None else f"{img.shape[1]}x{img.shape[0]}, not {s}x{s}"
                    raise _Bad(f"mouth image crops/{i:05d}.jpg is {what}")
                crops[i] = img
            if n:
                cv2.cvtColor(crops.reshape(-1, s, 3), cv2.COLOR_BGR2RGB, crops.reshape(-1, s, 3))
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    except _Bad as e:
        raise InputError(f"{path}: damaged or not a lipdub style pack: {e}") from None
    except KeyError as e:  # a member the pack must hold
        raise InputError(f"{path}: damaged or not a lipdub style pack: {e.args[0]}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, json.JSONDecodeError, EOFError, OSError,
            NotImplementedError, RuntimeError, MemoryError) as e:
        raise InputError(f"{path}: not a lipdub style pack ({e.__class__.__name__}: {e})") from None
    meta = {k: v for k, v in meta.items() if k not in ("fps", "n_crops")}
    return StylePack(crops=crops, fps=fps, meta=meta, **arrays)
