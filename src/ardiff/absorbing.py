r"""Order-agnostic autoregression *is* absorbing-state diffusion, on 8-bit images.

A fixed-order autoregressive model factorises :math:`p(x) = \prod_{t=1}^{D} p(x_{\sigma(t)} \mid x_{\sigma(<t)})`
over the D = H·W pixels, σ a permutation (raster order for the PixelCNN). Read backwards, that is a corruption
that hides one pixel per step: the absorbing ("mask") corruption of D3PM (Austin et al. 2021). Average over σ
and one network serves every order (ARDM, Hoogeboom et al. 2022, eq. 4):

.. math::
    \mathbb{E}_\sigma[-\log p_\sigma(x)]
    = D\;\mathbb{E}_{t \sim U\{1..D\}}\,\mathbb{E}_\sigma\Big[\frac{1}{D-t+1}
      \sum_{k \in \sigma(\ge t)} -\log p(x_k \mid x_{\sigma(<t)})\Big].

Why: given the visible set :math:`\sigma(<t)`, the next pixel :math:`\sigma(t)` is uniform over the D − t + 1
hidden ones, so the hidden pixels' mean NLL is the expected t-th term; D · E_t sums the D terms. One draw of
(σ, t) is an unbiased estimate (:func:`bound_terms`, :func:`loss`) of the order-averaged NLL, which bounds
:math:`-\log \frac{1}{D!}\sum_\sigma p_\sigma(x)` from above (Jensen). It is the ELBO of absorbing diffusion with a
uniform step; the continuous-time form of MD4 (Shi et al. 2024) and MDLM (Sahoo et al. 2024) masks each pixel
independently with probability s and weights by 1/s (linear schedule):
:math:`\int_0^1 \tfrac1s\, \mathbb{E}\big[\sum_{k\ \mathrm{masked}} -\log p(x_k \mid z_s)\big]\, ds`.

- :func:`model_input`: pixels + visibility mask -> the network's (B, 2, H, W) input; hidden pixels never enter.
- :class:`AbsorbingNet`: the library's U-Net with 2 input channels and a 256-way head:
  ``model(model_input(x, visible))`` -> logits (B, 256, 1, H, W).
- :func:`orders`: 'random', 'raster' or 'coarse-to-fine' permutations; :func:`reveal_mask`: the first k visible.
- :func:`loss`, :func:`nll_bound`, :func:`bound_bits`: the bound; :func:`exact_nll`: the exact NLL in one fixed
  order (D passes per batch of images).
- :func:`sample`: reveal D / steps pixels per step (parallel decoding); steps = D is exact AR sampling.
- :class:`ToyNet`, :func:`enumerate_identity`: the identity checked exactly on an image small enough that every
  order and step can be enumerated (D <= 6).

Pixels are integer values 0..255, (B, 1, H, W); a permutation σ is a (B, D) long tensor of flat pixel indices
(row-major), σ[b, i] the pixel revealed at step i + 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .metrics import bits_per_dim
from .pixelcnn import _check_pixels, from_pixels
from .unet import UNet

__all__ = ["ORDERS", "model_input", "AbsorbingNet", "ToyNet", "orders", "reveal_mask", "bound_terms", "loss",
           "nll_bound", "bound_bits", "exact_nll", "enumerate_identity", "sample"]

ORDERS = ("random", "raster", "coarse-to-fine")


def _input(x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    x = torch.where(visible, from_pixels(x), 0.0)          # hidden pixels: 0, whatever their value
    return torch.cat([x, visible.float()], dim=1)          # (B, 2, H, W)


def model_input(x_pixels: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    r"""The network's input: the visible pixels scaled to [-1, 1] (0 where hidden) and the mask as a channel.

    Args:
        x_pixels: (B, 1, H, W) integer pixels 0..255. visible: (B, 1, H, W) bool, True where shown.
    Returns:
        (B, 2, H, W) float: ``[x * visible, visible]``; no hidden pixel's value reaches it.
    """
    _check_pixels(x_pixels)
    if not isinstance(visible, torch.Tensor) or visible.dtype != torch.bool or visible.shape != x_pixels.shape:
        raise ValueError(f"visible must be a bool tensor of x_pixels' shape {tuple(x_pixels.shape)}, got "
                         f"{getattr(visible, 'dtype', type(visible).__name__)} {tuple(getattr(visible, 'shape', ()))}")
    return _input(x_pixels, visible)


class AbsorbingNet(UNet):
    r""":math:`p_\theta(x_k \mid x_{\mathrm{visible}})` for every pixel k: the U-Net on ``model_input``.

    Input (B, 2, H, W) from :func:`model_input`; output logits (B, 256, 1, H, W). The U-Net's time input is the
    number of visible pixels t − 1 (ARDM conditions on the step), read from the mask channel, so it leaks nothing.
    Built with ``in_channels=2, out_channels=256`` (the defaults here) and no class conditioning.
    """

    def __init__(self, config=None, **kwargs):
        if config is None:
            kwargs = {"in_channels": 2, "out_channels": 256, **kwargs}
        super().__init__(config, **kwargs)
        c = self.config
        if (c.in_channels, c.out_channels, c.num_classes) != (2, 256, None):
            raise ValueError(f"AbsorbingNet needs in_channels=2, out_channels=256, num_classes=None; got "
                             f"{c.in_channels}, {c.out_channels}, {c.num_classes}")

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        if inp.ndim != 4 or inp.shape[1] != 2:
            raise ValueError(f"inp must be model_input(x, visible), (B, 2, H, W); got {tuple(inp.shape)}")
        t = inp[:, 1].flatten(1).sum(1).round().long()     # (B,) visible pixels
        return super().forward(inp, t)[:, :, None]          # (B, 256, 1, H, W)


class ToyNet(nn.Module):
    """A tiny random network with the absorbing contract, for images small enough to enumerate every order.

    Two 3 x 3 convolutions on :func:`model_input` (so no hidden pixel reaches it), weights drawn from
    N(0, ``scale``²) with ``seed``: on a 2 x 2 image every output reads every input, and its conditionals
    disagree between orders (a model whose orders all agree would make the identity trivial). Output logits
    (B, 256, 1, H, W).
    """

    def __init__(self, seed: int = 0, scale: float = 1.5, width: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.Tanh(), nn.Conv2d(width, 256, 3, padding=1))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * scale)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        return self.net(inp)[:, :, None]


def orders(kind: str, n: int, H: int, W: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """n generation orders σ of the D = H·W pixels, (n, D) long: σ[b, i] is the flat index revealed at step i + 1.

    - 'random': an independent uniform permutation per image (the training distribution);
    - 'raster': row by row, left to right (the PixelCNN's order), the same for every image;
    - 'coarse-to-fine': the pixels on the stride-4 grid (i, j both multiples of 4) first, then the rest of the
      stride-2 grid, then the others, in raster order within each level, fixed, the same for every image. For
      28 x 28: 49, 147, 588 pixels. A subsampled-grid order in the spirit of the multiscale PixelCNN's resolution
      doubling (Reed et al. 2017) and of Subscale Pixel Networks' stride-s slices (Menick & Kalchbrenner 2019);
      not ARDM's "upscaling", which runs over bit depth (the most significant bits first), not over space.
    """
    if kind not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {kind!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or min(H, W) < 1:
        raise ValueError(f"n, H and W must be ints >= 1, got {n!r}, {H!r}, {W!r}")
    device = device if device is not None else (generator.device if generator is not None else None)
    D = H * W
    if kind == "random":
        return torch.rand((n, D), generator=generator, device=device).argsort(dim=1)
    p = torch.arange(D, device=device)
    if kind == "coarse-to-fine":
        i, j = p // W, p % W
        level = 2 - ((i % 2 == 0) & (j % 2 == 0)).long() - ((i % 4 == 0) & (j % 4 == 0)).long()  # 0, 1 or 2
        p = (level * D + p).argsort()                       # by level, raster within a level
    return p.expand(n, D).clone()


def reveal_mask(sigma: torch.Tensor, k, H: int, W: int) -> torch.Tensor:
    """The visibility mask after k steps of order σ: pixel σ[b, i] visible iff i < k[b].

    Args:
        sigma: (B, D) permutations. k: int, or (B,) ints in [0, D].
    Returns:
        (B, 1, H, W) bool.
    """
    B, D = sigma.shape
    rank = torch.empty_like(sigma).scatter_(1, sigma, torch.arange(D, device=sigma.device).expand(B, D))  # (B, D)
    k = torch.as_tensor(k, device=sigma.device).reshape(-1, 1)      # (B, 1) or (1, 1)
    return (rank < k).view(B, 1, H, W)


def _logits(model, x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    logits = model(_input(x, visible))
    if logits.shape != (len(x), 256, *x.shape[1:]):
        raise ValueError(f"model(model_input(x, visible)) must give logits (B, 256, 1, H, W) = "
                         f"{(len(x), 256, *x.shape[1:])}, got {tuple(logits.shape)}")
    return logits


def _pixel_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x_k | visible) for every pixel k, nats, (B, 1, H, W)."""
    return F.cross_entropy(logits.float(), x.long(), reduction="none")


def _terms(model, x: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """ARDM's term for given orders σ (B, D) and steps t (B,): D / (D - t + 1) times the hidden pixels' NLL, (B,)."""
    B, _, H, W = x.shape
    D = H * W
    visible = reveal_mask(sigma, t - 1, H, W)                                                # (B, 1, H, W)
    nll = _pixel_nll(_logits(model, x, visible), x)                                         # (B, 1, H, W)
    return D / (D - t + 1) * (nll * ~visible).flatten(1).sum(1)


def bound_terms(model, x_pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One draw of ARDM's eq. 4 per image: σ uniform, t ~ U{1..D}, visible = σ(1..t−1), and

    .. math:: L = \frac{D}{D-t+1} \sum_{k \in \sigma(\ge t)} -\log p(x_k \mid x_{\sigma(<t)}),

    an unbiased estimate of the order-averaged NLL :math:`\mathbb{E}_\sigma[-\log p_\sigma(x)]`.

    Args:
        model: ``model(model_input(x, visible))`` -> (B, 256, 1, H, W) logits. x_pixels: (B, 1, H, W) pixels 0..255.
    Returns:
        (B,) nats per image.
    """
    _check_pixels(x_pixels)
    B, _, H, W = x_pixels.shape
    D = H * W
    sigma = orders("random", B, H, W, generator, x_pixels.device)                           # (B, D)
    t = torch.randint(1, D + 1, (B,), generator=generator, device=x_pixels.device)           # (B,) step
    return _terms(model, x_pixels, sigma, t)


def loss(model, x_pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The training loss: :func:`bound_terms` averaged over the batch and divided by D, i.e. nats per dimension
    (the mean NLL of the hidden pixels; / ln 2 = bits/dim of the bound). Scalar."""
    return bound_terms(model, x_pixels, generator).mean() / x_pixels[0].numel()


class _evaluating:
    """Eval mode inside, the caller's mode restored after."""

    def __init__(self, model):
        self.model, self.was_training = model, getattr(model, "training", False)

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)


def _device(model, default=None):
    return next(iter(model.parameters()), torch.empty(0, device=default)).device


@torch.no_grad()
def bound_bits(model, x_pixels: torch.Tensor, draws: int = 1, generator: torch.Generator | None = None,
               batch_size: int = 250, progress: bool = False) -> torch.Tensor:
    """The bound's draws, per image: :func:`bound_terms` in bits/dim for every image and each of ``draws`` draws of
    (σ, t), (B, draws). Their mean over draws is each image's estimate, so two models (or a bound and an exact
    likelihood) measured on the same images can be compared image by image.

    Returns:
        (B, draws) float bits/dim, on the CPU.
    """
    _check_pixels(x_pixels)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be an int >= 1, got {draws!r}")
    dev = _device(model, x_pixels.device)
    chunks = [(d, i) for d in range(draws) for i in range(0, len(x_pixels), batch_size)]
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="absorbing bound", leave=False)
    with _evaluating(model):
        nats = torch.cat([bound_terms(model, x_pixels[i:i + batch_size].to(dev), generator).cpu() for _, i in chunks])
    return bits_per_dim(nats, x_pixels[0].numel()).view(draws, len(x_pixels)).T       # (B, draws)


def nll_bound(model, x_pixels: torch.Tensor, draws: int = 1, generator: torch.Generator | None = None,
              batch_size: int = 250, progress: bool = False) -> tuple[float, float]:
    """The bound in bits/dim on ``x_pixels``: the mean of :func:`bound_terms` over images × ``draws`` of (σ, t),
    and its standard error over those N = B · draws values (:func:`bound_bits` gives them per image).

    Returns:
        ``(bits_per_dim, standard_error)``, floats (the error is nan when N = 1).
    """
    bpd = bound_bits(model, x_pixels, draws, generator, batch_size, progress).flatten()      # (N,)
    return bpd.mean().item(), (bpd.std() / math.sqrt(len(bpd))).item() if len(bpd) > 1 else float("nan")


def _sigma(order, n: int, H: int, W: int, generator, device) -> torch.Tensor:
    """An order by name (:func:`orders`), or given permutations (D,) or (n, D), checked; (n, D) long."""
    if isinstance(order, str):
        return orders(order, n, H, W, generator, device)
    D = H * W
    if not isinstance(order, torch.Tensor) or order.is_floating_point() or order.shape not in ((D,), (n, D)):
        raise ValueError(f"order must be one of {ORDERS} or an integer permutation tensor of shape ({D},) or "
                         f"({n}, {D}), got {getattr(order, 'shape', order)!r}")
    sigma = order.to(device).long().expand(n, D)
    if not torch.equal(sigma.sort(dim=1).values, torch.arange(D, device=device).expand(n, D)):
        raise ValueError("order must hold a permutation of 0..D-1 in every row")
    return sigma


@torch.no_grad()
def exact_nll(model, x_pixels: torch.Tensor, order="raster", generator: torch.Generator | None = None,
              batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    r"""The exact NLL of each image under one fixed order σ, in D network passes per batch of images:

    .. math:: -\log p_\sigma(x) = \sum_{i=1}^{D} -\log p(x_{\sigma(i)} \mid x_{\sigma(<i)}).

    The images go through in batches of at most ``batch_size`` (each batch costs D passes, so the cost is
    D · ⌈B / batch_size⌉ passes of that size); the orders are drawn once for all B images, so the result does not
    depend on ``batch_size``.

    Args:
        x_pixels: (B, 1, H, W) pixels 0..255.
        order: a name of :data:`ORDERS` ('random' draws one per image with ``generator``), or permutations (D,)
            or (B, D).
        batch_size: images per network pass, >= 1.
    Returns:
        (B,) nats per image; :func:`ardiff.metrics.bits_per_dim` gives bits/dim.
    """
    _check_pixels(x_pixels)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    B, _, H, W = x_pixels.shape
    D = H * W
    dev = _device(model, x_pixels.device)
    sigma = _sigma(order, B, H, W, generator, dev)           # (B, D), drawn before any batching
    total = torch.zeros(B)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=D * math.ceil(B / batch_size), desc="exact NLL", leave=False)
    with _evaluating(model):
        for lo in range(0, B, batch_size):
            x, s = x_pixels[lo:lo + batch_size].to(dev), sigma[lo:lo + batch_size]       # (b, 1, H, W), (b, D)
            part = torch.zeros(len(x), device=dev)
            for i in range(D):
                nll = _pixel_nll(_logits(model, x, reveal_mask(s, i, H, W)), x).flatten(1)   # (b, D)
                part += nll.gather(1, s[:, i:i + 1])[:, 0]                                   # the i-th conditional
                if bar is not None:
                    bar.update()
            total[lo:lo + len(x)] = part.cpu()
    if bar is not None:
        bar.close()
    return total


@torch.no_grad()
def enumerate_identity(model, x_pixels: torch.Tensor, max_d: int = 6) -> dict:
    r"""The identity, exactly, on an image of D <= ``max_d`` pixels: every one of the D! orders σ and D steps t.

    - ``exact``: :math:`\frac{1}{D!}\sum_\sigma -\log p_\sigma(x)`, the order-averaged NLL, from
      :func:`exact_nll` in each order;
    - ``loss``: :math:`\frac{1}{D!}\sum_\sigma \frac{1}{D}\sum_{t=1}^{D} L(\sigma, t)`, the expectation of the
      training loss's term (the formula :func:`bound_terms` draws), over every (σ, t);
    - ``per_order``: (D!, B) the exact NLL in each order (in the order of ``itertools.permutations``), and
      ``orders``: D!.

    Args:
        model: the absorbing contract (e.g. :class:`ToyNet`). x_pixels: (B, 1, H, W) pixels 0..255, H·W <= max_d.
    Returns:
        a dict of (B,) float64 tensors in nats (and the count), on the CPU.
    """
    import itertools

    _check_pixels(x_pixels)
    B, _, H, W = x_pixels.shape
    D = H * W
    if D > max_d:
        raise ValueError(f"x_pixels must have at most max_d = {max_d} pixels (D! orders are enumerated), got "
                         f"{H} x {W} = {D}")
    dev = _device(model, x_pixels.device)
    x = x_pixels.to(dev)
    per_order, loss = [], torch.zeros(B, dtype=torch.float64)
    with _evaluating(model):
        for p in itertools.permutations(range(D)):
            sigma = torch.tensor(p, device=dev).expand(B, D)
            per_order.append(exact_nll(model, x, sigma).double())
            for t in range(1, D + 1):
                loss += _terms(model, x, sigma, torch.full((B,), t, device=dev)).double().cpu()
    per_order = torch.stack(per_order)                                                  # (D!, B)
    return {"exact": per_order.mean(0), "loss": loss / (len(per_order) * D), "per_order": per_order,
            "orders": len(per_order)}


@torch.no_grad()
def sample(model, n: int | None, steps: int, order="random", shape=(1, 28, 28),
           generator: torch.Generator | None = None, visible: torch.Tensor | None = None,
           x_context: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
    """Generate by unmasking: reveal the hidden pixels in ``order``, D / ``steps`` per step (as evenly as possible:
    M hidden pixels give each step ⌊M/steps⌋ or ⌈M/steps⌉), each drawn from its own predicted categorical given
    the pixels visible before the step (parallel decoding). ``steps = D`` is exact autoregressive sampling in that
    order. With ``visible`` and ``x_context``, the given pixels are kept and only the rest are drawn, in the
    order's relative order; a step that reveals nothing in any image costs no network pass.

    Args:
        n: images (None: taken from ``x_context``). steps: network passes, 1..D (D = H·W).
        order: a name of :data:`ORDERS`, or permutations (D,) or (n, D).
        shape: (1, H, W). generator: the orders' and the draws' randomness, on the model's device.
        visible: (n, 1, H, W) bool, True where ``x_context`` (pixels 0..255, same shape) is given.
    Returns:
        (n, 1, H, W) int64 pixels 0..255.
    """
    if (visible is None) != (x_context is None):
        raise ValueError("visible and x_context must be given together (the mask and the pixels it shows)")
    if x_context is not None:
        _check_pixels(x_context)
        if visible.dtype != torch.bool or visible.shape != x_context.shape:
            raise ValueError(f"visible must be a bool tensor of x_context's shape {tuple(x_context.shape)}, got "
                             f"{visible.dtype} {tuple(visible.shape)}")
        if n is not None and n != len(x_context):
            raise ValueError(f"n must be None or len(x_context) = {len(x_context)}, got {n!r}")
        n, shape = len(x_context), tuple(x_context.shape[1:])
    shape = tuple(shape)
    if len(shape) != 3 or shape[0] != 1 or min(shape[1:]) < 1:
        raise ValueError(f"shape must be (1, H, W), got {shape}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    _, H, W = shape
    D = H * W
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= D:
        raise ValueError(f"steps must be an int in [1, D = {D}], got {steps!r}")
    dev = _device(model)
    sigma = _sigma(order, n, H, W, generator, dev)                                     # (n, D)
    x = torch.zeros((n, *shape), dtype=torch.long, device=dev)
    vis = torch.zeros((n, *shape), dtype=torch.bool, device=dev)
    if x_context is not None:
        vis = visible.to(dev)
        x = torch.where(vis, x_context.to(dev).long(), 0)
    # given pixels first (their relative order kept), then the hidden ones in σ's order
    given = vis.flatten(1).gather(1, sigma)                                             # (n, D)
    sigma = sigma.gather(1, (~given).long().argsort(dim=1, stable=True))
    m = given.sum(1, keepdim=True)                                                      # (n, 1) given pixels
    k = torch.arange(D, device=dev) - m                                                 # (n, D) rank among the hidden
    step_at = torch.where(k >= 0, k.clamp(min=0) * steps // (D - m).clamp(min=1), -1)   # step revealing σ's i-th pixel
    step_of = torch.empty_like(step_at).scatter_(1, sigma, step_at).view(n, *shape)     # (n, 1, H, W); -1: given
    busy = torch.bincount(step_of[step_of >= 0], minlength=steps).cpu() > 0             # (steps,) one sync
    todo = range(steps)
    if progress:
        from tqdm.auto import tqdm
        todo = tqdm(todo, desc="absorbing sampling", leave=False)
    with _evaluating(model):
        for s in todo:
            if not busy[s]:
                continue
            now = step_of == s                                                          # (n, 1, H, W)
            probs = _logits(model, x, vis).float().softmax(dim=1).movedim(1, -1)        # (n, 1, H, W, 256)
            u = torch.rand((n, *shape, 1), generator=generator, device=dev)
            value = torch.searchsorted(probs.cumsum(-1).contiguous(), u).clamp(max=255)[..., 0]  # inverse CDF
            x = torch.where(now, value, x)
            vis = vis | now
    return x
