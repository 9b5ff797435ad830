"""Stage1Net: the paper's Stage 1 at CPU size, for training (torch). Inference runs the same
arithmetic in numpy (lipdub.motion.stage1), so `lipdub run` never imports torch.

Speech features (Whisper encoder states per video frame) are normalised, projected and passed
through dilated temporal convolutions: the audio encoding ``a``. Style is audio-aware
cross-attention: queries from the new audio's encoding, keys from the reference's audio
encoding, values from the reference's lip motion (its lips minus their mean, in units of
lip_scale). The output is the lip shape per frame as a residual over the reference's mean lips:
    lips = ref_mean + lip_scale * head(a + style_proj(attention)).
With no reference (a photo), the attention term is zero; training drops the reference now and
then so that this generic path works.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .stage1 import Stage1Config


class Stage1Net(nn.Module):
    """forward(feats [B,T,D], voiced, ref_feats [B,N,D], ref_voiced, ref_lips [B,N,40,2],
    ref_valid [B,N] bool) -> lips [B,T,40,2] canonical. A still reference (every frame its mean
    shape) gives zero attention values: the generic path."""

    def __init__(self, cfg: Stage1Config):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.register_buffer("feat_mean", torch.zeros(cfg.feat_dim))
        self.register_buffer("feat_std", torch.ones(cfg.feat_dim))
        self.inp = nn.Linear(cfg.feat_dim, d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in cfg.dilations)
        self.convs = nn.ModuleList(nn.Conv1d(d, d, cfg.kernel, dilation=r, padding=cfg.kernel // 2 * r)
                                   for r in cfg.dilations)
        self.query = nn.Linear(d, cfg.attn_dim)
        self.key = nn.Linear(d, cfg.attn_dim)
        self.style = nn.Linear(cfg.lip_dim, d)
        self.norm_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.lip_dim)
        self.drop = nn.Dropout(cfg.dropout)

    def set_feature_stats(self, mean, std) -> None:
        """The input normalisation (per-dimension mean and standard deviation of the training features)."""
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, T, D] speech features -> [B, T, d_model] audio encoding."""
        h = F.gelu(self.inp((feats.float() - self.feat_mean) / self.feat_std))
        for norm, conv in zip(self.norms, self.convs):
            h = h + self.drop(conv(F.gelu(norm(h)).transpose(1, 2)).transpose(1, 2))
        return h

    @staticmethod
    def reference_mean(ref_lips, ref_valid):
        w = ref_valid.to(ref_lips.dtype)[..., None, None]
        return (ref_lips * w).sum(1) / w.sum(1).clamp_min(1.0)  # [B, 40, 2]

    def forward(self, feats, voiced, ref_feats, ref_voiced, ref_lips, ref_valid=None):
        """Voice activity (voiced, ref_voiced) is not an input: the speech features carry it; the
        arguments are there so that both motion models train through one loop."""
        cfg = self.cfg
        if ref_valid is None:
            ref_valid = torch.ones(ref_lips.shape[:2], dtype=torch.bool, device=ref_lips.device)
        mean = self.reference_mean(ref_lips, ref_valid)
        values = ((ref_lips - mean[:, None]) / cfg.lip_scale).flatten(2)  # [B, N, 80]
        a = self.encode(feats)
        q = self.query(a)
        k = self.key(self.encode(ref_feats))
        logits = q @ k.transpose(1, 2) / cfg.attn_dim ** 0.5  # [B, T, N]
        logits = logits.masked_fill(~ref_valid[:, None, :], float("-inf"))
        has_ref = ref_valid.any(1)[:, None, None]
        attn = torch.softmax(logits.masked_fill(~has_ref, 0.0), dim=-1) * has_ref
        style = attn @ values  # [B, T, 80]
        out = self.head(self.norm_out(a + self.style(style)))
        return mean[:, None] + cfg.lip_scale * out.view(*out.shape[:2], -1, 2)
