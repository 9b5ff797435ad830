"""Quality check of a dubbed video: lip sync against a truth video or against the audio, and image
figures for the mouth region (sharpness, flicker, seam), optionally relative to the source video.

Lip shapes come from the project's own landmarker and face tracker (lipdub.face), in canonical
face space, where the inter-ocular distance (IOD) is 1.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import InputError, NoFaceError
from .lagcorr import at_lags
from .lagcorr import corr as _corr
from .face.landmarks import EYES, JAW, LIPS, NOSE_TIP, UPPER_BOUND, mouth_opening
from .types import FaceTrack, VideoInfo

Progress = Callable[[str, int, int], None]
MAX_LAG = 8  # frames searched either way for the best lag
STILL = 1e-3  # IOD: a mouth opening whose standard deviation is below this counts as not moving
PSNR_CAP = 100.0  # dB, reported for identical pixels


def _track(info: VideoInfo, stage: str, progress: Progress | None, template=None) -> FaceTrack:
    """Landmarks of every frame -> smoothed face track (the speaking/largest face)."""
    from .face.detect import Detections, Landmarker
    from .face.track import build_track
    from .media.video import iter_frames

    lm = Landmarker()
    dets = Detections()
    try:
        for t, frame in enumerate(iter_frames(info, yuv=True)):
            dets.append(lm(frame))
            if progress and (t % 10 == 0 or t == info.n_frames - 1):
                progress(stage, t + 1, info.n_frames)
    finally:
        lm.close()
    track = build_track(dets, template=template)
    if track is None:
        raise NoFaceError(f"{info.path}: no face found in any frame")
    return track


def _opening(track: FaceTrack) -> np.ndarray:
    """[T] inner-lip opening in IOD, NaN where no face."""
    from .face.track import canonical_lips

    return mouth_opening(canonical_lips(track)).astype(np.float64)


def _best_lag(x: np.ndarray, y: np.ndarray, max_lag: int = MAX_LAG) -> tuple[int | None, float | None]:
    """(lag, correlation) maximising corr(x[t + lag], y[t]) over lag in -max_lag..max_lag (ties go
    to the smaller |lag|). lag > 0: x (the dubbed mouth) moves ``lag`` frames after y."""
    r = at_lags(x, y, max_lag)
    best: tuple[int | None, float | None] = (None, None)
    for i in sorted(range(len(r)), key=lambda i: abs(i - max_lag)):
        if np.isfinite(r[i]) and (best[1] is None or r[i] > best[1] + 1e-9):
            best = (i - max_lag, float(r[i]))
    return best


def _still(opening: np.ndarray) -> np.ndarray:
    """The opening itself, or zeros (no correlation) when the mouth does not move."""
    ok = np.isfinite(opening)
    if ok.sum() >= 2 and np.std(opening[ok]) < STILL:
        return np.where(ok, 0.0, np.nan)
    return opening


# --------------------------------------------------------------------------- image figures

def _regions(points: np.ndarray, shape) -> dict:
    """Mouth box, blend-border polygon and the row above the nose of one face (frame pixels)."""
    h, w = shape[:2]
    iod = float(np.linalg.norm(points[EYES[0]] - points[EYES[1]]))
    lips = points[LIPS]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    m = 0.2 * (x1 - x0)
    box = (max(0, int(x0 - m)), max(0, int(y0 - m)), min(w, int(np.ceil(x1 + m))), min(h, int(np.ceil(y1 + m))))
    upper = points[UPPER_BOUND].copy()
    upper[:, 1] = np.maximum(upper[:, 1], points[NOSE_TIP, 1])
    poly = np.concatenate([upper, points[JAW][::-1]])
    return {"box": box, "poly": poly, "iod": iod, "above": int(max(0, points[NOSE_TIP, 1] - 0.1 * iod))}


def _seam(gray: np.ndarray, poly: np.ndarray, iod: float) -> float | None:
    """Mean gradient magnitude within s px of the border divided by that in the bands s..3s px
    inside and outside it (s = max(2, 0.06 IOD)). About 1: no edge along the border."""
    import cv2

    s = max(2.0, 0.06 * iod)
    h, w = gray.shape
    pad = int(np.ceil(3 * s)) + 2
    x0, y0 = np.floor(poly.min(0)).astype(int) - pad
    x1, y1 = np.ceil(poly.max(0)).astype(int) + pad
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    roi = gray[y0:y1, x0:x1]
    inside = np.zeros(roi.shape, np.uint8)
    cv2.fillPoly(inside, [np.round(poly - [x0, y0]).astype(np.int32)], 1)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)
    dist = np.where(inside > 0, d_in, d_out)
    border = dist <= s
    near = (dist > s) & (dist <= 3 * s)
    if border.sum() < 10 or near.sum() < 10:
        return None
    g = np.hypot(cv2.Sobel(roi, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(roi, cv2.CV_32F, 0, 1, ksize=3))
    base = float(g[near].mean())
    return float(g[border].mean() / base) if base > 1e-6 else None


def _frame_figures(gray: np.ndarray, prev: np.ndarray | None, reg: dict) -> tuple[float, float, float]:
    """(sharpness, flicker, seam) of one grey frame (float32); NaN where not defined."""
    import cv2

    x0, y0, x1, y1 = reg["box"]
    if x1 - x0 < 3 or y1 - y0 < 3:
        return np.nan, np.nan, np.nan
    sharp = float(cv2.Laplacian(gray[y0:y1, x0:x1], cv2.CV_32F).var())
    flick = float(np.abs(gray[y0:y1, x0:x1] - prev[y0:y1, x0:x1]).mean()) if prev is not None else np.nan
    seam = _seam(gray, reg["poly"], reg["iod"])
    return sharp, flick, np.nan if seam is None else seam


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _image_pass(info: VideoInfo, track: FaceTrack, src: VideoInfo | None, progress: Progress | None) -> dict:
    """Per-frame figures [T, 3] of the dubbed video, of the source at the same places ([T, 3], NaN
    beyond the source) and the squared error above the nose (sum, count)."""
    import contextlib

    from .media.video import iter_frames

    T = info.n_frames
    dub_f = np.full((T, 3), np.nan)
    src_f = np.full((T, 3), np.nan)
    sse, count = 0.0, 0
    prev_d = prev_s = None
    with contextlib.closing(iter_frames(info)) as frames, \
            contextlib.closing(iter_frames(src) if src is not None else iter_frames(info, 0, 0)) as others:
        for t, frame in enumerate(frames):
            other = next(others, None)
            g = _gray(frame)
            found = t < len(track) and track.found[t] and np.isfinite(track.points[t]).all()
            reg = _regions(track.points[t], frame.shape) if found else None
            if reg is not None:
                dub_f[t] = _frame_figures(g, prev_d, reg)
            if other is not None:  # same size: checked by evaluate
                gs = _gray(other)
                if reg is not None:
                    src_f[t] = _frame_figures(gs, prev_s, reg)
                rows = reg["above"] if reg is not None else frame.shape[0]
                diff = frame[:rows].astype(np.float64) - other[:rows]
                sse, count = sse + float((diff * diff).sum()), count + diff.size
                prev_s = gs
            else:
                prev_s = None
            prev_d = g
            if progress and (t % 10 == 0 or t == T - 1):
                progress("images", t + 1, T)
    return {"dub": dub_f, "src": src_f, "sse": sse, "count": count}


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def _r(x, nd: int = 4):
    return None if x is None else round(float(x), nd)


# --------------------------------------------------------------------------- entry point

def evaluate(dubbed, truth=None, audio=None, source=None, progress: Progress | None = None) -> dict:
    """Quality figures of the video ``dubbed``. Returns a flat JSON-able dict; a figure that does
    not apply (or cannot be computed) is None.

    Always:
      frames, fps, faces_found (share of frames with a face, 0..1).
      sharpness: variance of the Laplacian of the grey image (0..255 levels, squared) in the mouth
        box (the lip landmarks' bounding box grown by 20 % of its width on every side), mean over
        frames. Higher is sharper.
      flicker: mean absolute grey-level change (0..255) from the previous frame in that box.
      seam: mean gradient magnitude within s px of the blend border (the cheek/nose line, no
        higher than the nose tip, above and the jaw line below: the region the renderer may
        change) divided by that in the bands s..3s px inside and outside it, s = max(2 px,
        0.06 IOD); unitless, about 1 when the border leaves no edge. A jaw or chin edge in the
        picture itself raises it too: compare with the source (seam_ratio).
    With ``truth`` (a video of the real lips, same timing):
      lmd: mean distance between corresponding lip landmarks (40 points) in canonical face space,
        in % of the inter-ocular distance (both videos aligned to the dubbed video's template).
      open_corr: Pearson correlation of the inner-lip opening of the two videos (-1..1).
      open_lag, open_lag_corr: the lag in frames (-8..8) maximising that correlation and its value;
        lag > 0: the dubbed mouth moves that many frames after the truth.
    Without ``truth``, or with ``audio`` (``audio``, else the dubbed file's own audio track):
      av_corr: Pearson correlation between the inner-lip opening and the 1-3 kHz loudness envelope
        of the audio per frame (-1..1); av_lag, av_lag_corr: best lag (frames, -8..8; > 0: the
        mouth moves after the sound) and the correlation there. A mouth whose opening varies by
        less than 0.001 IOD (standard deviation) counts as still: correlation 0.
    With ``source`` (the original input video; frame t of both is compared while both have one):
      sharpness_ratio, flicker_ratio, seam_ratio: the dubbed figure over the source's at the same
        places and frames (1: like the source); psnr_upper_db: PSNR in dB of the picture above
        the nose (the whole frame where no face was found), capped at 100 (identical pixels).
    Also: dubbed, truth, audio, source (paths or None) and warnings (list of strings).
    progress(stage, done, total) is called with stages "landmarks", "truth" and "images".
    Raises InputError or NoFaceError naming the file.
    """
    from .audio.io import load_audio, load_video_audio
    from .media.probe import probe

    # every input is checked before the landmark passes
    info = probe(dubbed)
    t_info = probe(truth) if truth is not None else None
    src = probe(source) if source is not None else None
    if src is not None and (src.width, src.height) != (info.width, info.height):
        raise InputError(f"{source}: frame size {src.width}x{src.height} differs from the dubbed video's "
                         f"{info.width}x{info.height}")
    track_audio = None
    if truth is None or audio is not None:
        track_audio = load_audio(audio, fps=info.fps) if audio is not None else load_video_audio(info)
    warnings: list[str] = []
    track = _track(info, "landmarks", progress)
    opening = _opening(track)
    res = {"dubbed": str(dubbed), "frames": info.n_frames, "fps": str(info.fps),
           "faces_found": _r(np.mean(track.found)), "truth": None, "audio": None, "source": None,
           "lmd": None, "open_corr": None, "open_lag": None, "open_lag_corr": None,
           "av_corr": None, "av_lag": None, "av_lag_corr": None}

    if truth is not None:
        from .face.track import canonical_lips

        t_track = _track(t_info, "truth", progress, template=track.template)
        n = min(len(track), len(t_track))
        if t_info.n_frames != info.n_frames:
            warnings.append(f"{truth}: {t_info.n_frames} frames, the dubbed video {info.n_frames}: "
                            f"compared the first {n}")
        a, b = canonical_lips(track)[:n], canonical_lips(t_track)[:n]
        both = track.found[:n] & t_track.found[:n]
        if both.any():
            res["lmd"] = _r(100.0 * np.linalg.norm(a[both] - b[both], axis=-1).mean())
        t_open = _still(_opening(t_track))
        d_open = _still(opening)
        res.update(truth=str(truth), open_corr=_r(_corr(d_open[:n], t_open[:n])))
        res["open_lag"], c = _best_lag(d_open[:n], t_open[:n])
        res["open_lag_corr"] = _r(c)
    if truth is None or audio is not None:
        from .audio.features import band_envelope

        if track_audio is None:
            warnings.append(f"{dubbed}: has no audio track and no --audio was given: no audio-mouth figures")
        else:
            n = info.n_frames
            env = band_envelope(track_audio, info.fps, n).astype(np.float64)
            mouth = _still(opening)[:n]
            res.update(audio=str(audio if audio is not None else dubbed), av_corr=_r(_corr(mouth, env)))
            res["av_lag"], c = _best_lag(mouth, env)
            res["av_lag_corr"] = _r(c)

    img = _image_pass(info, track, src, progress)
    for k, name in enumerate(("sharpness", "flicker", "seam")):
        res[name] = _r(_mean(img["dub"][:, k]))
        ratio = None
        if src is not None:
            both = np.isfinite(img["dub"][:, k]) & np.isfinite(img["src"][:, k])
            d, s = _mean(img["dub"][both, k]), _mean(img["src"][both, k])
            ratio = d / s if d is not None and s is not None and s > 1e-9 else None
        res[f"{name}_ratio"] = _r(ratio)
    res["psnr_upper_db"] = None
    if src is not None:
        res["source"] = str(source)
        if img["count"]:
            mse = img["sse"] / img["count"]
            res["psnr_upper_db"] = _r(min(PSNR_CAP, 10 * np.log10(255.0 ** 2 / mse)) if mse > 0 else PSNR_CAP, 2)
        if src.n_frames != info.n_frames:
            warnings.append(f"{source}: {src.n_frames} frames, the dubbed video {info.n_frames}: "
                            f"source figures use the first {min(src.n_frames, info.n_frames)}")
    if np.mean(track.found) < 1.0:
        warnings.append(f"{dubbed}: no face in {int(np.sum(~track.found))} of {len(track)} frames")
    res["warnings"] = warnings
    return res
