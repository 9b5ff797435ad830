"""Reference renderer: draws the mouth from the speaker's own exemplar images.

1. Choose one exemplar per output frame by lip shape and head pose, with temporal coherence
   (a Viterbi shortest path that prefers continuing the exemplar's own video over jumping).
2. Warp it (thin-plate spline in crop space) so its lips land on the target lips, its cheeks on
   the target's cheeks and its jaw where the new mouth opening puts it.
3. Match its colour to the target frame along the blend border, then blend with a feathered
   mask bounded by the cheeks and nose above and the jaw line below. Outside the mask the source
   frame is left exactly as it was. The warp and the crop-to-frame transform are composed into a
   single resampling of the exemplar so the mouth stays sharp.
4. When the exemplars never open as wide as the target (a still photo), the inner mouth is
   synthesised: a dark oral cavity with an upper-teeth band inside the target's inner lips.
"""
from __future__ import annotations

import numpy as np
from ..smooth import gaussian_smooth

from ..face import geometry as G
from ..face.landmarks import CHIN, INNER_LIPS, JAW, LIPS, LOWER_MID, NOSE_TIP, UPPER_BOUND, UPPER_MID, mouth_opening
from ..face.track import canonical_lips, head_pose
from ..style.pack import crop_space
from ..types import FaceTrack, LipMotion, StylePack
from .warp import coarse_map, tps_fit

LIP_SIGMA = 0.03  # canonical units (inter-ocular distance = 1)
POSE_SIGMA = 0.06
SWITCH_COST = 6.0  # cost of jumping to a non-consecutive exemplar, in unary units
CANDIDATES = 24
WARP_LIPS = list(range(0, 20, 2)) + list(range(20, 40))  # positions in LIPS used as warp controls
UPPER_INNER = list(range(30, 40))  # positions in LIPS of the upper inner lip (corner to corner)
STILL_SPREAD = 0.03  # exemplar openings vary less than this (canonical units): a still photo


def cap_opening(lips: np.ndarray, cap: float) -> np.ndarray:
    """[T,40,2] lips whose inner opening is at most ``cap``: the lower lip is raised by the excess."""
    op = mouth_opening(lips)
    excess = np.maximum(op - cap, 0.0)
    if not excess.any():
        return lips
    out = lips.copy()
    lower = lips[:, :, 1] > lips[:, :, 1].mean(1, keepdims=True)  # points below each mouth's midline
    out[:, :, 1] -= lower * excess[:, None]
    return out


def choose_exemplars(target: np.ndarray, target_pose: np.ndarray, ex_lips: np.ndarray,
                     ex_pose: np.ndarray, ex_frame: np.ndarray) -> np.ndarray:
    """Viterbi path over exemplars: [T] indices into ex_lips.

    target [T,40,2] and ex_lips [K,40,2] canonical lips; target_pose [T,3], ex_pose [K,3];
    ex_frame [K] source frame of each exemplar (consecutive frames continue without cost)."""
    T, K = len(target), len(ex_lips)
    d_lip = ((target[:, None] - ex_lips[None]) ** 2).sum(-1).mean(-1) / LIP_SIGMA ** 2
    d_pose = ((target_pose[:, None, :2] - ex_pose[None, :, :2]) ** 2).sum(-1) / POSE_SIGMA ** 2
    unary = d_lip + np.nan_to_num(d_pose, nan=0.0)
    c = min(CANDIDATES, K)
    cand = np.argpartition(unary, c - 1, axis=1)[:, :c]  # [T, c]
    cost = unary[0, cand[0]]
    back = np.zeros((T, c), np.int64)
    for t in range(1, T):
        prev, cur = cand[t - 1], cand[t]
        follows = (ex_frame[cur][None, :] - ex_frame[prev][:, None])
        trans = np.where((follows == 1) | (follows == 0), 0.0, SWITCH_COST)  # [c_prev, c_cur]
        tot = cost[:, None] + trans
        back[t] = np.argmin(tot, 0)
        cost = tot[back[t], np.arange(c)] + unary[t, cur]
    path = np.zeros(T, np.int64)
    j = int(np.argmin(cost))
    for t in range(T - 1, -1, -1):
        path[t] = cand[t, j]
        j = back[t, j]
    return path


