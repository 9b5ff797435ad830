"""Stage 1 motion engine (the default): the learned Stage1Net run in numpy, without torch.

Weights: weights/stage1.safetensors (trained by `lipdub train motion --model stage1` on
../shared/corpus; the training command and the corpus manifest hash are in its metadata), also
looked for at $LIPDUB_WEIGHTS/ and ~/.cache/lipdub/. Nothing is downloaded; missing weights are a
WeightsNotFoundError naming every path searched.

After the network: the result is smoothed without lag and given the speaker's own spread of mouth
opening (regression to the mean shrinks it) times RENDER_GAIN (a rendered mouth shows about 0.8 of
its target's change), and moved by the speaker's own lead of lips over sound as the reference
shows it (lipdub.motion.lead).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..face.landmarks import LOWER_LIP, LOWER_MID, UPPER_MID, mouth_opening
from ..smooth import gaussian_smooth
from ..types import AudioFeatures, LipMotion, StylePack, WeightsConfig
from . import lead

FORMAT = "lipdub.stage1/1"
FILENAME = "stage1.safetensors"
TRAIN_HINT = ("train them with: lipdub preprocess ../shared/corpus/clips SHARDS --no-crops && "
              "lipdub train motion --model stage1 --data SHARDS --out weights/stage1.safetensors")
RENDER_GAIN = 1.45
MAX_GAIN = 2.5
SMOOTH_S = 0.06  # zero-phase Gaussian over time (1.5 frames at 25 fps): motion r 0.441 -> 0.450 against 1 frame
# Attention over a few seconds of reference finds few matching sounds: on ../shared/bench's
# directions with under 4 s of reference speech it lowered the motion r by 0.013; from 4 s on it
# was neutral to slightly positive. Its weight grows with the reference's speech, full from here.
STYLE_FULL_S = 20.0
# The corpus has no digital silence inside its clips, and over it the model leaves the mouth near
# the speaker's mean, half open; a synthesiser's or an edited track's silence (this far below
# its speech, and unvoiced) rests in the speaker's closed shape instead. Room noise in a real
# recording's pauses sits well above this, where the model's own closures are better (gating
# every unvoiced frame lowered the motion r on ../shared/bench from 0.43 to 0.37).
SILENCE_DB = -50.0
MAX_REF = 3000  # reference frames attended to (evenly subsampled beyond that)
CHUNK = 4096  # output frames per attention block (memory: CHUNK x MAX_REF floats)
MIN_OPENING_SD = 0.004  # canonical units: below this a reference does not move (a photo)


def find(explicit=None) -> Path:
    from .neural import find_weights

    return find_weights(FILENAME, "stage 1 motion", TRAIN_HINT, explicit)


def available(explicit=None) -> bool:
    from ..errors import WeightsNotFoundError

    try:
        find(explicit)
    except WeightsNotFoundError:
        return False
    return True


@dataclass
class Stage1Config(WeightsConfig):
    """Shape of a Stage1Net; travels with the weights (safetensors metadata).

    feat_dim: D of the speech features (512 Whisper-base states). lip_dim: 80 = 40 points x 2.
    d_model: width. dilations: one residual conv block (kernel ``kernel``) per entry.
    attn_dim: query/key width. lip_scale: canonical units per model unit.
    """

    feat_dim: int = 512
    lip_dim: int = 80
    d_model: int = 96
    kernel: int = 5
    dilations: tuple = (1, 2, 4)
    attn_dim: int = 32
    dropout: float = 0.1
    lip_scale: float = 0.05

    @property
    def receptive_radius(self) -> int:
        return sum(self.kernel // 2 * d for d in self.dilations)


class Stage1:
    """Stage1Net's forward pass in numpy (float32)."""

    def __init__(self, tensors: dict, config: dict):
        self.cfg = Stage1Config.from_dict(config)
        self.w = {k: np.asarray(v, np.float32) for k, v in tensors.items()}

    @classmethod
    def load(cls, path) -> "Stage1":
        from safetensors import safe_open
        from safetensors.numpy import load_file

        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT or "config" not in meta:
            raise InputError(f"{path}: not a {FORMAT} weights file (format={meta.get('format')!r})")
        return cls(load_file(str(path)), json.loads(meta["config"]))

    def _linear(self, x, name):
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _norm(self, x, name, eps=1e-5):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _conv(self, x, name, dilation):
        """[T, d] -> [T, d], 'same' zero padding, like nn.Conv1d(padding=k//2*dilation)."""
        W, b = self.w[f"{name}.weight"], self.w[f"{name}.bias"]  # [out, in, k]
        k = W.shape[2]
        pad = k // 2 * dilation
        xp = np.pad(x, ((pad, pad), (0, 0)))
        out = np.broadcast_to(b, (len(x), len(b))).copy()
        for j in range(k):
            out += xp[j * dilation:j * dilation + len(x)] @ W[:, :, j].T
        return out

    def encode(self, feats: np.ndarray) -> np.ndarray:
        x = (np.asarray(feats, np.float32) - self.w["feat_mean"]) / self.w["feat_std"]
        h = _gelu(self._linear(x, "inp"))
        for i, r in enumerate(self.cfg.dilations):
            h = h + self._conv(_gelu(self._norm(h, f"norms.{i}")), f"convs.{i}", r)
        return h

    def __call__(self, feats: np.ndarray, ref_feats: np.ndarray | None, ref_lips: np.ndarray | None,
                 style_weight: float = 1.0) -> np.ndarray:
        """[T, 40, 2] lips for feats [T, D], given the reference's feats [N, D] and lips [N, 40, 2]
        (all finite); style_weight scales what the attention to the reference adds (1: as trained).
        ref_feats None: the generic path alone, about a zero mean shape (the offsets the model
        predicts)."""
        cfg = self.cfg
        a = self.encode(feats)
        if ref_feats is None:
            return cfg.lip_scale * self._linear(self._norm(a, "norm_out"), "head").reshape(len(a), -1, 2)
        mean = ref_lips.mean(0)
        values = ((ref_lips - mean) / cfg.lip_scale).reshape(len(ref_lips), -1)
        k = self._linear(self.encode(ref_feats), "key")
        out = np.empty((len(a), cfg.lip_dim), np.float32)
        for s in range(0, len(a), CHUNK):
            blk = a[s:s + CHUNK]
            logits = self._linear(blk, "query") @ k.T / cfg.attn_dim ** 0.5
            logits -= logits.max(1, keepdims=True)
            attn = np.exp(logits)
            attn /= attn.sum(1, keepdims=True)
            z = blk + style_weight * self._linear(attn @ values, "style")
            out[s:s + CHUNK] = self._linear(self._norm(z, "norm_out"), "head")
        return mean[None] + cfg.lip_scale * out.reshape(len(a), -1, 2)


