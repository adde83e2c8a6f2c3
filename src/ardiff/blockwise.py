r"""Block-wise autoregressive diffusion: an image made band by band, each band by a short diffusion.

Split the rows of an image into blocks :math:`B_1, \dots, B_K` of ``block_rows`` = h rows each, in raster
order. Then

.. math:: p(x) = \prod_{k=1}^{K} p(x_{B_k} \mid x_{B_{<k}}),

and each factor is a small diffusion over one block, conditioned on the finished blocks above it
(ACDiT, Hu et al. 2024; BD3-LM, Arriola et al. 2025). h = 1 is row-by-row autoregression with a
diffusion per row; h = H is one block, i.e. plain diffusion. One network serves every h:

- its input is three channels, (B, 3, H, W): the image with the clean context rows (blocks < k), the
  noisy current block :math:`x_t` (block k) and zeros below; a mask of the context rows; a mask of the
  current block's rows;
- an embedding of h (its index in :data:`BLOCK_ROWS`) joins the time embedding (the U-Net's label input);
- it predicts ε for the whole image, and only the current block's pixels count, in training and sampling.

Training (:func:`loss`) draws, per example, h from :data:`BLOCK_ROWS`, a block index k, a timestep t and
ε, and noises only block k. Sampling (:func:`sample`) runs ``steps_per_block`` DDIM (or ancestral) steps
per block, each block starting from fresh noise, and never revises a finished block.
"""
from __future__ import annotations

import torch

from .forward import _check_schedule, q_sample
from .samplers import SPACINGS, predict_eps, reverse_step, timestep_sequence
from .schedules import NoiseSchedule

__all__ = ["BLOCK_ROWS", "block_masks", "denoiser_input", "loss", "sample", "nfe", "num_blocks", "seams", "seam_ratio",
           "block_frechet", "block_frechet_ratio"]

BLOCK_ROWS = (1, 2, 4, 7, 14, 28)  # the block heights one network learns (28x28 MNIST); index = its embedding


def _check_rows(block_rows, size: int) -> int:
    if block_rows not in BLOCK_ROWS or size % block_rows:
        raise ValueError(f"block_rows must be one of {BLOCK_ROWS} and divide the image height {size}, "
                         f"got {block_rows!r}")
    return int(block_rows)


def num_blocks(block_rows: int, size: int = 28) -> int:
    """K = size / h blocks of h rows."""
    return size // _check_rows(block_rows, size)


def nfe(block_rows: int, steps_per_block: int, keep_blocks: int = 0, size: int = 28) -> int:
    """Network evaluations per image: (K - keep_blocks) · steps_per_block."""
    K = num_blocks(block_rows, size)
    if isinstance(steps_per_block, bool) or not isinstance(steps_per_block, int) or steps_per_block < 1:
        raise ValueError(f"steps_per_block must be an int >= 1, got {steps_per_block!r}")
    if not 0 <= keep_blocks <= K:
        raise ValueError(f"keep_blocks must be in [0, {K}] for block_rows={block_rows}, got {keep_blocks}")
    return (K - keep_blocks) * steps_per_block


def block_masks(k: torch.Tensor, h: torch.Tensor, size: int, device=None):
    """Row masks of the context (rows < k·h) and of the current block (rows k·h .. (k+1)·h - 1).

    Args:
        k, h: (B,) block index and block height of each example.
    Returns:
        ``(context, current)``, each (B, 1, size, size) float 0/1.
    """
    rows = torch.arange(size, device=device).view(1, 1, size, 1)
    start, stop = (k * h).view(-1, 1, 1, 1), ((k + 1) * h).view(-1, 1, 1, 1)
    context = (rows < start).float().expand(-1, 1, size, size)
    current = ((rows >= start) & (rows < stop)).float().expand(-1, 1, size, size)
    return context, current


def denoiser_input(x_context: torch.Tensor, x_block: torch.Tensor, context: torch.Tensor,
                   current: torch.Tensor) -> torch.Tensor:
    """The network's (B, 3, H, W) input: [clean context + noisy block + zeros below, context mask, block mask].

    Only the context rows of ``x_context`` and the current rows of ``x_block`` reach the network, so
    the output for block k cannot depend on any pixel below it.
    """
    return torch.cat([x_context * context + x_block * current, context, current], dim=1)


