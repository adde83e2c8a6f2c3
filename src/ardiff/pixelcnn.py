r"""PixelCNN: an autoregressive model of images, one pixel at a time, with an exact likelihood.

:math:`p(x) = \prod_{i} p(x_i \mid x_{<i})` over pixels in raster order (row by row, left to right),
each factor a 256-way categorical over the uint8 value (van den Oord et al. 2016a, eq. 1-2).

- :class:`MaskedConv2d`: a convolution whose kernel is multiplied by a fixed mask *in the forward
  computation* (the weights are never modified); type 'A' hides the centre pixel, type 'B' shows it.
- :class:`PlainPixelCNN`: a stack of masked 3x3 convolutions. Its receptive field has a blind spot.
- :class:`PixelCNN`: the gated PixelCNN of van den Oord et al. (2016b), with a vertical stack (rows
  above) and a horizontal stack (pixels to the left in the same row), which has no blind spot;
  dilations, residual and skip connections.

Images are uint8 values 0..255 as integer tensors (B, C, H, W): C = 1 (MNIST) or 3 (RGB). With C colour
channels the sub-pixels are ordered too (van den Oord et al. 2016a, sec. 3.4):
:math:`p(x_i \mid x_{<i}) = p(R_i \mid x_{<i})\, p(G_i \mid x_{<i}, R_i)\, p(B_i \mid x_{<i}, R_i, G_i)`.
Every feature channel belongs to one colour (channel ``c`` to colour ``c % C``), and at the current pixel
a feature of colour g reads only colours < g (the first layer) or <= g (later layers): :func:`channel_mask`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .metrics import bits_per_dim

__all__ = ["MaskedConv2d", "PlainPixelCNN", "PixelCNN", "GatedLayer", "channel_mask", "receptive_field",
           "to_pixels", "from_pixels"]


def _check_pixels(x: torch.Tensor, channels: int = 1) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"x must be a (B, {channels}, H, W) tensor of pixel values, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if x.is_floating_point() or x.dtype == torch.bool:
        raise TypeError(f"x must hold integer pixel values 0..255, got dtype {x.dtype}")
    if x.dtype != torch.uint8 and x.numel() and (int(x.min()) < 0 or int(x.max()) > 255):  # uint8: no check, no sync
        raise ValueError(f"x must hold pixel values in [0, 255], got [{int(x.min())}, {int(x.max())}]")


def from_pixels(x: torch.Tensor) -> torch.Tensor:
    """Pixels 0..255 (any integer dtype) -> float images in [-1, 1]: the data loaders' scaling, the inverse of
    :func:`to_pixels`."""
    return x.float() / 127.5 - 1.0


def channel_mask(cout: int, cin: int, colours: int, same: bool) -> torch.Tensor:
    """(cout, cin) 0/1: may output channel o read input channel i *at the same pixel*?

    Channel c has colour ``c % colours``; o may read i when colour(i) < colour(o), or also when they are equal
    with ``same`` (mask 'B'; 'A' when False). With one colour: all ones ('B') or all zeros ('A').
    """
    go, gi = torch.arange(cout)[:, None] % colours, torch.arange(cin)[None] % colours
    return ((gi < go) | (same & (gi == go))).float()


class MaskedConv2d(nn.Conv2d):
    """A conv whose kernel is ``weight * mask``, the mask applied in ``forward`` (weights untouched).

    Args:
        mask: a (kh, kw) 0/1 tensor (the same for every channel pair), a full (cout, cin, kh, kw) one, or
            ``"A"`` / ``"B"`` for the raster-order masks of PixelCNN: every row above the centre, and the pixels
            left of the centre in its row; 'B' also the centre.
    """

    def __init__(self, cin: int, cout: int, kernel_size, mask="B", dilation: int = 1):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        super().__init__(cin, cout, (kh, kw), padding=(dilation * (kh // 2), dilation * (kw // 2)), dilation=dilation)
        if isinstance(mask, str):
            if mask not in ("A", "B"):
                raise ValueError(f"mask must be 'A', 'B' or a 0/1 tensor, got {mask!r}")
            m = torch.zeros(kh, kw)
            m[: kh // 2] = 1                                   # rows above the centre
            m[kh // 2, : kw // 2 + (mask == "B")] = 1          # left of the centre (and the centre for 'B')
            mask = m
        if tuple(mask.shape) not in ((kh, kw), (cout, cin, kh, kw)):
            raise ValueError(f"mask must have the kernel's shape {(kh, kw)} or {(cout, cin, kh, kw)}, got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.float() if mask.ndim == 4 else mask.float()[None, None])  # (., ., kh, kw)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding, self.dilation)


class PlainPixelCNN(nn.Module):
    """The first PixelCNN: a type-A masked 7x7 conv, then type-B 3x3 convs. Has a blind spot."""

    def __init__(self, channels: int = 64, layers: int = 6):
        super().__init__()
        convs = [MaskedConv2d(1, channels, 7, "A")] + [MaskedConv2d(channels, channels, 3, "B") for _ in range(layers)]
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv2d(channels, 256, 1)

    def forward(self, x):
        _check_pixels(x)
        return self.net(from_pixels(x))

    def net(self, h: torch.Tensor) -> torch.Tensor:
        """The network on float input in [-1, 1] (differentiable in the input): (B, 256, 1, H, W)."""
        for conv in self.convs:
            h = F.relu(conv(h))
        return self.out(h)[:, :, None]


def _vertical_mask(k: int, include_centre_row: bool) -> torch.Tensor:
    m = torch.zeros(k, k)
    m[: k // 2 + include_centre_row] = 1  # rows above (and the centre row)
    return m


def _horizontal_mask(k: int, include_centre: bool, cout: int = 1, cin: int = 1, colours: int = 1) -> torch.Tensor:
    """(1, k) for one colour; (cout, cin, 1, k) with the centre tap's :func:`channel_mask` for several."""
    m = torch.zeros(1, k)
    m[0, : k // 2 + include_centre] = 1  # pixels to the left (and the centre)
    if colours == 1:
        return m
    m = m.expand(cout, cin, 1, k).clone()
    m[..., k // 2] = channel_mask(cout, cin, colours, include_centre)[..., None]
    return m


def _conv1x1(cin: int, cout: int, colours: int) -> nn.Conv2d:
    """A 1x1 conv that keeps the colour order ('B' mask); a plain conv for one colour."""
    if colours == 1:
        return nn.Conv2d(cin, cout, 1)
    return MaskedConv2d(cin, cout, 1, channel_mask(cout, cin, colours, True)[..., None, None])


class GatedLayer(nn.Module):
    r"""One gated layer with a vertical and a horizontal stack (van den Oord et al. 2016b, fig. 2).

    :math:`y = \tanh(W_f * x) \odot \sigma(W_g * x)`. The vertical stack sees the rows above (its
    features at row i never depend on row i itself); the horizontal stack sees the pixels left in
    the same row, plus the vertical features of its own position: together, every earlier pixel.
    """

    def __init__(self, channels: int, kernel: int = 3, dilation: int = 1, first: bool = False, colours: int = 1):
        super().__init__()
        c, k, cin = channels, kernel, colours if first else channels
        # the first layer must not see the current pixel: exclude the centre row (vertical) and centre (horizontal);
        # with colours, the centre tap still shows the earlier colours of the current pixel
        self.v_conv = MaskedConv2d(cin, 2 * c, k, _vertical_mask(k, not first), dilation)
        self.h_conv = MaskedConv2d(cin, 2 * c, (1, k), _horizontal_mask(k, not first, 2 * c, cin, colours), dilation)
        self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)   # vertical features see only rows above: no colour order needed
        self.h_out = _conv1x1(c, c, colours)
        self.first = first

    def forward(self, v, h):
        v_feat, v_out = self.vertical(v)
        h_out, skip = self.horizontal(h, self.v_to_h(v_feat))
        return v_out, h_out, skip

    def vertical(self, v):
        """The vertical stack: ``(v_feat, v_out)``, (B, 2c, H, W) before the gate and (B, c, H, W) after."""
        v_feat = self.v_conv(v)
        v_f, v_g = v_feat.chunk(2, dim=1)
        return v_feat, torch.tanh(v_f) * torch.sigmoid(v_g)

    def horizontal(self, h, v_context):
        """The horizontal stack, given ``v_context = v_to_h(v_feat)``: ``(h_out, skip)``, each (B, c, H, W)."""
        h_feat = self.h_conv(h) + v_context                    # vertical context joins the row
        h_f, h_g = h_feat.chunk(2, dim=1)
        skip = self.h_out(torch.tanh(h_f) * torch.sigmoid(h_g))
        return (skip if self.first else h + skip), skip         # residual connection in the horizontal stack


class PixelCNN(nn.Module):
    """Gated PixelCNN for (B, C, H, W) uint8 images: ``forward(x) -> logits (B, 256, C, H, W)``.

    Args:
        channels: width of both stacks (a multiple of ``in_channels``: each colour gets channels / C).
        dilations: one gated layer per entry after the first, with that dilation.
        kernel: kernel size of the stacks.
        zero_init_head: start with zero output weights: uniform predictions, exactly 8 bits/dim
            (turn off to inspect an untrained model's receptive field).
        in_channels: colours C of the images, 1 or 3 (sub-pixels in the order R, G, B).
    """

    def __init__(self, channels: int = 64, dilations=(1, 2, 1, 4, 1, 2, 1), kernel: int = 3,
                 zero_init_head: bool = True, in_channels: int = 1):
        super().__init__()
        if channels < 1 or kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"channels must be >= 1 and kernel odd >= 3, got {channels}, {kernel}")
        if in_channels not in (1, 3) or channels % in_channels:
            raise ValueError(f"in_channels must be 1 or 3 and divide channels, got {in_channels}, {channels}")
        C = self.in_channels = in_channels
        self.config = {"channels": channels, "dilations": list(dilations), "kernel": kernel, "in_channels": C}
        self.layers = nn.ModuleList([GatedLayer(channels, kernel, 1, first=True, colours=C)] +
                                    [GatedLayer(channels, kernel, d, colours=C) for d in dilations])
        # logit of value v for colour ch at channel v * C + ch: colour (v * C + ch) % C = ch
        self.head = nn.Sequential(nn.ReLU(), _conv1x1(channels, channels, C), nn.ReLU(), _conv1x1(channels, 256 * C, C))
        if zero_init_head:  # untrained: uniform over 256 values, exactly 8 bits/dim
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)
        # how far the output at a pixel can look up, left and right (rows / columns): each layer adds
        # dilation * (kernel // 2); the fast sampler crops to this window.
        self.reach = sum(layer.v_conv.dilation[0] * (kernel // 2) for layer in self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_pixels(x, self.in_channels)
        return self.net(from_pixels(x))

    def net(self, inp: torch.Tensor) -> torch.Tensor:
        """The network on float input in [-1, 1] (differentiable in the input): (B, 256, C, H, W)."""
        v = h = inp
        skips = 0
        for layer in self.layers:
            v, h, skip = layer(v, h)
            skips = skips + skip
        out = self.head(skips)                              # (B, 256 * C, H, W)
        return out.view(out.shape[0], 256, self.in_channels, *out.shape[2:])

    def row_context(self, inp: torch.Tensor) -> list:
        """The vertical stacks' context for the last row of ``inp`` (B, C, rows, W), one (B, 2c, 1, W)
        tensor per layer. It depends only on the rows above, so a sampler computes it once per row."""
        context, v = [], inp
        for layer in self.layers:
            v_feat, v = layer.vertical(v)
            context.append(layer.v_to_h(v_feat[:, :, -1:]))
        return context

    def last_pixel_logits(self, row: torch.Tensor, context: list) -> torch.Tensor:
        """Logits (B, 256, C) of the last pixel of ``row`` (B, C, 1, w), given :meth:`row_context` cropped to
        the same w columns: only the horizontal stacks run."""
        h, skips = row, 0
        for layer, v_context in zip(self.layers, context):
            h, skip = layer.horizontal(h, v_context)
            skips = skips + skip
        return self.head(skips[:, :, :, -1:])[:, :, 0, 0].view(len(row), 256, self.in_channels)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        r"""Exact negative log-likelihood :math:`-\log p(x)` in nats, (B,)."""
        logits = self(x)
        return F.cross_entropy(logits.float(), x.long(), reduction="none").flatten(1).sum(1)

    def bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`-\\log_2 p(x) / D`, (B,)."""
        return bits_per_dim(self.nll(x), x[0].numel())

    # ---------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int | None = None, shape=(1, 28, 28), generator: torch.Generator | None = None,
               temperature: float = 1.0, x_init: torch.Tensor | None = None, mask: torch.Tensor | None = None,
               fast: bool = True, uniforms: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
        """Draw images pixel by pixel in raster order (and colour by colour within a pixel: R, G, B).

        Each sub-pixel is drawn by inverse-CDF sampling from ``softmax(logits / temperature)`` with one
        uniform number per sub-pixel, so the naive and the fast sampler give identical images for
        identical random numbers.

        Args:
            n: number of images (or taken from ``x_init``).
            shape: (C, H, W), C the model's ``in_channels``.
            generator: draws the uniforms (on the model's device).
            temperature: > 0; below 1 sharpens the distribution.
            x_init: (n, C, H, W) pixels 0..255 to complete; with ``mask``.
            mask: (n, C, H, W) bool/0-1, 1 where ``x_init`` is kept and 0 where sub-pixels are generated.
            fast: instead of the whole network on the whole image for every pixel, run the vertical
                stacks once per row (on the ``self.reach`` rows above) and, for each pixel, only the
                horizontal stacks on the ``self.reach`` columns to its left.
            uniforms: optional (n, C, H, W) uniforms in [0, 1) to use instead of drawing them.
        Returns:
            (n, C, H, W) int64 pixels 0..255.
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        dev = next(self.parameters()).device
        if x_init is not None:
            _check_pixels(x_init, self.in_channels)
            n, shape = x_init.shape[0], tuple(x_init.shape[1:])
            if mask is None:
                raise ValueError("mask must be given with x_init (1 = keep, 0 = generate)")
            if tuple(mask.shape) != tuple(x_init.shape):
                raise ValueError(f"mask must have the shape of x_init, {tuple(x_init.shape)}; got {tuple(mask.shape)}")
            x, keep = x_init.to(dev).long().clone(), mask.to(dev).bool()
        else:
            if mask is not None:
                raise ValueError("mask needs x_init")
            if n is None or n < 1:
                raise ValueError(f"n must be >= 1, got {n}")
            shape = tuple(shape)
            if len(shape) != 3 or shape[0] != self.in_channels or min(shape[1:]) < 1:
                raise ValueError(f"shape must be ({self.in_channels}, H, W), got {shape}")
            x = torch.zeros((n, *shape), dtype=torch.long, device=dev)
            keep = torch.zeros_like(x, dtype=torch.bool)
        if uniforms is None:
            uniforms = torch.rand(x.shape, generator=generator, device=dev)
        elif tuple(uniforms.shape) != tuple(x.shape):
            raise ValueError(f"uniforms must have shape {tuple(x.shape)}, got {tuple(uniforms.shape)}")
        was_training = self.training
        self.eval()
        C, H, W = shape
        r = self.reach
        rows = range(H)
        if progress:
            from tqdm.auto import tqdm
            rows = tqdm(rows, desc="PixelCNN sampling", leave=False)
        needed = (~keep).any(dim=0).cpu()  # (C, H, W): sub-pixels some image still has to draw; one sync
        for i in rows:
            if fast and needed[:, i].any():  # the vertical stacks, once per row, on the rows within reach
                context = self.row_context(from_pixels(x[:, :, max(0, i - r):i + 1]))
            for j in range(W):
                for ch in range(C):
                    if not needed[ch, i, j]:
                        continue
                    todo = ~keep[:, ch, i, j]
                    # x was validated above: call the network directly (forward() would re-check every pixel)
                    if fast:  # the horizontal stacks only, on the columns within reach to the left
                        c0 = max(0, j - r)
                        logits = self.last_pixel_logits(from_pixels(x[:, :, i:i + 1, c0:j + 1]),
                                                        [c[..., c0:j + 1] for c in context])[:, :, ch]  # (n, 256)
                    else:
                        logits = self.net(from_pixels(x))[:, :, ch, i, j]
                    cdf = torch.softmax(logits.float() / temperature, dim=1).cumsum(1)  # (n, 256)
                    value = torch.searchsorted(cdf, uniforms[:, ch, i, j, None].contiguous()).clamp(max=255)[:, 0]
                    x[:, ch, i, j] = torch.where(todo, value, x[:, ch, i, j])
        self.train(was_training)
        return x


def receptive_field(model: nn.Module, shape=(28, 28), pixel=None, seed: int = 0) -> torch.Tensor:
    """Which input pixels the prediction at ``pixel`` depends on, from input gradients (UvA tutorial 12).

    Args:
        model: a :class:`PixelCNN` or :class:`PlainPixelCNN` (anything with ``net(float_input)``).
        shape: (H, W) of the input.
        pixel: (i, j); default the centre.
    Returns:
        (H, W) bool, True where the gradient of the prediction at ``pixel`` is non-zero.
    """
    H, W = shape
    i, j = pixel if pixel is not None else (H // 2, W // 2)
    if not (0 <= i < H and 0 <= j < W):
        raise ValueError(f"pixel must lie inside the (H, W) = {shape} image, got {(i, j)}")
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    C = getattr(model, "in_channels", 1)
    inp = (torch.rand((1, C, H, W), generator=g) * 2 - 1).to(dev).requires_grad_()
    was_training = model.training
    model.eval()
    # the log-partition of the logits at (i, j) depends on every input the prediction uses (every colour's)
    model.net(inp)[0, :, :, i, j].float().logsumexp(0).sum().backward()
    model.train(was_training)
    return (inp.grad[0].abs() > 0).any(0).cpu()


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 pixels 0..255 (the inverse of the data loaders' scaling)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
