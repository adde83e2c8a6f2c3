r"""DDPM (Ho et al. 2020) and DDIM (Song et al. 2021): the noise-prediction loss and the samplers.

Timesteps are 0-indexed (see :mod:`ardiff.schedules`); ``t_prev = -1`` means "the clean image",
with :math:`\bar\alpha_{-1} = 1`. The predicted :math:`\hat x_0` is never clipped unless asked
(``clip_x0=True``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .forward import _check_schedule, _gather, _q_sample, _timesteps, q_posterior
from .schedules import NoiseSchedule

__all__ = ["loss", "predict_x0", "ddpm_step", "ddim_step", "sample", "timestep_sequence"]


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
    t, eps, x_t = _noised(x0, schedule, generator)
    pred = model(x_t, t) if y is None else model(x_t, t, y)
    return F.mse_loss(pred.float(), eps.float())


def _noised(x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None):
    """Algorithm 1's draws: t uniform on {0..T-1}, then ε ~ N(0, I), then x_t; returns ``(t, eps, x_t)``.

    Every training objective draws through here, in this order, so objectives share their randomness.
    """
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


def timestep_sequence(t_start: int, steps: int) -> list[int]:
    """``steps`` timesteps evenly spaced from ``t_start`` down to 0 (both included), descending."""
    if steps < 1 or steps > t_start + 1:
        raise ValueError(f"steps must be in [1, t_start + 1] = [1, {t_start + 1}], got {steps}")
    if steps == 1:
        return [t_start]
    seq = torch.linspace(t_start, 0, steps, dtype=torch.float64).round().long().tolist()
    return list(dict.fromkeys(seq))  # unique, order kept


@torch.no_grad()
def sample(model, schedule: NoiseSchedule, shape, steps: int | None = None, method: str = "ddpm",
           eta: float = 0.0, x_T: torch.Tensor | None = None, t_start: int | None = None,
           generator: torch.Generator | None = None, return_trajectory: bool = False, y=None,
           clip_x0: bool = False, device=None, progress: bool = False):
    r"""Run the reverse process from ``x_T`` at ``t_start`` down to a clean sample.

    ``method="ddpm"``: ancestral sampling (Ho et al. 2020, Algorithm 2) over all steps; with
    ``steps < t_start + 1`` it runs on an evenly spaced subsequence, using the DDIM step with η = 1,
    which is the ancestral step of the respaced chain (Nichol & Dhariwal 2021, sec. 4).
    ``method="ddim"``: DDIM (Song et al. 2021) with the given η over ``steps`` evenly spaced steps.

    Args:
        model: ``model(x_t, t[, y]) -> eps``.
        shape: (B, C, H, W) of the samples.
        steps: number of model evaluations (default: every step from ``t_start``).
        x_T: the starting point at step ``t_start`` (default: pure noise N(0, I)).
        t_start: the step ``x_T`` belongs to (default T - 1). The AR-prior lesson starts from a
            forward-noised image at an intermediate step.
        generator: makes the run reproducible.
        return_trajectory: also return ``{"t": [...], "x_t": [...], "x0_hat": [...]}`` (CPU tensors).
    Returns:
        samples (B, C, H, W), or ``(samples, trajectory)``.
    """
    _check_schedule(schedule)
    if method not in ("ddpm", "ddim"):
        raise ValueError(f"method must be 'ddpm' or 'ddim', got {method!r}")
    t_start = schedule.T - 1 if t_start is None else t_start
    if not 0 <= t_start <= schedule.T - 1:
        raise ValueError(f"t_start must be in [0, T-1] = [0, {schedule.T - 1}], got {t_start}")
    steps = t_start + 1 if steps is None else steps
    seq = timestep_sequence(t_start, steps)
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if x_T is None:
        x = torch.randn(tuple(shape), device=device, generator=generator)
    else:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T must have shape {tuple(shape)}, got {tuple(x_T.shape)}")
        x = x_T.to(device, torch.float32)
    was_training = model.training
    model.eval()
    traj = {"t": [], "x_t": [], "x0_hat": []}
    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    iterator = seq
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(seq, desc=f"{method} sampling", leave=False)
    for i, t in enumerate(iterator):
        t_prev = seq[i + 1] if i + 1 < len(seq) else -1
        tt = torch.full((x.shape[0],), t, device=device, dtype=torch.long)
        with autocast:
            eps = model(x, tt) if y is None else model(x, tt, y)
        eps = eps.float()
        if return_trajectory:
            x0_hat = predict_x0(x, eps, t, schedule)
            traj["t"].append(t), traj["x_t"].append(x.cpu()), traj["x0_hat"].append(x0_hat.cpu())
        if method == "ddpm" and t_prev == t - 1:
            x = ddpm_step(x, eps, t, schedule, generator=generator, clip_x0=clip_x0)
        else:
            x = ddim_step(x, eps, t, t_prev, schedule, eta=1.0 if method == "ddpm" else eta,
                          generator=generator, clip_x0=clip_x0)
    model.train(was_training)
    return (x, traj) if return_trajectory else x
