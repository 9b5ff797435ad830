"""Turn per-frame detections into one smoothed face track with canonical-space transforms."""
from __future__ import annotations

import numpy as np
from ..smooth import gaussian_smooth

from ..errors import InputError
from ..types import FaceTrack
from . import geometry as G
from .landmarks import EYES, LIPS, NOSE_TIP, RIGID, mouth_opening

MAX_GAP = 4  # frames without a detection that are bridged by interpolation


def _centres(faces: np.ndarray) -> np.ndarray:
    return faces[:, RIGID].mean(1)


def _iod(faces: np.ndarray) -> np.ndarray:
    return np.linalg.norm(faces[..., EYES[0], :] - faces[..., EYES[1], :], axis=-1)


def _link(detections) -> list[np.ndarray]:
    """Greedy association of detections into tracks: list of [T, 468, 2] arrays (NaN = absent).
    Detections are released once linked (a list's entries set to None, a Detections' blocks
    freed), so the detections and the tracks are not both held in full (an hour of video is
    ~340 MB of landmarks per copy)."""
    T = len(detections)
    tracks: list[np.ndarray] = []
    last: list[tuple[int, np.ndarray, float]] = []  # (frame, centre, iod) per track
    for t in range(T):
        faces = detections[t]
        if isinstance(detections, list):
            detections[t] = None
        else:
            detections.release_before(t)
        taken = set()
        if faces is not None and len(faces):
            cs, iods = _centres(faces), _iod(faces)
            for i in np.argsort(-iods):
                best, best_d = None, np.inf
                for k, (tk, ck, sk) in enumerate(last):
                    if k in taken or tk == t:
                        continue
                    d = np.linalg.norm(cs[i] - ck) / max(sk, 1.0)
                    if d < 1.5 and d < best_d and t - tk <= 30:
                        best, best_d = k, d
                if best is None:
                    # rows are written frame by frame, so a track's memory fills in as the
                    # detections' blocks are freed (np.empty touches no page)
                    tracks.append(np.empty((T, 468, 2), np.float32))
                    tracks[-1][:t] = np.nan
                    last.append((t, cs[i], iods[i]))
                    best = len(tracks) - 1
                tracks[best][t] = faces[i]
                last[best] = (t, cs[i], iods[i])
                taken.add(best)
        for k, track in enumerate(tracks):
            if k not in taken:
                track[t] = np.nan
    return tracks


def choose(tracks: list[np.ndarray], face: str | int | None, voiced: np.ndarray | None = None) -> np.ndarray:
    """Pick one track. face: None/"auto" (the one speaking, else the largest), "largest",
    "speaking", or an int: the n-th face from the left (0-based) in the first frame it appears."""
    if not tracks:
        raise ValueError("no tracks")
    present = [np.isfinite(tr[:, 0, 0]) for tr in tracks]
    # Ignore fleeting tracks (false detections) when a sustained one exists.
    share = np.array([p.mean() for p in present])
    keep = [i for i in range(len(tracks)) if share[i] >= 0.2 * share.max()]
    if isinstance(face, int) or (isinstance(face, str) and face.isdigit()):
        n = int(face)
        order = sorted(keep, key=lambda i: float(np.nanmedian(tracks[i][:, RIGID, 0])))
        if n >= len(order):
            raise InputError(f"--face {n}: only {len(order)} face(s) found (numbered from 0, left to right)")
        return tracks[order[n]]
    size = np.array([np.nanmedian(_iod(tracks[i])) * present[i].mean() for i in keep])
    if face in (None, "auto", "speaking") and len(keep) > 1:
        act = []
        for i in keep:
            op = mouth_opening(tracks[i][:, LIPS]) / np.maximum(_iod(tracks[i]), 1e-6)
            ok = np.isfinite(op)
            if voiced is not None and ok.sum() > 10 and np.nanstd(op) > 0:
                v = voiced[: len(op)]
                m = ok[: len(v)]
                act.append(abs(np.corrcoef(op[: len(v)][m], v[m])[0, 1]) if v[m].std() > 0 else 0.0)
            else:
                act.append(float(np.nanstd(np.diff(op))) if ok.sum() > 2 else 0.0)
        act = np.nan_to_num(np.array(act))
        if act.max() > 1.5 * np.sort(act)[-2] and act.max() > 0:
            return tracks[keep[int(np.argmax(act))]]
    if face not in (None, "auto", "speaking", "largest"):
        raise InputError(f"--face {face!r}: use auto, largest, speaking or a face number (0 = leftmost)")
    return tracks[keep[int(np.argmax(size))]]


