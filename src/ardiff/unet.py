r"""A small U-Net that predicts the noise :math:`\varepsilon_\theta(x_t, t)` (Ho et al. 2020, appendix B).

Residual blocks with GroupNorm and SiLU, a sinusoidal embedding of t added inside every block,
optional self-attention at the lowest resolution, optional class conditioning. For 28x28 and 32x32
images with 1 or 3 channels (inputs may add mask channels; the output may have any number of channels):
with ``channel_mults=(1, 2, 2)`` the resolutions are 28 -> 14 -> 7 (or 32 -> 16 -> 8).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["UNetConfig", "UNet", "timestep_embedding"]


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 1               # 1 for MNIST, 3 for CIFAR-10; more for inputs with masks (block-wise: 3,
                                       # absorbing: 2)
    image_size: int = 28               # 28 or 32; must divide by 2 ** (len(channel_mults) - 1)
    base_channels: int = 64            # width of the first level
    channel_mults: tuple = (1, 2, 2)   # width multiplier per resolution level
    num_res_blocks: int = 2            # residual blocks per level on the way down
    attention: bool = True             # self-attention at the lowest resolution
    num_heads: int = 4
    num_classes: int | None = None     # class-conditional when set (label embedding added to the time embedding)
    dropout: float = 0.0
    groups: int = 8                    # GroupNorm groups; must divide every width
    out_channels: int | None = None    # channels of the prediction (None: in_channels); block-wise diffusion
                                       # reads 3 channels (image + 2 masks) and predicts 1; the absorbing
                                       # model reads 2 (image + mask) and predicts 256 logits per pixel

    def __post_init__(self):
        if isinstance(self.in_channels, bool) or not isinstance(self.in_channels, int) or self.in_channels < 1:
            raise ValueError(f"in_channels must be an int >= 1, got {self.in_channels!r}")
        if self.out_channels is not None and (isinstance(self.out_channels, bool) or
                                              not isinstance(self.out_channels, int) or self.out_channels < 1):
            raise ValueError(f"out_channels must be None or an int >= 1, got {self.out_channels!r}")
        if self.base_channels < 1 or any(m < 1 for m in self.channel_mults) or not self.channel_mults:
            raise ValueError(f"base_channels and channel_mults must be positive, got {self.base_channels}, "
                             f"{self.channel_mults}")
        if self.image_size % 2 ** (len(self.channel_mults) - 1):
            raise ValueError(f"image_size must be divisible by 2 ** (len(channel_mults) - 1) = "
                             f"{2 ** (len(self.channel_mults) - 1)}, got {self.image_size}")
        for m in self.channel_mults:
            if (self.base_channels * m) % self.groups:
                raise ValueError(f"groups={self.groups} must divide every width; base_channels * {m} = "
                                 f"{self.base_channels * m} does not")
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {self.num_res_blocks}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    r"""Sinusoidal embedding of integer timesteps (Vaswani et al. 2017, sec. 3.5).

    :math:`e_{2i} = \sin(t / P^{2i/d}),\ e_{2i+1} = \cos(t / P^{2i/d})`.

    Args:
        t: (B,) timesteps. dim: even embedding width.
    Returns:
        (B, dim) float32.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # (B, dim)


class ResBlock(nn.Module):
    """GN -> SiLU -> conv, + time embedding, GN -> SiLU -> dropout -> conv; plus a (1x1) skip."""

    def __init__(self, cin: int, cout: int, temb: int, groups: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(emb))[:, :, None, None]  # (B, cout, 1, 1) broadcast over H, W
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, ch: int, heads: int, groups: int):
        super().__init__()
        if ch % heads:
            raise ValueError(f"num_heads={heads} must divide the width {ch}")
        self.heads = heads
        self.norm, self.qkv, self.proj = nn.GroupNorm(groups, ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W).unbind(1)  # (B, nh, hs, HW)
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))  # (B, nh, HW, hs)
        h = h.transpose(-1, -2).reshape(B, C, H, W)
        return x + self.proj(h)


class UNet(nn.Module):
    r""":math:`\varepsilon_\theta(x_t, t\,[, y])`: (B, C, H, W) noisy images and (B,) timesteps -> (B, C', H, W),
    C' = ``out_channels`` (default C)."""

    def __init__(self, config: UNetConfig | None = None, **kwargs):
        super().__init__()
        self.config = cfg = config if config is not None else UNetConfig(**kwargs)
        ch0, temb, g = cfg.base_channels, 4 * cfg.base_channels, cfg.groups
        self.time_mlp = nn.Sequential(nn.Linear(ch0, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.label_emb = nn.Embedding(cfg.num_classes, temb) if cfg.num_classes else None
        self.conv_in = nn.Conv2d(cfg.in_channels, ch0, 3, padding=1)
        widths = [ch0 * m for m in cfg.channel_mults]
        self.down, skips, ch = nn.ModuleList(), [ch0], ch0
        for i, w in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                self.down.append(ResBlock(ch, w, temb, g, cfg.dropout))
                ch = w
                skips.append(ch)
            if i < len(widths) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))  # halve H, W
                skips.append(ch)
        self.mid1 = ResBlock(ch, ch, temb, g, cfg.dropout)
        self.mid_attn = Attention(ch, cfg.num_heads, g) if cfg.attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, temb, g, cfg.dropout)
        self.up = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), w, temb, g, cfg.dropout))
                ch = w
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(ch, ch, 3, padding=1)))  # double H, W
        self.norm_out, self.conv_out = nn.GroupNorm(g, ch), nn.Conv2d(ch, cfg.out_channels or cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start as the zero predictor: loss starts at E[eps^2] = 1
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if (y is None) != (self.label_emb is None):
            raise ValueError("y (class labels) must be given exactly when the model has num_classes")
        emb = self.time_mlp(timestep_embedding(t, self.config.base_channels))  # (B, 4*ch0)
        if y is not None:
            emb = emb + self.label_emb(y)
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), emb) if isinstance(layer, ResBlock) else layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def config_dict(self) -> dict:
        """The config's fields; ``out_channels`` only when set, so configs written before it existed still match."""
        d = asdict(self.config)
        if d["out_channels"] is None:
            del d["out_channels"]
        return d
