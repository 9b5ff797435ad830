"""MotionTransformer: lip motion from audio with an audio-aware style reference (Zhong et al. 2024).

Input audio frames become tokens; the style reference becomes keys (its audio tokens) and values
(its lip-motion tokens combined with its audio). Each decoder layer runs windowed self-attention
over the input tokens, then cross-attention whose queries are the input tokens and whose keys and
values come from the reference, then a feed-forward block. The output is the lip shape per frame,
in canonical face space, as a residual over the reference's mean lip shape.

The module does no I/O and holds no inference loop (see lipdub.motion.neural).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..types import WeightsConfig


@dataclass
class MotionTransformerConfig(WeightsConfig):
    """Shape of a MotionTransformer. Travels with the weights (safetensors metadata).

    feat_dim: D of AudioFeatures.feats (voice activity is appended as one more channel).
    lip_dim: 80 = 40 lip points x 2 (canonical face space, inter-ocular distance 1).
    window: self-attention radius in frames (each frame sees frames t-window .. t+window).
    lip_scale: canonical units per model unit; lips are predicted as mean + lip_scale * output.
    """

    feat_dim: int = 32
    lip_dim: int = 80
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    window: int = 8
    conv_kernel: int = 5
    ff_mult: int = 4
    dropout: float = 0.1
    lip_scale: float = 0.05

    @property
    def receptive_radius(self) -> int:
        """Frames of input context each side that can influence one output frame."""
        return 2 * (self.conv_kernel // 2) + self.n_layers * self.window


class AudioEncoder(nn.Module):
    """[B, T, D+1] per-frame features (+ voice activity) -> [B, T, d_model] tokens."""

    def __init__(self, cfg: MotionTransformerConfig):
        super().__init__()
        k = cfg.conv_kernel
        self.conv1 = nn.Conv1d(cfg.feat_dim + 1, cfg.d_model, k, padding=k // 2)
        self.conv2 = nn.Conv1d(cfg.d_model, cfg.d_model, k, padding=k // 2)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.conv1(x.transpose(1, 2)))
        h = F.gelu(self.conv2(h)).transpose(1, 2)
        return self.norm(self.proj(h))


class DecoderLayer(nn.Module):
    """Windowed self-attention -> audio-aware cross-attention -> feed-forward (pre-norm)."""

    def __init__(self, cfg: MotionTransformerConfig):
        super().__init__()
        d, h = cfg.d_model, cfg.n_heads
        self.window = cfg.window
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = nn.MultiheadAttention(d, h, dropout=cfg.dropout, batch_first=True)
        self.rel_bias = nn.Parameter(torch.zeros(h, 2 * cfg.window + 1))
        self.cross_attn = nn.MultiheadAttention(d, h, dropout=cfg.dropout, batch_first=True)
        self.norm_k, self.norm_v = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff_mult * d), nn.GELU(), nn.Dropout(cfg.dropout),
                                nn.Linear(cfg.ff_mult * d, d))
        self.drop = nn.Dropout(cfg.dropout)

    def band_mask(self, T: int, device) -> torch.Tensor:
        """[H, T, T] additive mask: learned relative-position bias inside the window, -inf outside."""
        pos = torch.arange(T, device=device)
        rel = pos[None, :] - pos[:, None]
        inside = rel.abs() <= self.window
        bias = self.rel_bias[:, rel.clamp(-self.window, self.window) + self.window]
        return bias.masked_fill(~inside, float("-inf"))

    def forward(self, x, ref_keys, ref_values, ref_pad):
        B, T, _ = x.shape
        mask = self.band_mask(T, x.device).repeat(B, 1, 1)
        h = self.norm1(x)
        x = x + self.drop(self.self_attn(h, h, h, attn_mask=mask, need_weights=False)[0])
        h = self.norm2(x)
        k, v = self.norm_k(ref_keys), self.norm_v(ref_values)
        x = x + self.drop(self.cross_attn(h, k, v, key_padding_mask=ref_pad, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm3(x)))


class MotionTransformer(nn.Module):
    """Audio features + style reference -> lip shapes.

    forward(feats [B,T,D], voiced [B,T], ref_feats [B,N,D], ref_voiced [B,N], ref_lips [B,N,40,2],
    ref_valid [B,N] bool or None) -> lips [B,T,40,2] float, canonical face space.
    """

    def __init__(self, cfg: MotionTransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.audio = AudioEncoder(cfg)
        self.lip_in = nn.Sequential(nn.Linear(cfg.lip_dim, d), nn.GELU(), nn.Linear(d, d))
        self.ref_value = nn.Linear(2 * d, d)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.lip_dim)
        nn.init.zeros_(self.head.weight)  # starts at the reference's mean lip shape
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def _audio_in(feats, voiced):
        return torch.cat([feats, voiced[..., None]], dim=-1)

    def reference_mean(self, ref_lips, ref_valid):
        w = ref_valid.to(ref_lips.dtype)[..., None, None]
        return (ref_lips * w).sum(1) / w.sum(1).clamp_min(1.0)  # [B, 40, 2]

    def forward(self, feats, voiced, ref_feats, ref_voiced, ref_lips, ref_valid=None):
        B, N = ref_lips.shape[:2]
        if ref_valid is None:
            ref_valid = torch.ones(B, N, dtype=torch.bool, device=ref_lips.device)
        mean = self.reference_mean(ref_lips, ref_valid)
        scale = self.cfg.lip_scale
        ref_motion = ((ref_lips - mean[:, None]) / scale).flatten(2)  # [B, N, 80]

        x = self.audio(self._audio_in(feats, voiced))
        ref_audio = self.audio(self._audio_in(ref_feats, ref_voiced))
        ref_values = self.ref_value(torch.cat([self.lip_in(ref_motion), ref_audio], dim=-1))
        for layer in self.layers:
            x = layer(x, ref_audio, ref_values, ~ref_valid)
        out = self.head(self.norm_out(x)).view(*x.shape[:2], -1, 2)
        return mean[:, None] + scale * out
