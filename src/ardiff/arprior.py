r"""Autoregressive priors for diffusion: the two methods of Li (2025) and a principled variant.

- **Method 1, AR consistency loss.** Train the DDPM with
  :math:`L = L_\text{diff} + \lambda L_\text{AR}`, :math:`L_\text{diff} = \lVert\varepsilon_\theta(x_t,t)-\varepsilon\rVert^2`,
  :math:`L_\text{AR} = \lVert\hat x_0 - x_0^\text{AR}\rVert^2`, with
  :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta)/\sqrt{\bar\alpha_t}` and
  :math:`x_0^\text{AR}` a partner image made by a separately trained AR model (:func:`ar_partners`).
  Since :math:`L_\text{diff} = \mathrm{SNR}_t\lVert\hat x_0 - x_0\rVert^2`, the minimiser over
  :math:`\hat x_0` is :math:`(\mathrm{SNR}_t\,\mathbb E[x_0\mid x_t] + \lambda\,\mathbb E[x_0^\text{AR}\mid x_t])/(\mathrm{SNR}_t+\lambda)`:
  the denoiser is pulled toward the AR partner with weight :func:`consistency_weight`.
- **Method 2, AR prior blending.** Train as usual; start the unchanged reverse process at step T-1 from
  :math:`x_T = \alpha x^\text{AR} + (1-\alpha)\eta`, :math:`\eta\sim\mathcal N(0,I)` (:func:`blend_init`).
  Its noise level is wrong for step T-1 unless α = 0: the model expects unit variance there.
- **Principled variant** (truncated diffusion, Zheng et al. 2023; SDEdit, Meng et al. 2022): noise
  :math:`x^\text{AR}` with the forward process to ``t_start``, :math:`x_{t_s} = \sqrt{\bar\alpha_{t_s}}x^\text{AR} + \sqrt{1-\bar\alpha_{t_s}}\eta`
  (:func:`truncated_init`), and run only the remaining steps (:func:`sample_from_ar`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .ddpm import _x0_from_eps, noised
from .samplers import sample
from .forward import _check_schedule, _gather, q_sample
from .schedules import NoiseSchedule

__all__ = ["consistency_loss", "consistency_weight", "ar_partners", "blend_init", "truncated_init",
           "sample_from_ar", "PAIRINGS"]

PAIRINGS = ("sample", "completion")


def _check_lam(lam) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    return float(lam)


def consistency_loss(model, x0: torch.Tensor, x0_ar: torch.Tensor, schedule: NoiseSchedule, lam: float,
                     generator: torch.Generator | None = None):
    r"""Method 1: :math:`L = L_\text{diff} + \lambda\,L_\text{AR}` on one batch (means over all pixels).

    t and ε are drawn exactly as in :func:`ardiff.ddpm.loss` (same generator calls, same order), so
    ``lam=0`` gives the baseline's loss, value for value.

    Args:
        model: ``model(x_t, t) -> eps``.
        x0: (B, C, H, W) training images in [-1, 1].
        x0_ar: (B, C, H, W) their AR partners in [-1, 1] (see :func:`ar_partners`).
        lam: λ >= 0.
    Returns:
        ``(total, diffusion, ar)``: three scalars, :math:`L`, :math:`L_\text{diff}`, :math:`L_\text{AR}`.
    """
    _check_schedule(schedule)
    lam = _check_lam(lam)
    if x0_ar.shape != x0.shape:
        raise ValueError(f"x0_ar must have the shape of x0, {tuple(x0.shape)}; got {tuple(x0_ar.shape)}")
    t, eps, x_t = noised(x0, schedule, generator)                  # the draws of ddpm.loss, in its order
    pred = model(x_t, t).float()                                   # eps_theta(x_t, t)
    diffusion = F.mse_loss(pred, eps.float())                      # ||eps_theta - eps||^2
    abar = _gather(schedule, "alphas_cumprod", t, pred)            # \bar\alpha_t, (B, 1, 1, 1)
    x0_hat = _x0_from_eps(x_t.float(), pred, abar)                 # (x_t - sqrt(1-abar) eps_theta) / sqrt(abar)
    ar = F.mse_loss(x0_hat, x0_ar.float())                         # ||x0_hat - x0_AR||^2
    return diffusion + lam * ar, diffusion, ar


def consistency_weight(schedule: NoiseSchedule, lam: float) -> torch.Tensor:
    r"""(T,) weight of the AR partner in method 1's optimal :math:`\hat x_0`: :math:`\lambda / (\mathrm{SNR}_t + \lambda)`.

    :math:`L_\text{diff} + \lambda L_\text{AR} = \mathrm{SNR}_t\lVert\hat x_0-x_0\rVert^2 + \lambda\lVert\hat x_0-x_0^\text{AR}\rVert^2`,
    :math:`\mathrm{SNR}_t = \bar\alpha_t/(1-\bar\alpha_t)`; minimising over :math:`\hat x_0` gives the weights
    :math:`\mathrm{SNR}_t/(\mathrm{SNR}_t+\lambda)` on the data and :math:`\lambda/(\mathrm{SNR}_t+\lambda)` on the partner.
    """
    _check_schedule(schedule)
    lam = _check_lam(lam)
    snr = schedule.snr.double()
    return (lam / (snr + lam)).float() if lam > 0 else torch.zeros(schedule.T)


@torch.no_grad()
def ar_partners(pixelcnn, x0: torch.Tensor, pairing: str, keep_rows: int = 14, seed: int = 0,
                batch_size: int = 256, pool: int | None = None, progress: bool = True) -> torch.Tensor:
    """One AR partner :math:`x_0^\\text{AR}` per training image, drawn from a trained PixelCNN.

    The source does not say how a partner is paired with its image. Two natural readings:

    - ``"sample"``: an unconditional PixelCNN sample, independent of x0 (a random pairing);
    - ``"completion"``: the PixelCNN's completion of x0 from its top ``keep_rows`` rows (the rows
      below are sampled), so the partner agrees with x0 where x0 was kept.

    With ``pairing="sample"`` and ``pool=P``, only P samples are drawn and image i gets sample i mod P.
    The partner is independent of x0 either way, and the consistency loss then depends on the partners
    only through their mean and spread, which P samples estimate; it saves sampling time on a CPU.

    Args:
        pixelcnn: a :class:`~ardiff.pixelcnn.PixelCNN` (one channel).
        x0: (N, 1, H, W) images in [-1, 1].
        seed: seeds the sampler's uniforms (one generator for the whole set: reproducible).
    Returns:
        (N, 1, H, W) float partners in [-1, 1], on the CPU.
    """
    from .pixelcnn import from_pixels, to_pixels

    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    if x0.ndim != 4 or x0.shape[1] != 1:
        raise ValueError(f"x0 must have shape (N, 1, H, W), got {tuple(x0.shape)}")
    H = x0.shape[2]
    if pairing == "completion" and not 0 <= keep_rows <= H:
        raise ValueError(f"keep_rows must be in [0, H] = [0, {H}], got {keep_rows}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if pool is not None and (pairing != "sample" or pool < 1):
        raise ValueError(f"pool must be None, or >= 1 with pairing='sample'; got pool={pool!r}, pairing={pairing!r}")
    if pool is not None and pool < len(x0):
        drawn = ar_partners(pixelcnn, x0[:pool], "sample", seed=seed, batch_size=batch_size, progress=progress)
        return drawn[torch.arange(len(x0)) % pool]
    dev = next(pixelcnn.parameters()).device
    gen = torch.Generator(dev).manual_seed(seed)
    out = []
    chunks = range(0, len(x0), batch_size)
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc=f"AR partners ({pairing})", leave=False)
    for i in chunks:
        xb = x0[i:i + batch_size]
        if pairing == "sample":
            px = pixelcnn.sample(len(xb), tuple(xb.shape[1:]), generator=gen)
        else:
            keep = torch.zeros(xb.shape, dtype=torch.bool)
            keep[:, :, :keep_rows] = True                                # (n, 1, H, W): top rows kept
            px = pixelcnn.sample(x_init=to_pixels(xb), mask=keep, generator=gen)
        out.append(from_pixels(px).cpu())
    return torch.cat(out)


def blend_init(x_ar: torch.Tensor, alpha: float, noise: torch.Tensor) -> torch.Tensor:
    r"""Method 2's start: :math:`x_T = \alpha\,x^\text{AR} + (1-\alpha)\,\eta`, α in [0, 1].

    Its per-pixel variance is :math:`\alpha^2\mathrm{Var}(x^\text{AR}) + (1-\alpha)^2`, below the 1 that
    :math:`q(x_{T-1})` has, for every 0 < α < 1.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if noise.shape != x_ar.shape:
        raise ValueError(f"noise must have the shape of x_ar, {tuple(x_ar.shape)}; got {tuple(noise.shape)}")
    return alpha * x_ar + (1 - alpha) * noise


