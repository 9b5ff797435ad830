"""Conditional latent-diffusion mouth renderer (the networks only; sampling is in render.neural).

A diffusers AutoencoderKL maps S x S RGB mouth crops to latents. The denoiser is a UNet whose input
is concat(noisy latent, latent of the target crop with its lower face masked, downsampled mask).
Lip motion enters through modulated convolutions: a motion embedding gives every layer a style
vector that scales the conv weights per input channel, which are then demodulated (StyleGAN2).
K reference crops of the same person are encoded and fused by spatial cross-attention (queries:
the UNet's feature map; keys/values: the references' feature maps at that resolution).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..types import WeightsConfig


@dataclass
class RendererConfig(WeightsConfig):
    """Shape of a MouthRenderer. Travels with the weights (safetensors metadata).

    image_size: side of the square crops the renderer works at (pack crops are resized to it).
    vae_channels: block_out_channels of the tiny AutoencoderKL trained by this project
      (latent side = image_size / 2**(len-1)); ignored when vae_path names a local diffusers folder.
    channels: UNet channels per resolution level; attn_levels: levels with reference cross-attention
      (the middle block always has it).
    lip_dim / lip_scale: target lips are given as (lips - reference mean lips) / lip_scale, flattened.
    """

    image_size: int = 64
    latent_channels: int = 4
    vae_channels: tuple = (32, 64)
    vae_path: str | None = None
    channels: tuple = (64, 128)
    attn_levels: tuple = (1,)
    n_refs: int = 4
    lip_dim: int = 80
    lip_scale: float = 0.05
    style_dim: int = 128
    heads: int = 4
    groups: int = 8
    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012

    def vae_kwargs(self) -> dict:
        n = len(self.vae_channels)
        return dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                    up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(self.vae_channels),
                    layers_per_block=1, latent_channels=self.latent_channels,
                    norm_num_groups=self.groups, sample_size=self.image_size)


class ModulatedConv2d(nn.Module):
    """Conv2d whose weights are scaled per input channel by a style vector, then demodulated so
    each output channel keeps unit expected variance (StyleGAN2, Karras et al. 2020)."""

    def __init__(self, cin: int, cout: int, kernel: int, style_dim: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel ** 2))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = nn.Linear(style_dim, cin)
        nn.init.ones_(self.affine.bias)  # style 0 -> identity modulation
        self.demodulate, self.pad = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        w = self.weight[None] * self.affine(style)[:, None, :, None, None]  # [B, out, in, k, k]
        if self.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, B * C, H, W), w.flatten(0, 1), padding=self.pad, groups=B)
        return out.view(B, -1, H, W) + self.bias[None, :, None, None]


class ModResBlock(nn.Module):
    """Residual block of two modulated convs, with the timestep embedding added in between."""

    def __init__(self, cin: int, cout: int, temb_dim: int, style_dim: int, groups: int):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(groups, cin), nn.GroupNorm(groups, cout)
        self.conv1 = ModulatedConv2d(cin, cout, 3, style_dim)
        self.conv2 = ModulatedConv2d(cout, cout, 3, style_dim)
        self.temb = nn.Linear(temb_dim, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb, style):
        h = self.conv1(F.silu(self.norm1(x)), style) + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)), style)
        return self.skip(x) + h


class RefCrossAttention(nn.Module):
    """Spatial cross-attention from a feature map to the K reference feature maps."""

    def __init__(self, ch: int, heads: int, groups: int):
        super().__init__()
        from diffusers.models.attention_processor import Attention

        self.norm = nn.GroupNorm(groups, ch)
        self.attn = Attention(query_dim=ch, cross_attention_dim=ch, heads=heads, dim_head=ch // heads)

    def forward(self, x, ref_tokens):
        B, C, H, W = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        out = self.attn(q, encoder_hidden_states=ref_tokens)
        return x + out.transpose(1, 2).view(B, C, H, W)


class RefEncoder(nn.Module):
    """Reference latents [B*K, c, h, w] -> one feature map per UNet level."""

    def __init__(self, cfg: RendererConfig):
        super().__init__()
        from diffusers.models.resnet import ResnetBlock2D

        ch = cfg.channels
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            ResnetBlock2D(in_channels=ch[max(i - 1, 0)], out_channels=c, temb_channels=None, groups=cfg.groups)
            for i, c in enumerate(ch))

    def forward(self, z):
        h, feats = self.conv_in(z), []
        for i, block in enumerate(self.blocks):
            if i:
                h = F.avg_pool2d(h, 2)
            h = block(h, None)
            feats.append(h)
        return feats


class MouthUNet(nn.Module):
    """Denoiser. forward(noisy [B,c,h,w], cond [B,c+1,h,w] (masked latent + mask), t [B],
    motion [B, lip_dim], ref_latents [B, K, c, h, w]) -> predicted noise [B, c, h, w]."""

    def __init__(self, cfg: RendererConfig):
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        ch, g, L = cfg.channels, cfg.groups, len(cfg.channels)
        temb_dim = 4 * ch[0]
        self.time_proj = Timesteps(ch[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(ch[0], temb_dim)
        self.motion_embed = nn.Sequential(nn.Linear(cfg.lip_dim, cfg.style_dim), nn.SiLU(),
                                          nn.Linear(cfg.style_dim, cfg.style_dim))
        self.ref_encoder = RefEncoder(cfg)
        self.conv_in = nn.Conv2d(2 * cfg.latent_channels + 1, ch[0], 3, padding=1)
        attn = lambda i: RefCrossAttention(ch[i], cfg.heads, g) if i in cfg.attn_levels else None
        blk = lambda cin, cout: ModResBlock(cin, cout, temb_dim, cfg.style_dim, g)
        self.down = nn.ModuleList(blk(ch[max(i - 1, 0)], ch[i]) for i in range(L))
        self.down_attn = nn.ModuleList(attn(i) or nn.Identity() for i in range(L))
        self.downsample = nn.ModuleList(nn.Conv2d(ch[i], ch[i], 3, stride=2, padding=1) for i in range(L - 1))
        self.mid1, self.mid2 = blk(ch[-1], ch[-1]), blk(ch[-1], ch[-1])
        self.mid_attn = RefCrossAttention(ch[-1], cfg.heads, g)
        self.upsample = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i + 1], 3, padding=1) for i in range(L - 1))
        self.up = nn.ModuleList(blk(ch[min(i + 1, L - 1)] + ch[i], ch[i]) for i in range(L))
        self.up_attn = nn.ModuleList(attn(i) or nn.Identity() for i in range(L))
        self.norm_out = nn.GroupNorm(g, ch[0])
        self.conv_out = nn.Conv2d(ch[0], cfg.latent_channels, 3, padding=1)

    @staticmethod
    def _attend(layer, h, tokens):
        return h if isinstance(layer, nn.Identity) else layer(h, tokens)

    def forward(self, noisy, cond, t, motion, ref_latents):
        B, K = ref_latents.shape[:2]
        t = t.expand(B) if t.dim() else t.reshape(1).expand(B)
        temb = self.time_embed(self.time_proj(t).to(noisy.dtype))
        style = self.motion_embed(motion)
        refs = [f.view(B, K, *f.shape[1:]).permute(0, 1, 3, 4, 2).reshape(B, -1, f.shape[1])
                for f in self.ref_encoder(ref_latents.flatten(0, 1))]  # [B, K*h*w, C] per level
        h, skips, L = self.conv_in(torch.cat([noisy, cond], dim=1)), [], len(self.down)
        for i in range(L):
            h = self._attend(self.down_attn[i], self.down[i](h, temb, style), refs[i])
            skips.append(h)
            if i < L - 1:
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb, style), refs[-1]), temb, style)
        for i in reversed(range(L)):
            if i < L - 1:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = self._attend(self.up_attn[i], self.up[i](torch.cat([h, skips[i]], 1), temb, style), refs[i])
        return self.conv_out(F.silu(self.norm_out(h)))


class MouthRenderer(nn.Module):
    """VAE + denoiser, with the deterministic encode/condition helpers both training and sampling
    use. Images are float [B, 3, S, S] in [-1, 1]; mask [B, 1, S, S] is 1 where the face is
    regenerated (the target's pixels there are never seen)."""

    def __init__(self, cfg: RendererConfig, vae=None):
        super().__init__()
        from diffusers import AutoencoderKL

        self.cfg = cfg
        self.vae = vae if vae is not None else AutoencoderKL(**cfg.vae_kwargs())
        self.unet = MouthUNet(cfg)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(images).latent_dist.mean * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.scaling_factor).sample.clamp(-1, 1)

    def condition(self, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, c+1, h, w]: latent of the target with masked pixels zeroed, and the mask at latent
        size (a latent cell counts as masked if any pixel under it is)."""
        mask = (mask > 0.5).to(target.dtype)
        z = self.encode(target * (1 - mask))
        return torch.cat([z, F.adaptive_max_pool2d(mask, z.shape[-2:])], dim=1)

    def motion_code(self, lips: torch.Tensor, mean_lips: torch.Tensor) -> torch.Tensor:
        """[B, 40, 2] canonical lips, [B or 1, 40, 2] reference mean -> [B, lip_dim] model input."""
        return ((lips - mean_lips) / self.cfg.lip_scale).flatten(1)

    def forward(self, noisy, cond, t, motion, ref_latents):
        return self.unet(noisy, cond, t, motion, ref_latents)