def _fill_gaps(points: np.ndarray) -> np.ndarray:
    """Interpolate, in place, gaps of up to MAX_GAP frames between detections."""
    found = np.isfinite(points[:, 0, 0])
    idx = np.flatnonzero(found)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= MAX_GAP + 1:
            w = (np.arange(a + 1, b) - a) / (b - a)
            points[a + 1:b] = (1 - w)[:, None, None] * points[a] + w[:, None, None] * points[b]
    return points


def _smooth(x: np.ndarray, found: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along time within each run of found frames (in place)."""
    out = x
    if sigma <= 0:
        return out
    t = 0
    while t < len(found):
        if not found[t]:
            t += 1
            continue
        e = t
        while e < len(found) and found[e]:
            e += 1
        if e - t > 1:
            gaussian_smooth(out[t:e], sigma, inplace=True)
        t = e
    return out


def make_template(points: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Procrustes mean face [468, 2]: inter-ocular distance 1, rigid points centred on 0."""
    good = points[found]
    ref = good[len(good) // 2]
    for _ in range(2):
        ref = (ref - ref[RIGID].mean(0)) / np.linalg.norm(ref[EYES[0]] - ref[EYES[1]])
        step = max(1, len(good) // 200)
        aligned = [G.apply(G.fit_similarity(p[RIGID], ref[RIGID]), p) for p in good[::step]]
        ref = np.mean(aligned, axis=0)
    ref = (ref - ref[RIGID].mean(0)) / np.linalg.norm(ref[EYES[0]] - ref[EYES[1]])
    return ref.astype(np.float32)


def build_track(detections, face: str | int | None = None,
                voiced: np.ndarray | None = None, template: np.ndarray | None = None) -> FaceTrack | None:
    """Link, choose, bridge and smooth detections into a FaceTrack (None when no face at all).

    detections: per frame [F, 468, 2] pixel landmarks (a list or a lipdub.face.detect.Detections),
    released as it is consumed. voiced: [T] speech activity of the video's own audio, used to tell the
    speaking face. template: reuse a speaker's template.
    """
    tracks = _link(detections)
    if not tracks:
        return None
    pts = _fill_gaps(choose(tracks, face, voiced))
    found = np.isfinite(pts[:, 0, 0])
    if template is None:
        template = make_template(pts, found)
    T = len(pts)
    to_canon = np.full((T, 2, 3), np.nan, np.float32)
    for t in np.flatnonzero(found):
        to_canon[t] = G.fit_similarity(pts[t, RIGID], template[RIGID])
    # Pose and points alike (sigma 1.2 frames, zero phase, so no lag): less of the landmarks'
    # jitter reaches the warp that places the new mouth (dubbed mouths flickered more at 0.7).
    to_canon = _smooth(to_canon, found, 1.2)
    pts = _smooth(pts, found, 1.2)
    return FaceTrack(points=pts, found=found, to_canon=to_canon, template=template)


def canonical_points(track: FaceTrack, idx=None) -> np.ndarray:
    """[T, P, 2] landmarks (or the subset idx) in canonical space, NaN where no face."""
    pts = track.points if idx is None else track.points[:, idx]
    return G.apply(track.to_canon, pts)


def canonical_lips(track: FaceTrack) -> np.ndarray:
    """[T, 40, 2] canonical lip shapes."""
    return canonical_points(track, LIPS)


def head_pose(track: FaceTrack) -> np.ndarray:
    """[T, 3] pose proxies (yaw, pitch, roll) from the canonical landmark geometry."""
    nose = canonical_points(track, [NOSE_TIP])[:, 0] - track.template[NOSE_TIP]
    roll = np.arctan2(track.to_canon[:, 1, 0], track.to_canon[:, 0, 0])
    return np.stack([nose[:, 0], nose[:, 1], roll], axis=1).astype(np.float32)
