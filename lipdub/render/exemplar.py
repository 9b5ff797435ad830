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
   synthesised: upper teeth (the photo's own where it shows them) over a dark oral cavity.
"""
from __future__ import annotations

import numpy as np
from ..smooth import gaussian_smooth

from ..face import geometry as G
from ..face.landmarks import CHIN, INNER_LIPS, JAW, OUTER_LIPS, LIPS, LOWER_LIP, LOWER_MID, UPPER_BOUND, UPPER_MID, mouth_opening
from ..face.track import canonical_points, head_pose
from ..style.pack import crop_space
from ..types import FaceTrack, LipMotion, StylePack
from . import composite
from .warp import coarse_map, tps_fit

LIP_SIGMA = 0.03  # canonical units (inter-ocular distance = 1)
POSE_SIGMA = 0.06
OPEN_SIGMA = 0.005  # inner-lip opening below the target's, canonical units (above it counts half)
SWITCH_COST = 20.0  # cost of jumping to a non-consecutive exemplar, in unary units
CANDIDATES = 24
FADE = 2  # frames of cross-fade after a jump to another exemplar
CHIN_WEIGHT = np.exp(-((np.arange(len(JAW)) - JAW.index(CHIN)) / 5.0) ** 2)  # how much each jaw point drops
WARP_LIPS = list(range(0, 20, 2)) + list(range(20, 40))  # positions in LIPS used as warp controls
UPPER_INNER = list(range(30, 40))  # positions in LIPS of the upper inner lip (corner to corner)
STILL_SPREAD = 0.03  # exemplar openings vary less than this (canonical units): a still photo
TEETH_HEIGHT = 0.12  # synthesised upper teeth, share of the mouth's inner width
MAX_HOLD = 2  # output frames in a row that hold the mouth with a held source picture (8 fps in 25)


def cap_opening(lips: np.ndarray, cap: float) -> np.ndarray:
    """[T,40,2] lips whose inner opening is at most ``cap``: the lower lip is raised by the excess."""
    op = mouth_opening(lips)
    excess = np.maximum(op - cap, 0.0)
    if not excess.any():
        return lips
    out = lips.copy()
    out[:, LOWER_LIP, 1] -= excess[:, None]
    return out


def jaw_line(jaw: np.ndarray, drop: float) -> np.ndarray:
    """The source's jaw line [len(JAW), 2] lowered, most at the chin, for a lower lip ``drop``
    pixels below the source's own. It is never raised: a chin drawn above the source's own leaves
    the old one showing below it (a double chin); a closing mouth moves its lower lip alone."""
    return jaw + np.c_[np.zeros(len(jaw)), max(drop, 0.0) * 0.7 * CHIN_WEIGHT]


def shows_teeth(crop: np.ndarray, lips: np.ndarray) -> bool:
    """Whether a mouth image [S, S, 3] with its lips [40, 2] (crop pixels) shows teeth: the gap
    between its inner lips, widened by a few pixels (a smile often shows teeth between inner lips
    that the landmarker closes), is partly lighter than the lips themselves (its upper quartile)."""
    import cv2

    inner = np.round(lips[len(OUTER_LIPS):]).astype(np.int32)
    width = max(float(np.ptp(lips[:, 0])), 1.0)
    gap, ring = np.zeros(crop.shape[:2], np.uint8), np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(gap, [inner], 1)
    cv2.polylines(gap, [inner], True, 1, thickness=max(1, int(round(0.06 * width))))
    cv2.fillPoly(ring, [np.round(lips[:len(OUTER_LIPS)]).astype(np.int32)], 1)
    ring &= 1 - gap
    if gap.sum() < 4 or ring.sum() < 4:
        return False
    grey = crop.astype(np.float32).mean(2)
    return np.percentile(grey[gap > 0], 75) > 1.05 * np.median(grey[ring > 0])


def shown_frames(schedule: np.ndarray, held: np.ndarray | None, max_hold: int = MAX_HOLD) -> np.ndarray:
    """[T] the motion frame each output frame shows: its own, or, where its source picture repeats
    the previous output's (a held frame of a video made from fewer frames a second than it plays),
    the previous output's, so the mouth holds with the face instead of moving between its frames.
    Only runs of up to ``max_hold`` repeated pictures count: a longer one is a freeze or a photo,
    where the mouth still talks."""
    schedule = np.asarray(schedule)
    out = np.arange(len(schedule))
    if held is None or not np.any(held):
        return out
    cadence = np.asarray(held, bool).copy()
    edges = np.flatnonzero(np.diff(np.r_[0, cadence.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a > max_hold:
            cadence[a:b] = False
    for t in range(1, len(schedule)):
        s, p = int(schedule[t]), int(schedule[t - 1])
        if (s == p + 1 and s < len(cadence) and cadence[s]) or (s == p - 1 and p < len(cadence) and cadence[p]):
            out[t] = out[t - 1]
    return out


def cross_fades(path: np.ndarray, ex_frame: np.ndarray, length: int = FADE) -> dict:
    """{output frame: (exemplar to blend from, weight of the new one)} for the first frames after
    each jump in ``path``: the old run's own next frames fade out, so no jump shows as flicker."""
    where = {int(f): k for k, f in enumerate(ex_frame)}
    fades = {}
    for t in range(1, len(path)):
        step = ex_frame[path[t]] - ex_frame[path[t - 1]]
        if step in (0, 1):
            continue
        for j in range(length):
            old = where.get(int(ex_frame[path[t - 1]]) + 1 + j)
            if old is None or t + j >= len(path):
                break
            fades[t + j] = (old, (j + 1) / (length + 1))
    return fades


def _candidates(target, target_pose, ex_lips, ex_pose, c: int, chunk: int = 512):
    """The c cheapest exemplars per target frame and their costs, ([T, c] int, [T, c] float),
    computed a chunk of frames at a time so memory stays bounded however long the video."""
    K = len(ex_lips)
    ex_flat = ex_lips.reshape(K, -1)
    ex_sq = (ex_flat ** 2).sum(1)
    n_pts = ex_lips.shape[1]
    cand = np.empty((len(target), c), np.int32)  # K <= a few thousand exemplars
    cost = np.empty((len(target), c))
    for a in range(0, len(target), chunk):
        tg = target[a:a + chunk].reshape(-1, ex_flat.shape[1])
        d_lip = np.maximum((tg ** 2).sum(1)[:, None] + ex_sq[None] - 2 * tg @ ex_flat.T, 0) / n_pts / LIP_SIGMA ** 2
        d_pose = ((target_pose[a:a + chunk, None, :2] - ex_pose[None, :, :2]) ** 2).sum(-1) / POSE_SIGMA ** 2
        # the opening decides what is seen: an exemplar shut tighter than the target would have
        # its lips stretched over a mouth that should show its inside
        gap = mouth_opening(target[a:a + chunk])[:, None] - mouth_opening(ex_lips)[None]
        d_open = (np.maximum(gap, 0) ** 2 + (0.5 * np.minimum(gap, 0)) ** 2) / OPEN_SIGMA ** 2
        unary = d_lip + d_open + np.nan_to_num(d_pose, nan=0.0)
        part = np.argpartition(unary, c - 1, axis=1)[:, :c] if c < K else np.broadcast_to(np.arange(K), unary.shape)
        cand[a:a + chunk] = part
        cost[a:a + chunk] = np.take_along_axis(unary, part, 1)
    return cand, cost


def choose_exemplars(target: np.ndarray, target_pose: np.ndarray, ex_lips: np.ndarray,
                     ex_pose: np.ndarray, ex_frame: np.ndarray) -> np.ndarray:
    """Viterbi path over exemplars: [T] indices into ex_lips.

    target [T,40,2] and ex_lips [K,40,2] canonical lips; target_pose [T,3], ex_pose [K,3];
    ex_frame [K] source frame of each exemplar (consecutive frames continue without cost).
    Memory is O(T * CANDIDATES), time O(T * (K + CANDIDATES^2))."""
    T = len(target)
    c = min(CANDIDATES, len(ex_lips))
    cand, unary = _candidates(target, target_pose, ex_lips, ex_pose, c)
    cost = unary[0].copy()
    back = np.zeros((T, c), np.uint8)  # c <= CANDIDATES < 256
    for t in range(1, T):
        follows = ex_frame[cand[t]][None, :] - ex_frame[cand[t - 1]][:, None]
        trans = np.where((follows == 1) | (follows == 0), 0.0, SWITCH_COST)  # [c_prev, c_cur]
        tot = cost[:, None] + trans
        back[t] = np.argmin(tot, 0)
        cost = tot[back[t], np.arange(c)] + unary[t]
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
        self.own_teeth = self.still and shows_teeth(pack.crops[0], pack.crop_points[0][LIPS])
        tpose = head_pose(track)[np.asarray(schedule)]
        # the source's own lower lip, steadied: the jaw follows the change from it to the new lips
        own = canonical_points(track, [LIPS[LOWER_MID]])[:, 0]
        ok = np.isfinite(own[:, 0])
        if ok.any():
            own[~ok] = own[ok].mean(0)
            own = gaussian_smooth(own, 2.0)
        self.own_lower = own
        self.path = choose_exemplars(self.lips, tpose, ex_lips, pack.pose[pack.crop_index], pack.crop_index)
        self.fade = cross_fades(self.path, pack.crop_index)
        self.shown = shown_frames(schedule, track.held)
        self.comp = composite.Compositor()

    def render(self, frame: np.ndarray, out_t: int, src_t: int) -> np.ndarray:
        tr = self.track
        if src_t >= len(tr) or not tr.found[src_t] or out_t >= len(self.lips):
            return frame
        out_t = int(self.shown[out_t]) if out_t < len(self.shown) else out_t
        to_crop = self.space.frame_to_crop(tr.to_canon[src_t])
        tgt = G.apply(to_crop, tr.points[src_t].astype(np.float64))  # source face, crop pixels
        lips = self.space.canon_to_pixels(self.lips[out_t])
        # the jaw follows the change from the source's own (steadied) lower lip to the new one
        jaw = jaw_line(tgt[JAW], lips[LOWER_MID, 1] - self.space.canon_to_pixels(self.own_lower[src_t][None])[0, 1])
        region = composite.lower_face(tgt, jaw, G.invert(to_crop), self.space.size, frame.shape)
        if region is None:
            return frame
        k = int(self.path[out_t])
        out = self._warp(k, tgt, lips, jaw, to_crop, region)
        fade = self.fade.get(out_t)
        if fade is not None:  # just switched exemplar: ease in from the one the old run continues to
            old, w = fade
            out = w * out + (1 - w) * self._warp(old, tgt, lips, jaw, to_crop, region)
        return self.comp.blend(frame, region, out)

    def _warp(self, k: int, tgt, lips, jaw, to_crop, region) -> np.ndarray:
        """Exemplar k warped onto the target lips and jaw, resampled once into the region's ROI."""
        import cv2

        ex = self.pack.crop_points[k].astype(np.float64)
        ex_lips = ex[LIPS]
        # every inner-lip point, every other outer-lip and anchor point: enough for a smooth warp
        dst = [lips[WARP_LIPS], tgt[UPPER_BOUND[::2]], jaw[::2]]
        src = [ex_lips[WARP_LIPS], ex[UPPER_BOUND[::2]], ex[JAW[::2]]]
        ex_gap = ex_lips[LOWER_MID, 1] - ex_lips[UPPER_MID, 1]
        gap = lips[LOWER_MID, 1] - lips[UPPER_MID, 1]
        still_open = self.still and gap > ex_gap + 1
        if still_open:
            # the photo's own mouth interior (its teeth) rides with the upper lip, unstretched;
            # only the newly opened band below it is stretched, and painted as the oral cavity
            hang = np.array([0.0, 0.8 * max(ex_gap, 0.0)])
            dst.append(lips[UPPER_INNER[1:-1]] + hang)
            src.append(ex_lips[UPPER_INNER[1:-1]] + hang)
        S = self.space.size
        corners = np.array([[0, 0], [S, 0], [0, S], [S, S], [S / 2, 0], [0, S / 2], [S, S / 2], [S / 2, S]], float)
        mx, my, step = coarse_map(tps_fit(np.concatenate(dst + [corners]), np.concatenate(src + [corners])), S)
        # ROI pixel -> crop pixel (affine) -> exemplar pixel (TPS): the affine step is a
        # warpAffine of the coarse TPS maps themselves, so the exemplar is resampled only once
        x0, y0 = region.box[:2]
        roi_to_grid = G.compose(np.array([[1 / step, 0, 0], [0, 1 / step, 0]]),
                                G.compose(to_crop, np.array([[1.0, 0, x0], [0, 1.0, y0]])))
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        ex_x = cv2.warpAffine(mx, roi_to_grid, region.size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        ex_y = cv2.warpAffine(my, roi_to_grid, region.size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        out = cv2.remap(self.pack.crops[k], ex_x, ex_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        out = out.astype(np.float32)
        if still_open:
            inner = G.apply(G.invert(to_crop), lips[len(INNER_LIPS):]) - [x0, y0]
            out = self._synth_mouth(out, inner, keep=max(ex_gap, 0.0) / gap, teeth=not self.own_teeth)
        return out

    @staticmethod
    def _synth_mouth(out: np.ndarray, inner: np.ndarray, keep: float, teeth: bool = True) -> np.ndarray:
        """Paint the inside of the mouth within the inner-lip polygon (ROI pixels): the dark oral
        cavity below the part of the opening (``keep``, a share of its height from the upper lip)
        that the photo itself shows, and, with ``teeth`` (a photo that shows none of its own),
        upper teeth hanging from the upper lip."""
        import cv2

        m = np.zeros(out.shape[:2], np.float32)
        cv2.fillPoly(m, [np.round(inner).astype(np.int32)], 1.0)
        if m.sum() < 4:
            return out
        shade = min(1.2, max(0.5, np.percentile(out[m > 0].mean(1), 90) / 200))  # the scene's light
        upper = inner[10:]  # upper inner lip, right corner to left corner
        order = np.argsort(upper[:, 0])
        cols = np.arange(out.shape[1])
        below = np.arange(out.shape[0])[:, None] - np.interp(cols, upper[order, 0], upper[order, 1])[None]
        height, width = max(np.ptp(inner[:, 1]), 1.0), max(np.ptp(inner[:, 0]), 1.0)
        m = cv2.GaussianBlur(m, (0, 0), max(0.6, 0.08 * height))[..., None]
        cav = m * np.clip((below - keep * height) / max(0.15 * height, 1.0) + 0.5, 0, 1)[..., None]
        painted = out * (1 - cav) + np.array([72.0, 30.0, 30.0]) * shade * cav
        if not teeth:
            return painted
        tooth = min(TEETH_HEIGHT * width, 0.6 * height)
        across = np.clip(1 - np.abs(cols - inner[:, 0].mean()) / (0.5 * width), 0, 1)[None]  # 1 mid, 0 corners
        enamel = np.array([228.0, 222.0, 208.0]) * shade * (0.7 + 0.3 * across)[..., None]
        a = m * (np.clip((tooth - below) / max(0.25 * tooth, 0.5), 0, 1) * np.clip(2.5 * across, 0, 1))[..., None]
        return painted * (1 - a) + enamel * a