def truncated_init(x_ar: torch.Tensor, t_start: int, schedule: NoiseSchedule, noise: torch.Tensor) -> torch.Tensor:
    r"""The principled start: :math:`x_{t_s} = \sqrt{\bar\alpha_{t_s}}\,x^\text{AR} + \sqrt{1-\bar\alpha_{t_s}}\,\eta`,
    a draw of :math:`q(x_{t_s}\mid x_0 = x^\text{AR})` (Ho et al. 2020, eq. 4)."""
    return q_sample(x_ar, t_start, schedule, noise)


def sample_from_ar(model, schedule: NoiseSchedule, x_ar: torch.Tensor, t_start: int, steps: int,
                   noise: torch.Tensor, method: str = "ddim", eta: float = 0.0,
                   generator: torch.Generator | None = None, spacing: str = "trailing",
                   clip_x0: bool = False) -> torch.Tensor:
    """The principled variant: forward-noise ``x_ar`` to ``t_start``, then run ``steps`` reverse steps from there.

    Args:
        x_ar: (B, C, H, W) AR samples in [-1, 1].
        t_start: in [0, T-1]; T-1 is (almost) sampling from noise, small values keep x_ar nearly as is.
        steps: model evaluations, in [1, t_start + 1].
        noise: (B, C, H, W) the η of the forward noising (pass the same η to compare methods fairly).
        method, eta, spacing, clip_x0: the sampler (:func:`ardiff.samplers.sample`), e.g. ``"dpm-solver++"``.
    Returns:
        (B, C, H, W) samples.
    """
    x_start = truncated_init(x_ar, t_start, schedule, noise)
    return sample(model, schedule, tuple(x_ar.shape), steps=steps, method=method, eta=eta, x_T=x_start,
                  t_start=t_start, generator=generator, spacing=spacing, clip_x0=clip_x0)