def _gelu(x):
    """Exact GELU, x * Phi(x), as torch computes it (erf to 1.5e-7: Abramowitz & Stegun 7.1.26)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)


@lru_cache(maxsize=2)
def _cached(path: str, mtime: float) -> Stage1:
    return Stage1.load(path)


def model(explicit=None) -> Stage1:
    p = find(explicit)
    return _cached(str(p), os.path.getmtime(p))


def reference(pack: StylePack, max_ref: int = MAX_REF) -> tuple[np.ndarray, np.ndarray]:
    """(feats [N, D], lips [N, 40, 2]) of the pack's frames with lips and speech features, evenly
    subsampled to max_ref. A pack without speech (a photo) gives its lips with zero features:
    its lips do not move, so the attention adds nothing and the generic path drives them."""
    lips = np.asarray(pack.lips, np.float32)
    ok = np.isfinite(lips).all(axis=(1, 2))
    if not ok.any():
        raise InputError("the style reference has no frame with lips")
    idx = np.flatnonzero(ok)
    if len(idx) > max_ref:
        idx = idx[np.linspace(0, len(idx) - 1, max_ref).round().astype(int)]
    feats = np.asarray(pack.feats, np.float32)
    if feats.ndim != 2 or len(feats) < len(lips) or feats.shape[1] == 0:
        lips_ref = np.repeat(np.nanmean(lips[idx], 0, keepdims=True), len(idx), 0)
        return np.zeros((len(idx), 0), np.float32), lips_ref
    return feats[idx], lips[idx]


def predict(feats: AudioFeatures, pack: StylePack, weights=None, smooth_s: float = SMOOTH_S) -> LipMotion:
    """LipMotion [T, 40, 2] for the frames of ``feats`` in the style of ``pack``. Only digital-like
    silence (SILENCE_DB) is gated to the rest shape: in a recording's pauses the model's own
    closures follow the real lips better (long pauses and the end of the audio rest in
    lipdub.pipeline.settle)."""
    net = model(weights)
    T = len(feats)
    if T == 0:
        return LipMotion(np.zeros((0, 40, 2), np.float32), engine="stage1")
    x = np.asarray(feats.feats, np.float32)
    if x.ndim != 2 or x.shape[1] != net.cfg.feat_dim:
        raise InputError(f"speech features are {x.shape}, the stage 1 model expects [T, {net.cfg.feat_dim}]")
    ref_x, ref_lips = reference(pack)
    if ref_x.shape[1] == 0:
        ref_x = np.zeros((len(ref_lips), net.cfg.feat_dim), np.float32)
    elif ref_x.shape[1] != net.cfg.feat_dim:
        raise InputError(f"the style reference's speech features are {ref_x.shape[1]}-dim, the stage 1 model "
                         f"expects {net.cfg.feat_dim} (a pack of another lipdub? run lipdub prepare-style again)")
    speech_s = float(np.sum(np.asarray(pack.voiced) >= 0.5) / float(pack.fps)) if len(pack.voiced) else 0.0
    lips = net(x, ref_x, ref_lips, style_weight=min(1.0, speech_s / STYLE_FULL_S)).astype(np.float64)
    lips = _with_speaker_spread(lips, ref_lips, feats.voiced)
    silent = (np.asarray(feats.voiced) < 0.5) & (np.asarray(feats.energy) < SILENCE_DB)
    if silent.any():
        g = np.clip(gaussian_smooth(silent.astype(np.float64), 1.0), 0, 1)[:, None, None]
        lips = g * np.asarray(pack.rest_lips, np.float64)[None] + (1 - g) * lips
    if smooth_s:
        lips = gaussian_smooth(lips, smooth_s * float(feats.fps))
    lead_s = speaker_lead(net, pack)
    return LipMotion(lips=lead.shifted(lips.astype(np.float32), lead_s * float(feats.fps)), engine="stage1",
                     lead_s=lead_s)


def speaker_lead(net: Stage1, pack: StylePack) -> float:
    """Seconds by which the reference speaker's lips lead the model's prediction from the
    reference's own audio (lipdub.motion.lead); 0.0 for a reference without speech features, with
    under MIN_FRAMES frames of speech, or whose mouth does not move (a photo, a still face)."""
    x = np.asarray(pack.feats, np.float32)[:lead.MAX_FRAMES]
    if x.ndim != 2 or x.shape[1] != net.cfg.feat_dim or len(x) == 0:
        return 0.0
    lips = np.asarray(pack.lips, np.float64)[:len(x)]
    real = mouth_opening(lips)
    speech = int(np.sum(np.asarray(pack.voiced)[:len(x)] >= 0.5))
    if not np.isfinite(real).any() or np.nanstd(real) < MIN_OPENING_SD or speech < lead.MIN_FRAMES:
        return 0.0  # a reference that does not speak or whose mouth does not move says nothing of timing
    generic = np.nanmean(lips, 0) + net(x, None, None)
    return round(lead.estimate(mouth_opening(generic), real, float(pack.fps)), 4)


def signed_opening(lips: np.ndarray) -> np.ndarray:
    """[...] inner-lip opening of [..., 40, 2] canonical lips, negative where the lower lip would
    pass above the upper one (y points down)."""
    return lips[..., LOWER_MID, 1] - lips[..., UPPER_MID, 1]


def _with_speaker_spread(lips: np.ndarray, ref_lips: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Scale the motion about its mean so that the mouth opening has the reference's spread times
    RENDER_GAIN (at most MAX_GAIN times the network's own); a reference that does not move (a
    photo) keeps the network's spread times RENDER_GAIN. The lips never close past the tightest
    the network or the reference shows: the lower lip of a mouth scaled past shut is lowered."""
    op = mouth_opening(lips)
    v = np.asarray(voiced) > 0.5
    sd = op[v].std() if v.sum() > 5 else op.std()
    ref_sd = mouth_opening(ref_lips.astype(np.float64)).std()
    if sd < 1e-9:
        return lips
    gain = RENDER_GAIN * (ref_sd / sd if ref_sd >= MIN_OPENING_SD else 1.0)
    gain = float(np.clip(gain, 1.0, MAX_GAIN))
    mean = lips[v].mean(0) if v.sum() > 5 else lips.mean(0)
    out = mean[None] + gain * (lips - mean[None])
    floor = min(float(np.min(signed_opening(lips))), float(np.percentile(signed_opening(ref_lips), 1)))
    short = np.maximum(floor - signed_opening(out), 0.0)
    out[:, LOWER_LIP, 1] += short[:, None]
    return out
