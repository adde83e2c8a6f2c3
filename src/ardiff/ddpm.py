r"""DDPM (Ho et al. 2020) and DDIM (Song et al. 2021): the noise-prediction loss and the samplers.

Timesteps are 0-indexed (see :mod:`ardiff.schedules`); ``t_prev = -1`` means "the clean image",
with :math:`\bar\alpha_{-1} = 1`. The predicted :math:`\hat x_0` is never clipped unless asked
(``clip_x0=True``). The sample loops and timestep spacing are in :mod:`ardiff.samplers` (``ardiff.samplers.sample``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .forward import _check_schedule, _check_x, _gather, _q_sample, _timesteps, q_posterior
from .schedules import NoiseSchedule

__all__ = ["loss", "noised", "predict_x0", "ddpm_step", "ddim_step", "nll_bound", "snr_strata",
           "discretised_gaussian_log_likelihood"]


def loss(model, x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None,
         y: torch.Tensor | None = None) -> torch.Tensor:
    r"""The simplified DDPM objective (Ho et al. 2020, eq. 14; Algorithm 1).

    :math:`L = \mathbb E_{t, x_0, \varepsilon}\,\lVert \varepsilon - \varepsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\varepsilon,\ t)\rVert^2`,
    t uniform on {0, ..., T-1}.

    Args:
        model: ``model(x_t, t[, y]) -> eps`` of the shape of ``x0``.
        x0: (B, C, H, W) clean images in [-1, 1].
        generator: draws t and ε (on the device of ``x0``).
        y: optional (B,) class labels for a conditional model.
    Returns:
        the scalar mean squared error.
    """
    _check_schedule(schedule)
    t, eps, x_t = noised(x0, schedule, generator)
    pred = model(x_t, t) if y is None else model(x_t, t, y)
    return F.mse_loss(pred.float(), eps.float())


def noised(x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None):
    r"""Algorithm 1's draws: :math:`t \sim \mathcal U\{0, \dots, T-1\}`, then :math:`\varepsilon \sim \mathcal N(0, I)`, then
    :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`.

    Every training objective draws through here, in this order, so objectives share their randomness (and a
    held-out evaluation that calls it with its own generator draws exactly what training would).

    Args:
        x0: (B, ...) clean images, float. generator: draws t and ε, on ``x0``'s device.
    Returns:
        ``(t, eps, x_t)``: (B,) long, and two tensors shaped like ``x0``.
    """
    _check_schedule(schedule)
    _check_x("x0", x0)
    t = torch.randint(0, schedule.T, (x0.shape[0],), device=x0.device, generator=generator)
    eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    return t, eps, _q_sample(x0, t, schedule, eps)  # t is in range by construction: no validation, no GPU sync


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t, schedule: NoiseSchedule) -> torch.Tensor:
    r""":math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon) / \sqrt{\bar\alpha_t}` (Ho et al. 2020, eq. 15)."""
    _check_schedule(schedule)
    t = _timesteps(t, x_t.shape[0], schedule.T, x_t.device)
    return _x0_from_eps(x_t, eps, _gather(schedule, "alphas_cumprod", t, x_t))


def _x0_from_eps(x_t, eps, abar):
    # \hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t} \epsilon) / \sqrt{\bar\alpha_t}
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def ddpm_step(x_t: torch.Tensor, eps: torch.Tensor, t, schedule: NoiseSchedule, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None, clip_x0: bool = False) -> torch.Tensor:
    r"""One ancestral step :math:`x_{t-1} \sim p_\theta(x_{t-1} \mid x_t)` (Ho et al. 2020, Algorithm 2).

    :math:`x_{t-1} = \tilde\mu_t(x_t, \hat x_0) + \sqrt{\tilde\beta_t}\, z`, the posterior of
    :func:`~ardiff.forward.q_posterior` with :math:`\hat x_0` from :func:`predict_x0` and the
    'fixed_small' variance :math:`\tilde\beta_t`. At t = 0 it returns the mean, :math:`\hat x_0`: no noise.
    Equal to :math:`\frac{1}{\sqrt{\alpha_t}}(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\varepsilon) + \sigma_t z`.
    """
    x0_hat = predict_x0(x_t, eps, t, schedule)
    if clip_x0:
        x0_hat = x0_hat.clamp(-1, 1)
    mean, var = q_posterior(x0_hat, x_t, t, schedule)
    if noise is None:
        noise = torch.randn(x_t.shape, device=x_t.device, dtype=x_t.dtype, generator=generator)
    elif noise.shape != x_t.shape:
        raise ValueError(f"noise must have the shape of x_t, {tuple(x_t.shape)}; got {tuple(noise.shape)}")
    return mean + var.sqrt() * noise  # var = 0 at t = 0


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t, t_prev, schedule: NoiseSchedule, eta: float = 0.0,
              noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
              clip_x0: bool = False) -> torch.Tensor:
    r"""One DDIM step from t to ``t_prev`` < t (Song et al. 2021, eq. 12 and 16).

    :math:`x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\varepsilon + \sigma z`,
    :math:`\sigma = \eta\sqrt{(1-\bar\alpha_{t'})/(1-\bar\alpha_t)}\sqrt{1-\bar\alpha_t/\bar\alpha_{t'}}`.
    ``t_prev = -1`` means :math:`\bar\alpha_{t'} = 1` (the clean image). η = 0 is deterministic;
    η = 1 with ``t_prev = t - 1`` is exactly :func:`ddpm_step`.
    """
    _check_schedule(schedule)
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    B = x_t.shape[0]
    if isinstance(t, int) and isinstance(t_prev, int):  # the sampler's case: checked on the host, no GPU sync
        if not -1 <= t_prev < t:
            raise ValueError(f"t_prev must be in [-1, t - 1] = [-1, {t - 1}], got {t_prev}")
    t = _timesteps(t, B, schedule.T, x_t.device)
    if isinstance(t_prev, int) and not isinstance(t_prev, bool):
        t_prev = torch.full((B,), t_prev, dtype=torch.long, device=x_t.device)
    elif not isinstance(t_prev, torch.Tensor) or t_prev.shape != (B,):
        raise ValueError(f"t_prev must be an int or a ({B},) tensor")
    elif (t_prev < -1).any() or (t_prev >= t).any():
        raise ValueError("t_prev must be in [-1, t - 1]")
    abar_t = _gather(schedule, "alphas_cumprod", t, x_t)
    t_prev = t_prev.to(x_t.device)
    abar_prev = _gather(schedule, "alphas_cumprod", t_prev.clamp(min=0), x_t)
    abar_prev = torch.where((t_prev < 0).view(-1, *([1] * (x_t.ndim - 1))), 1.0, abar_prev)  # \bar\alpha_{-1} = 1
    # 1. predicted x_0, formula (12) of Song et al.
    x0_hat = _x0_from_eps(x_t, eps, abar_t)
    if clip_x0:
        x0_hat = x0_hat.clamp(-1, 1)
        eps = (x_t - abar_t.sqrt() * x0_hat) / (1 - abar_t).sqrt()
    # 2. sigma_t(eta), formula (16)
    sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).clamp(min=0).sqrt()
    # 3. direction pointing to x_t, and the random part
    direction = (1 - abar_prev - sigma ** 2).clamp(min=0).sqrt() * eps
    x_prev = abar_prev.sqrt() * x0_hat + direction
    if eta > 0:
        if noise is None:
            noise = torch.randn(x_t.shape, device=x_t.device, dtype=x_t.dtype, generator=generator)
        x_prev = x_prev + sigma * noise
    return x_prev


# ---------------------------------------------------------------- the variational bound in bits/dim
def discretised_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    r"""Ho et al. (2020)'s decoder :math:`\log p(x \mid \mu, \sigma)` for x on the 256-level grid of [-1, 1] (eq. 13).

    The Gaussian's mass over the pixel's bin :math:`[x - 1/255, x + 1/255]`, the outer bins reaching to
    :math:`\pm\infty`, so the 256 probabilities sum to 1. Elementwise, shapes broadcast; float64 inside.
    """
    x, mean, std = (torch.as_tensor(v).double() for v in (x, mean, std))
    upper, lower = (x - mean + 1 / 255) / std, (x - mean - 1 / 255) / std
    log_below_upper = torch.special.log_ndtr(upper)               # log Phi(upper): the first bin
    log_above_lower = torch.special.log_ndtr(-lower)              # log (1 - Phi(lower)): the last bin
    # log(Phi(upper) - Phi(lower)), computed on the side of the mean where it does not cancel
    right = lower > 0
    hi, lo = torch.where(right, -lower, upper), torch.where(right, -upper, lower)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    log_mid = log_hi + torch.log1p(-torch.exp(log_lo - log_hi).clamp(max=1 - 1e-15))
    return torch.where(x < -0.999, log_below_upper, torch.where(x > 0.999, log_above_lower, log_mid))


def snr_strata(schedule: NoiseSchedule, m: int) -> list:
    r"""Split the steps 1..T-1 into ``m`` strata ``[lo, hi)`` of similar width in log SNR, :math:`\log \bar\alpha_t / (1 - \bar\alpha_t)`.

    The bound's KL terms change fastest where the log SNR does: at the least noisy steps, and at a cosine
    schedule's last step, where β is clipped to 0.999 and the SNR falls a thousandfold. Strata of equal log-SNR
    width give those steps strata of their own, so a stratified estimate does not multiply one large term by a
    wide stratum's size. Steps that fall in one stratum are consecutive; empty strata are replaced by halving
    the widest (in steps) until there are ``m``. Returns a list of ``m`` (lo, hi) pairs covering 1..T-1.
    """
    T = schedule.T
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= T - 1:
        raise ValueError(f"m must be an int in [1, T-1] = [1, {T - 1}], got {m!r}")
    abar = schedule.alphas_cumprod.double().cpu()[1:].clamp(1e-30, 1 - 1e-12)      # steps 1..T-1
    log_snr = torch.log(abar / (1 - abar))                                          # decreasing in t
    span = float(log_snr[0] - log_snr[-1])
    level = ((log_snr[0] - log_snr) / span * m).floor().clamp(max=m - 1) if span > 0 else torch.zeros(T - 1)
    edges = [1] + [t for t in range(2, T) if level[t - 1] != level[t - 2]] + [T]
    strata = list(zip(edges[:-1], edges[1:]))
    while len(strata) < m:
        k = max(range(len(strata)), key=lambda i: strata[i][1] - strata[i][0])
        lo, hi = strata[k]
        strata[k:k + 1] = [(lo, (lo + hi) // 2), ((lo + hi) // 2, hi)]
    return strata


@torch.no_grad()
def nll_bound(model, x0_pixels: torch.Tensor, schedule: NoiseSchedule, timesteps: int | None = None,
              variance: str = "small", generator: torch.Generator | None = None, progress: bool = False,
              clip_x0: bool = False) -> dict:
    r"""The DDPM variational bound on :math:`-\log p_\theta(x_0)`, in bits per dimension (Ho et al. 2020, eq. 5).

    With 0-indexed steps (step t here is Ho's t + 1):

    :math:`L = \underbrace{D_{KL}(q(x_{T-1} \mid x_0) \,\|\, \mathcal N(0, I))}_{\text{prior } L_T}
    + \sum_{t=1}^{T-1} \underbrace{D_{KL}(q(x_{t-1} \mid x_t, x_0) \,\|\, p_\theta(x_{t-1} \mid x_t))}_{L_{t-1}}
    \underbrace{- \log p_\theta(x_0 \mid x_{\text{step } 0})}_{\text{decoder } L_0}`.

    Each :math:`L_{t-1}` is a KL between Gaussians: the posterior :math:`\mathcal N(\tilde\mu_t(x_t, x_0), \tilde\beta_t)`
    and the model's :math:`\mathcal N(\tilde\mu_t(x_t, \hat x_0), \sigma_t^2)` with :math:`\sigma_t^2 = \tilde\beta_t`
    (``variance="small"``, as :func:`ddpm_step` samples) or :math:`\beta_t` ("large"), on one draw of
    :math:`x_t \sim q(x_t \mid x_0)` per term. The decoder is :func:`discretised_gaussian_log_likelihood` around
    :math:`\hat x_0` with :math:`\sigma^2 = \tilde\beta` of step 1 (as Ho et al.'s code clips it).

    ``clip_x0=True`` clips :math:`\hat x_0` to [-1, 1] in every KL term and in the decoder, as Ho et al.'s and
    improved-diffusion's bits/dim code do (``clip_denoised=True``): the bound of the reverse process a clipped
    sampler runs. It is still a bound (a valid model, evaluated exactly), and it can be far tighter where
    :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon)/\sqrt{\bar\alpha_t}` amplifies ε errors (small ᾱ).

    Args:
        model: ``model(x_t, t) -> eps``.
        x0_pixels: (B, C, H, W) integer pixel values 0..255 (the data is discrete, so the bound is a likelihood).
        timesteps: None for every one of the T - 1 KL terms (T network evaluations per image), or m in
            [1, T - 1] for an unbiased stratified estimate of their sum: one random step from each of the m
            strata of :func:`snr_strata`, weighted by its stratum's size (m + 1 evaluations).
        variance: 'small' or 'large', the reverse process's fixed variance.
        generator: draws the steps and the noise (on the model's device).
        clip_x0: clip :math:`\hat x_0` to [-1, 1] (the reference code's way; report the unclipped bound beside it).
    Returns:
        a dict of (B,) float64 tensors in bits/dim: ``total`` = ``prior`` + ``diffusion`` + ``decoder``;
        and ``t`` (the steps of the KL terms, list) with ``terms`` (B, len(t)), each term's bits/dim before
        weighting.
    """
    _check_schedule(schedule)
    if not isinstance(x0_pixels, torch.Tensor) or x0_pixels.ndim != 4 or x0_pixels.is_floating_point():
        raise ValueError(f"x0_pixels must be a (B, C, H, W) integer tensor of pixel values 0..255, got "
                         f"{getattr(x0_pixels, 'dtype', type(x0_pixels).__name__)} {tuple(getattr(x0_pixels, 'shape', ()))}")
    if x0_pixels.numel() and (int(x0_pixels.min()) < 0 or int(x0_pixels.max()) > 255):
        raise ValueError(f"x0_pixels must hold values in [0, 255], got [{int(x0_pixels.min())}, {int(x0_pixels.max())}]")
    T = schedule.T
    if T < 2:
        raise ValueError(f"the bound needs a schedule with T >= 2, got T = {T}")
    if timesteps is not None and (isinstance(timesteps, bool) or not isinstance(timesteps, int)
                                  or not 1 <= timesteps <= T - 1):
        raise ValueError(f"timesteps must be None or an int in [1, T-1] = [1, {T - 1}], got {timesteps!r}")
    if variance not in ("small", "large"):
        raise ValueError(f"variance must be 'small' or 'large', got {variance!r}")
    device = next(model.parameters()).device
    x0 = (x0_pixels.to(device).double() / 127.5 - 1.0)                 # (B, C, H, W) on the grid of [-1, 1]
    B, D = x0.shape[0], x0[0].numel()
    to_bpd = 1.0 / (D * torch.log(torch.tensor(2.0, dtype=torch.float64)))
    sched = {k: getattr(schedule, k).double().to(device) for k in
             ("betas", "alphas_cumprod", "posterior_variance", "posterior_mean_coef1", "posterior_mean_coef2")}
    abar, post_var = sched["alphas_cumprod"], sched["posterior_variance"]
    model_var = post_var if variance == "small" else sched["betas"]

    def x0_hat(t: int, eps_draw):
        x_t = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * eps_draw
        eps = model(x_t.float(), torch.full((B,), t, dtype=torch.long, device=device)).double()
        xh = (x_t - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
        return x_t, xh.clamp(-1, 1) if clip_x0 else xh

    # prior: KL(N(sqrt(abar) x0, 1 - abar) || N(0, 1)), summed over dimensions
    a = abar[T - 1]
    prior = 0.5 * (a * x0 ** 2 + (1 - a) - 1 - torch.log1p(-a)).flatten(1).sum(1)
    # the KL terms, exactly (every step) or by stratified sampling
    if timesteps is None:
        steps, weights = list(range(1, T)), [1.0] * (T - 1)
    else:
        steps, weights = [], []
        for lo, hi in snr_strata(schedule, timesteps):
            steps.append(int(torch.randint(lo, hi, (1,), generator=generator, device=device)))
            weights.append(float(hi - lo))
    iterator = steps
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(steps, desc="variational bound", leave=False)
    terms = []
    for t in iterator:
        x_t, xh = x0_hat(t, torch.randn(x0.shape, generator=generator, device=device, dtype=torch.float64))
        mean_q = sched["posterior_mean_coef1"][t] * x0 + sched["posterior_mean_coef2"][t] * x_t
        mean_p = sched["posterior_mean_coef1"][t] * xh + sched["posterior_mean_coef2"][t] * x_t
        v_q, v_p = post_var[t], model_var[t]
        kl = 0.5 * (torch.log(v_p / v_q) + v_q / v_p - 1 + (mean_q - mean_p) ** 2 / v_p)
        terms.append(kl.flatten(1).sum(1))
    terms = torch.stack(terms, 1) if terms else x0.new_zeros(B, 0)         # (B, len(steps)), nats
    diffusion = (terms * torch.tensor(weights, dtype=torch.float64, device=device)).sum(1)
    # decoder: -log p(x0 | x at step 0), discretised Gaussian around x0_hat with the variance of step 1
    _, xh = x0_hat(0, torch.randn(x0.shape, generator=generator, device=device, dtype=torch.float64))
    decoder = -discretised_gaussian_log_likelihood(x0, xh, post_var[1].sqrt()).flatten(1).sum(1)
    out = {"prior": prior, "diffusion": diffusion, "decoder": decoder}
    out = {k: (v * to_bpd).cpu() for k, v in out.items()}
    out["total"] = out["prior"] + out["diffusion"] + out["decoder"]
    out["t"], out["terms"] = steps, (terms * to_bpd).cpu()
    return out