def loss(model, x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None,
         block_rows=BLOCK_ROWS) -> torch.Tensor:
    r"""The block-wise ε-loss, averaged over the current block's pixels of each example, then over the batch.

    Per example: h uniform on ``block_rows``, k uniform on {0, ..., H/h - 1}, t uniform on {0, ..., T-1},
    ε ~ N(0, I); :math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\varepsilon` enters only on block k, and

    .. math:: L = \frac{\sum_{p \in B_k} (\varepsilon_\theta - \varepsilon)_p^2}{|B_k|}.

    Args:
        model: ``model(inp, t, y) -> eps``, inp (B, 3, H, W), y the index of h in :data:`BLOCK_ROWS`; eps (B, 1, H, W).
        x0: (B, 1, H, W) clean images in [-1, 1], H = W.
    """
    _check_schedule(schedule)
    B, _, H, W = x0.shape
    rows = [_check_rows(h, H) for h in block_rows]
    dev = x0.device
    y = torch.tensor([BLOCK_ROWS.index(r) for r in rows], device=dev)[torch.randint(0, len(rows), (B,), device=dev,
                                                                                    generator=generator)]
    h = torch.tensor(BLOCK_ROWS, device=dev)[y]                        # (B,) block heights; y is h's embedding index
    k = (torch.rand(B, device=dev, generator=generator) * (H // h)).long()
    t = torch.randint(0, schedule.T, (B,), device=dev, generator=generator)
    eps = torch.randn(x0.shape, device=dev, dtype=x0.dtype, generator=generator)
    context, current = block_masks(k, h, H, dev)
    inp = denoiser_input(x0, q_sample(x0, t, schedule, eps), context, current)
    err = ((model(inp, t, y).float() - eps.float()) ** 2 * current).sum((1, 2, 3))
    return (err / current.sum((1, 2, 3))).mean()


@torch.no_grad()
def sample(model, schedule: NoiseSchedule, n: int, block_rows: int, steps_per_block: int,
           generator: torch.Generator | None = None, context: torch.Tensor | None = None, keep_blocks: int = 0,
           method: str = "ddim", size: int = 28, device=None, return_blocks: bool = False, progress: bool = False,
           spacing: str = "trailing", clip_x0: bool = False):
    r"""Generate ``n`` images block by block.

    For each block k (from ``keep_blocks`` on): start the block from fresh noise at t = T-1, run
    ``steps_per_block`` steps down to a clean block (DDIM with η = 0 for ``method="ddim"``, the respaced
    ancestral step, DDIM with η = 1, for ``"ddpm"``, or DPM-Solver++(2M) for ``"dpm-solver++"``; the steps of
    :func:`ardiff.samplers.timestep_sequence` with ``spacing``), each conditioned on the finished rows above;
    clip the block to [-1, 1] and write it into the image. ``clip_x0=True`` also clips every step's
    :math:`\hat x_0` to [-1, 1], as in :func:`ardiff.samplers.sample`.

    Args:
        n: images to draw. block_rows: h, one of :data:`BLOCK_ROWS`. steps_per_block: S >= 1.
        context: (n, 1, size, size) images whose first ``keep_blocks`` blocks are copied (completions).
        return_blocks: also return the list of (n, 1, size, size) images after each generated block.
    Returns:
        (n, 1, size, size) images in [-1, 1] (and the per-block list).
    """
    _check_schedule(schedule)
    if method not in ("ddim", "ddpm", "dpm-solver++"):
        raise ValueError(f"method must be 'ddim', 'ddpm' or 'dpm-solver++', got {method!r}")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    K = num_blocks(block_rows, size)
    nfe(block_rows, steps_per_block, keep_blocks, size)  # validates steps_per_block and keep_blocks
    if steps_per_block > schedule.T:
        raise ValueError(f"steps_per_block must be in [1, T] = [1, {schedule.T}], got {steps_per_block}")
    if (context is not None) != (keep_blocks > 0):
        raise ValueError("context must be given exactly when keep_blocks > 0")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    x = torch.zeros(n, 1, size, size, device=device)
    if context is not None:
        if tuple(context.shape) != (n, 1, size, size):
            raise ValueError(f"context must have shape {(n, 1, size, size)}, got {tuple(context.shape)}")
        x[:, :, :keep_blocks * block_rows] = context[:, :, :keep_blocks * block_rows].to(device, torch.float32)
    h = torch.full((n,), block_rows, device=device)
    y = torch.full((n,), BLOCK_ROWS.index(block_rows), device=device)   # h's embedding index
    seq = timestep_sequence(schedule.T - 1, steps_per_block, spacing)
    eta = 0.0 if method == "ddim" else 1.0
    was_training = model.training
    model.eval()
    grown, blocks = [], range(keep_blocks, K)
    if progress:
        from tqdm.auto import tqdm
        blocks = tqdm(blocks, desc=f"blocks of {block_rows} rows", leave=False)
    for k in blocks:
        context_mask, current = block_masks(torch.full((n,), k, device=device), h, size, device)
        x_t = torch.randn(x.shape, device=device, generator=generator) * current
        previous = None                           # DPM-Solver++: (t, x0_hat) of the block's last evaluation
        for i, t in enumerate(seq):
            t_prev = seq[i + 1] if i + 1 < len(seq) else -1
            eps = predict_eps(model, denoiser_input(x, x_t, context_mask, current), t, y)   # in chunks of 64 images
            x_t, previous = reverse_step(x_t, eps, t, t_prev, schedule, method, eta, clip_x0, generator, previous)
            x_t = x_t * current
        x = x + x_t.clamp(-1, 1) * current
        if return_blocks:
            grown.append(x.cpu().clone())
    model.train(was_training)
    return (x, grown) if return_blocks else x


def seams(images: torch.Tensor, block_rows: int):
    r"""Row-to-row jumps at block boundaries and inside blocks, per image.

    With :math:`d_r = \operatorname{mean}_c |x_{r,c} - x_{r-1,c}|` for rows r = 1..H-1, returns the mean of
    :math:`d_r` over the rows that start a block (r = h, 2h, ...) and over the other rows. A generator that
    leaves seams has boundary jumps larger than real images have *at the same rows*, so compare both with
    real digits. h = H has no boundary and h = 1 no inner row: those means are NaN.

    Args:
        images: (N, 1, H, W). block_rows: h.
    Returns:
        ``(boundary, inner)``, each (N,) float tensors.
    """
    H = images.shape[-2]
    h = _check_rows(block_rows, H)
    d = (images[..., 1:, :] - images[..., :-1, :]).abs().mean(-1).flatten(1)   # (N, H-1): d_r for r = 1..H-1
    at = torch.zeros(H - 1, dtype=torch.bool)
    at[torch.arange(h, H, h) - 1] = True
    boundary = d[:, at].mean(1) if at.any() else torch.full((len(d),), float("nan"))
    return boundary, d[:, ~at].mean(1)


def seam_ratio(samples: torch.Tensor, real: torch.Tensor, block_rows: int, draws: int = 200, seed: int = 0):
    r"""How much larger the jumps at block boundaries are than inside blocks, relative to real images:

    :math:`\rho = \dfrac{\bar b_\text{samples} / \bar i_\text{samples}}{\bar b_\text{real} / \bar i_\text{real}}`, with
    :math:`\bar b, \bar i` the means over images of :func:`seams`' boundary and inner jumps. 1 means no seam.

    Args:
        samples, real: (n, 1, H, W) each, the same n (image j of both is resampled together).
        block_rows: h, with 1 < h < H (h = 1 has no inner row, h = H no boundary).
        draws: bootstrap resamples of the images, for the spread.
    Returns:
        ``(ratio, sd)``: the ratio and its bootstrap standard deviation.
    """
    H = samples.shape[-2]
    h = _check_rows(block_rows, H)
    if not 1 < h < H:
        raise ValueError(f"block_rows must be in (1, {H}) for a seam ratio (h = 1 has no inner row, h = {H} no "
                         f"boundary), got {block_rows}")
    if len(samples) != len(real):
        raise ValueError(f"samples and real must have the same number of images, got {len(samples)} and {len(real)}")
    from .resampling import bootstrap_means

    b, i = (v.cpu() for v in seams(samples, h))
    rb, ri = (v.cpu() for v in seams(real, h))
    ratio = float((b.mean() / i.mean()) / (rb.mean() / ri.mean()))
    m = bootstrap_means(b, i, rb, ri, draws=draws, seed=seed)          # (draws, 4), the same images per draw
    return ratio, float(((m[:, 0] / m[:, 1]) / (m[:, 2] / m[:, 3])).std())


def block_frechet(samples: torch.Tensor, reference: torch.Tensor, block_rows: int) -> list[float]:
    """The Fréchet distance between the raw pixels (h·W dimensions) of each block of ``samples`` and of
    ``reference`` (both (N, 1, H, W)); one value per block index k = 0..K-1, to see whether quality falls
    for later blocks."""
    from .metrics import fid

    H = samples.shape[-2]
    h = _check_rows(block_rows, H)
    return [fid(samples[..., k * h:(k + 1) * h, :].flatten(1).double().cpu().numpy(),
                reference[..., k * h:(k + 1) * h, :].flatten(1).double().cpu().numpy()) for k in range(H // h)]


def block_frechet_ratio(samples: torch.Tensor, baseline: torch.Tensor, real: torch.Tensor, block_rows: int,
                        blocks=None, draws: int = 50, seed: int = 0) -> dict:
    r"""Block by block, how far ``samples`` are from ``real`` relative to ``baseline``, with bootstrap spreads:

    :math:`\rho_k = \mathrm{FD}(\text{samples}_k, \text{real}_k) / \mathrm{FD}(\text{baseline}_k, \text{real}_k)`, with FD the
    Fréchet distance between the raw pixels of block k (:func:`block_frechet`). Also the pooled ratio
    :math:`\sum_k \mathrm{FD}(\text{samples}_k) / \sum_k \mathrm{FD}(\text{baseline}_k)`, the least-squares slope of
    :math:`\rho_k` against the position of k in ``blocks`` (per listed block), and the rise
    :math:`\rho_\text{last} - \rho_\text{first}`; the sums, slope and rise run over the listed blocks only. A slope and a
    rise well above zero mean that the samples fall behind the baseline down the image, as compounding errors would.

    Args:
        samples, baseline, real: (N_i, 1, H, W), with h·W < 0.6 min N_i (a resample holds only about 63% distinct
            images; with more pixels than that, the resampled distances are dominated by small-sample bias). Each
            draw resamples the three sets independently, and the one resample of ``real`` serves both distances.
        block_rows: h, a divisor of H.
        blocks: increasing block indices to use (default: all H // h), e.g. the inked ones.
        draws: bootstrap resamples of the images, for the spreads (at least 2).
    Returns:
        a dict of ``blocks``, ``ratio`` and ``ratio_sd`` (one per block), and ``pooled``, ``slope``, ``rise``,
        each with its bootstrap sd (``pooled_sd``, ``slope_sd``, ``rise_sd``).
    """
    import numpy as np

    H = samples.shape[-2]
    h = _check_rows(block_rows, H)
    blocks = list(range(H // h)) if blocks is None else [int(k) for k in blocks]
    if not blocks or not all(0 <= k < H // h for k in blocks) or blocks != sorted(set(blocks)):
        raise ValueError(f"blocks must be a non-empty, increasing list of block indices in [0, {H // h - 1}], got {blocks}")
    if draws < 2:
        raise ValueError(f"draws must be at least 2 for a spread, got {draws}")
    fewest = min(len(samples), len(baseline), len(real))
    if h * samples.shape[-1] >= 0.6 * fewest:   # about 63% distinct images per resample: keep them above the pixel count
        raise ValueError(f"block_rows = {h} gives {h * samples.shape[-1]} pixels per block, too many for {fewest} images: "
                         f"a bootstrap resample needs more distinct images (about 0.63 N) than pixels; use smaller blocks "
                         f"or more than {int(h * samples.shape[-1] / 0.6)} images")
    from .metrics import fid as fd                                    # (N, D), (M, D) -> the Fréchet distance

    def summary(s, b, r):                                             # (N, K', D) each -> ratios, pooled, slope, rise
        fs = np.array([fd(s[:, j], r[:, j]) for j in range(len(blocks))])
        fb = np.array([fd(b[:, j], r[:, j]) for j in range(len(blocks))])
        ratio = fs / fb
        slope = np.polyfit(np.arange(len(ratio)), ratio, 1)[0] if len(ratio) > 1 else 0.0
        return ratio, fs.sum() / fb.sum(), slope, ratio[-1] - ratio[0]

    sets = [v[..., [r for k in blocks for r in range(k * h, (k + 1) * h)], :] for v in (samples, baseline, real)]
    sets = [v.reshape(len(v), len(blocks), -1).double().cpu().numpy() for v in sets]   # (N, K', h·W)
    ratio, pooled, slope, rise = summary(*sets)
    rng = np.random.default_rng(seed)
    boot = [summary(*(v[rng.integers(0, len(v), len(v))] for v in sets)) for _ in range(draws)]
    ratios = np.array([b[0] for b in boot])
    pooled_sd, slope_sd, rise_sd = (float(np.std([b[i] for b in boot])) for i in (1, 2, 3))
    return dict(blocks=blocks, ratio=ratio, ratio_sd=ratios.std(0), pooled=float(pooled), pooled_sd=pooled_sd,
                slope=float(slope), slope_sd=slope_sd, rise=float(rise), rise_sd=rise_sd)