class ExemplarRenderer:
    """render(frame, out_t, src_t) -> frame with the mouth redrawn for motion frame out_t."""

    engine = "reference"

    def __init__(self, pack: StylePack, track: FaceTrack, motion: LipMotion, schedule: np.ndarray):
        if len(pack.crops) == 0:
            raise ValueError("style pack has no mouth exemplars")
        self.pack, self.track = pack, track
        self.space = crop_space(pack)
        inv = G.invert(self.space.canon_to_crop)
        ex_lips = G.apply(inv, pack.crop_points[:, LIPS].astype(np.float64))  # [K,40,2] canonical
        self.ex_open = mouth_opening(ex_lips)
        narrowest, widest = np.percentile(self.ex_open, [2, 98])
        lips = motion.lips.astype(np.float64)
        # Within the speaker's own range the mouth comes from real exemplars; a reference whose
        # mouth never moves (a still photo) gets a synthesised inner mouth instead of a cap.
        self.still = widest - narrowest < STILL_SPREAD
        self.lips = lips if self.still else cap_opening(lips, widest * 1.15)
        tpose = head_pose(track)[np.asarray(schedule)]
        # the source's own lower lip, steadied: the jaw follows the change from it to the new lips
        own = canonical_lips(track)[:, LOWER_MID]
        ok = np.isfinite(own[:, 0])
        if ok.any():
            own[~ok] = own[ok].mean(0)
            own = gaussian_smooth(own, 2.0)
        self.own_lower = own
        self.path = choose_exemplars(self.lips, tpose, ex_lips, pack.pose[pack.crop_index], pack.crop_index)
        self._colour = None

    def render(self, frame: np.ndarray, out_t: int, src_t: int) -> np.ndarray:
        import cv2

        tr = self.track
        if src_t >= len(tr) or not tr.found[src_t] or out_t >= len(self.lips):
            return frame
        k = int(self.path[out_t])
        to_crop = self.space.frame_to_crop(tr.to_canon[src_t])
        tgt = G.apply(to_crop, tr.points[src_t].astype(np.float64))  # target face, crop pixels
        lips = self.space.canon_to_pixels(self.lips[out_t])
        ex = self.pack.crop_points[k].astype(np.float64)
        # control points: target position (dst) <- exemplar position (src)
        drop = lips[LOWER_MID, 1] - self.space.canon_to_pixels(self.own_lower[src_t][None])[0, 1]
        chin_w = np.exp(-((np.arange(len(JAW)) - JAW.index(CHIN)) / 5.0) ** 2)
        jaw_dst = tgt[JAW] + np.c_[np.zeros(len(JAW)), drop * 0.7 * chin_w]
        # every inner-lip point, every other outer-lip and anchor point: enough for a smooth warp
        dst = np.concatenate([lips[WARP_LIPS], tgt[UPPER_BOUND[::2]], jaw_dst[::2]])
        src = np.concatenate([ex[LIPS][WARP_LIPS], ex[UPPER_BOUND[::2]], ex[JAW[::2]]])
        ex_gap = ex[LIPS][LOWER_MID, 1] - ex[LIPS][UPPER_MID, 1]
        if self.still and lips[LOWER_MID, 1] - lips[UPPER_MID, 1] > ex_gap + 1:
            # the photo's own mouth interior (its teeth) rides with the upper lip, unstretched;
            # only the newly opened band below it is stretched, and painted as the oral cavity
            up_ex, up_tgt = ex[LIPS][UPPER_INNER], lips[UPPER_INNER]
            hang = np.c_[np.zeros(len(UPPER_INNER)), np.full(len(UPPER_INNER), 0.8 * max(ex_gap, 0.0))]
            dst = np.concatenate([dst, up_tgt[1:-1] + hang[1:-1]])
            src = np.concatenate([src, up_ex[1:-1] + hang[1:-1]])
        S = self.space.size
        corners = np.array([[0, 0], [S, 0], [0, S], [S, S], [S / 2, 0], [0, S / 2], [S, S / 2], [S / 2, S]], float)
        model = tps_fit(np.concatenate([dst, corners]), np.concatenate([src, corners]))
        mx, my, step = coarse_map(model, S)

        # region of the frame that can change: the mask polygon in frame pixels
        back = self.space.crop_to_frame(tr.to_canon[src_t])
        jaw_low = np.maximum(jaw_dst, tgt[JAW])
        centre = tgt[LIPS].mean(0)
        jaw_low = centre + (jaw_low - centre) * 1.06
        upper = tgt[UPPER_BOUND].copy()  # never above the nose tip: the upper face stays untouched
        upper[:, 1] = np.maximum(upper[:, 1], tgt[NOSE_TIP, 1] + 0.03 * self.space.size)
        poly = G.apply(back, np.concatenate([upper, jaw_low[::-1]]))
        H, W = frame.shape[:2]
        pad = 4
        x0, y0 = np.floor(poly.min(0)).astype(int) - pad
        x1, y1 = np.ceil(poly.max(0)).astype(int) + pad
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return frame
        roi = frame[y0:y1, x0:x1]
        # one resampling of the exemplar: ROI pixel -> crop pixel (affine) -> exemplar pixel (TPS);
        # the affine step is a warpAffine of the coarse TPS maps themselves
        roi_to_grid = G.compose(np.array([[1 / step, 0, 0], [0, 1 / step, 0]]),
                                G.compose(to_crop, np.array([[1.0, 0, x0], [0, 1.0, y0]])))
        size, flags = (x1 - x0, y1 - y0), cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        ex_x = cv2.warpAffine(mx, roi_to_grid, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        ex_y = cv2.warpAffine(my, roi_to_grid, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        warped = cv2.remap(self.pack.crops[k], ex_x, ex_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)

        face_px = float(np.linalg.norm(poly.max(0) - poly.min(0)))
        mask = np.zeros(roi.shape[:2], np.float32)
        cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 1.0)
        sig = max(1.5, face_px / 40)
        r = max(1, int(sig))
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1)))
        mask = cv2.GaussianBlur(mask, (0, 0), sig)

        out = warped.astype(np.float32)
        gap = lips[LOWER_MID, 1] - lips[UPPER_MID, 1]
        if self.still and gap > ex_gap + 1:
            inner = G.apply(back, lips[len(INNER_LIPS):]) - [x0, y0]
            out = self._synth_mouth(out, inner, keep=max(ex_gap, 0.0) / gap)
        roi_f = roi.astype(np.float32)
        out = self._match_colour(out, roi_f, mask)
        blended = roi_f + mask[..., None] * (out - roi_f)
        res = frame.copy()
        res[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return res

    def _match_colour(self, out: np.ndarray, roi: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Shift the exemplar's colour to the target's along the feathered border (smoothed in time)."""
        sub = (slice(None, None, 2), slice(None, None, 2))  # every other pixel is plenty for a mean
        band = (mask[sub] > 0.02) & (mask[sub] < 0.7)
        if band.sum() < 10:
            return out
        off = roi[sub][band].mean(0) - out[sub][band].mean(0)
        self._colour = off if self._colour is None else 0.7 * self._colour + 0.3 * off
        return out + self._colour

    @staticmethod
    def _synth_mouth(out: np.ndarray, inner: np.ndarray, keep: float) -> np.ndarray:
        """Paint the oral cavity inside the inner-lip polygon (ROI pixels) below the part of the
        opening (``keep``, a share of its height from the upper lip) that the photo itself shows."""
        import cv2

        m = np.zeros(out.shape[:2], np.float32)
        cv2.fillPoly(m, [np.round(inner).astype(np.int32)], 1.0)
        if m.sum() < 4:
            return out
        light = np.percentile(out[m > 0].mean(1), 90)
        cavity = np.array([72.0, 30.0, 30.0]) * min(1.2, max(0.5, light / 200))
        upper = inner[10:]  # upper inner lip, right corner to left corner
        order = np.argsort(upper[:, 0])
        top = np.interp(np.arange(out.shape[1]), upper[order, 0], upper[order, 1])
        height = max(np.ptp(inner[:, 1]), 1.0)
        rows = np.arange(out.shape[0])[:, None]
        t = np.clip((rows - top[None] - keep * height) / max(0.15 * height, 1.0) + 0.5, 0, 1)[..., None]
        m = cv2.GaussianBlur(m, (0, 0), max(0.6, 0.08 * height))[..., None] * t
        return out * (1 - m) + cavity * m
