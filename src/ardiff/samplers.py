r"""Sampling a trained ε-model: timestep spacing and the three sample loops (ancestral, DDIM, DPM-Solver++(2M)).

A sampler with S network evaluations visits S timesteps :math:`t_1 > \dots > t_S` and ends at the clean image.
*Which* timesteps is the spacing (:func:`timestep_sequence`):

- ``"trailing"`` (the default; Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed",
  Table 2): S evenly spaced steps ending one stride above 0, e.g. T = 1000, S = 5: [999, 799, 599, 399, 199].
  Every evaluation is a real jump; the last is at round(T/S) - 1, so t = 0 is visited only when S > 2T/3.
- ``"linspace"``: from t_start down to 0, both ends included: S = 2 is [999, 0], and its last evaluation lands
  where almost no noise is left, so S = 2 samples like S = 1 (the book's lessons used it before).
- ``"leading"``: multiples of T // S from 0: S = 5 is [800, 600, 400, 200, 0]; it never starts at pure noise.

The same names and values as diffusers' ``timestep_spacing`` (tested against it), with two exceptions where
diffusers is wrong: S = 1 is always [t_start] (one jump from the start; diffusers' linspace and leading give [0],
which denoises pure noise as if it were almost clean), and trailing never emits a step below 0 (diffusers' float
``arange`` returns S + 1 values for some S, e.g. T = 1000, S = 61, ending in -1).

The loops are in :func:`sample`; the steps they take live where the paper does: :func:`ardiff.ddpm.ddpm_step`
(Ho et al. 2020), :func:`ardiff.ddpm.ddim_step` (Song et al. 2021) and :func:`dpm_solver_pp_step` here
(Lu et al. 2022). x̂0 clipping to [-1, 1] is one explicit argument, ``clip_x0``, with the same meaning for all.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from .ddpm import ddim_step, ddpm_step, predict_x0
from .forward import _check_schedule
from .schedules import NoiseSchedule

__all__ = ["SPACINGS", "METHODS", "EVAL_BATCH", "timestep_sequence", "dpm_solver_pp_step", "predict_eps", "reverse_step", "sample"]

SPACINGS = ("trailing", "linspace", "leading")
METHODS = ("ddpm", "ddim", "dpm-solver++")
EVAL_BATCH = 64   # images per network call while sampling: 2.4x faster than one call on 1,000 images on the
                  # project's CPU, with identical samples (benchmarks/sampling_speed.py)


def timestep_sequence(t_start: int, steps: int, spacing: str = "trailing") -> list[int]:
    r"""The ``steps`` timesteps a sampler evaluates, descending from (about) ``t_start``.

    With :math:`N = t_\text{start} + 1` steps available and S = ``steps``:

    - trailing: :math:`\operatorname{round}(N - iN/S) - 1`, i = 0..S-1 (first t_start, last round(N/S) - 1);
    - linspace: :math:`\operatorname{round}(t_\text{start}\,(S-1-i)/(S-1))` (first t_start, last 0);
    - leading: :math:`i \lfloor N/S \rfloor`, i = S-1..0 (last 0).

    S = 1 is [t_start] for every spacing. For t_start = T - 1 and S > 1 these are diffusers' ``timestep_spacing``
    options of the same names (but for the extra trailing step below 0 that diffusers emits for some S).

    Args:
        t_start: the step of the starting point, >= 0. steps: S in [1, t_start + 1].
        spacing: 'trailing', 'linspace' or 'leading'.
    Returns:
        S distinct ints, descending.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= t_start + 1:
        raise ValueError(f"steps must be an int in [1, t_start + 1] = [1, {t_start + 1}], got {steps!r}")
    n = t_start + 1
    if steps == 1:
        return [t_start]
    if spacing == "trailing":   # a float arange can hold S + 1 values (the last ~1e-13, i.e. step -1): keep S
        seq = torch.arange(n, 0, -n / steps, dtype=torch.float64)[:steps].round().long() - 1
    elif spacing == "linspace":
        seq = torch.linspace(0, t_start, steps, dtype=torch.float64).round().long().flip(0)
    else:
        seq = (torch.arange(steps - 1, -1, -1) * (n // steps)).long()
    return list(dict.fromkeys(seq.tolist()))  # unique, order kept (they are distinct for S <= t_start + 1)


def _alpha_sigma_lambda(schedule: NoiseSchedule, t: int):
    r""":math:`\alpha_t = \sqrt{\bar\alpha_t}`, :math:`\sigma_t = \sqrt{1-\bar\alpha_t}`, :math:`\lambda_t = \log(\alpha_t/\sigma_t)`; t = -1 is the data (σ = 0)."""
    if t < 0:
        return 1.0, 0.0, math.inf
    abar = float(schedule.alphas_cumprod[t])
    alpha, sigma = math.sqrt(abar), math.sqrt(1 - abar)
    return alpha, sigma, math.log(alpha / sigma)


def dpm_solver_pp_step(x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, t_next: int, schedule: NoiseSchedule,
                       x0_hat_prev: torch.Tensor | None = None, t_prev: int | None = None) -> torch.Tensor:
    r"""One DPM-Solver++(2M) step from t to ``t_next`` < t (Lu et al. 2022, "DPM-Solver++", Algorithm 2).

    In :math:`\lambda = \log(\alpha/\sigma)` with :math:`\alpha_t = \sqrt{\bar\alpha_t}`, :math:`\sigma_t = \sqrt{1-\bar\alpha_t}`,
    :math:`h = \lambda_{t'} - \lambda_t` and the data prediction :math:`\hat x_0` at t:

    .. math:: x_{t'} = \frac{\sigma_{t'}}{\sigma_t} x_t - \alpha_{t'}\,(e^{-h} - 1)\, D,

    with :math:`D = \hat x_0` (first order, DPM-Solver++(1) = DDIM) or, given the previous evaluation's
    :math:`\hat x_0^{\,\text{prev}}` at ``t_prev`` > t, the multistep second order
    :math:`D = (1 + \tfrac{1}{2r})\hat x_0 - \tfrac{1}{2r}\hat x_0^{\,\text{prev}}`,
    :math:`r = (\lambda_t - \lambda_{t_\text{prev}})/h`. ``t_next = -1`` is σ = 0 (the data): there
    :math:`h = \infty`, r = 0, and only the first-order step is defined: it returns :math:`\hat x_0`, as
    Algorithm 2's final step does.

    Args:
        x_t, x0_hat, x0_hat_prev: (B, C, H, W). t, t_next, t_prev: ints, 0-indexed (t_next >= -1).
    Returns:
        (B, C, H, W): :math:`x_{t'}`.
    """
    if not -1 <= t_next < t:
        raise ValueError(f"t_next must be in [-1, t - 1] = [-1, {t - 1}], got {t_next}")
    if (x0_hat_prev is None) != (t_prev is None):
        raise ValueError("x0_hat_prev and t_prev go together (both for second order, neither for first)")
    if t_prev is not None and t_prev <= t:
        raise ValueError(f"t_prev must be > t = {t}, got {t_prev}")
    if t_prev is not None and t_next < 0:
        raise ValueError("the step to sigma = 0 (t_next = -1) is first order (h is infinite): pass no x0_hat_prev")
    _, sigma_s, lam_s = _alpha_sigma_lambda(schedule, t)
    alpha_n, sigma_n, lam_n = _alpha_sigma_lambda(schedule, t_next)
    if t_next < 0:                      # sigma_{t'} = 0, e^{-h} = 0: x_{t'} = x0_hat (first order)
        return x0_hat
    h = lam_n - lam_s
    D = x0_hat
    if t_prev is not None:
        r = (lam_s - _alpha_sigma_lambda(schedule, t_prev)[2]) / h                    # h_{i-1} / h_i
        D = (1 + 1 / (2 * r)) * x0_hat - 1 / (2 * r) * x0_hat_prev
    return (sigma_n / sigma_s) * x_t - alpha_n * math.expm1(-h) * D


def predict_eps(model, x: torch.Tensor, t: int, y=None, batch_size: int = EVAL_BATCH, amp_context=None) -> torch.Tensor:
    r""":math:`\varepsilon_\theta(x, t[, y])` of the whole batch, run in chunks of ``batch_size`` images (the same numbers
    up to floating-point rounding, which kernels chosen by batch size may change; identical for mnist-ddpm on the
    project's CPU; cache-sized batches are 2-3x faster there than one call on 1,000 images), as float32.

    Args:
        x: (B, C, H, W) network inputs. t: the timestep of all of them. y: optional (B,) labels.
        amp_context: entered around each call (e.g. :func:`ardiff.train.autocast`); default none.
    Returns:
        (B, C_out, H, W) float32.
    """
    amp_context = nullcontext() if amp_context is None else amp_context
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size]
        tt = torch.full((xb.shape[0],), t, device=x.device, dtype=torch.long)
        with amp_context:
            out.append((model(xb, tt) if y is None else model(xb, tt, y[i:i + batch_size])).float())
    return torch.cat(out) if len(out) > 1 else out[0]


@torch.no_grad()
def sample(model, schedule: NoiseSchedule, shape, steps: int | None = None, method: str = "ddpm",
           eta: float = 0.0, x_T: torch.Tensor | None = None, t_start: int | None = None,
           generator: torch.Generator | None = None, return_trajectory: bool = False, y=None,
           clip_x0: bool = False, device=None, progress: bool = False, spacing: str = "trailing",
           batch_size: int | None = None):
    r"""Run the reverse process from ``x_T`` at ``t_start`` down to a clean sample, in ``steps`` network evaluations.

    - ``"ddpm"``: ancestral sampling (Ho et al. 2020, Algorithm 2); on a subsequence of steps, the DDIM step with
      η = 1, which is the ancestral step of the respaced chain (Nichol & Dhariwal 2021, sec. 4);
    - ``"ddim"``: DDIM (Song et al. 2021) with the given η (0: deterministic);
    - ``"dpm-solver++"``: DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) with :func:`dpm_solver_pp_step`:
      first order at the first step, second-order multistep after, and a final first-order step to σ = 0.

    ``clip_x0=True`` clips every :math:`\hat x_0` to [-1, 1] before it is used, in every method. The network runs on
    chunks of ``batch_size`` images; the random draws are those of the whole batch, so the result does not depend
    on it (up to floating-point rounding). The trajectory records the :math:`\hat x_0` each step used (clipped with
    ``clip_x0``).

    Args:
        model: ``model(x_t, t[, y]) -> eps``.
        shape: (B, C, H, W) of the samples.
        steps: network evaluations S (default: every step from ``t_start``).
        x_T: the starting point at step ``t_start`` (default: pure noise N(0, I)).
        t_start: the step ``x_T`` belongs to (default T - 1). The AR-prior lesson starts from a
            forward-noised image at an intermediate step.
        generator: makes the run reproducible.
        return_trajectory: also return ``{"t": [...], "x_t": [...], "x0_hat": [...]}`` (CPU tensors).
        spacing: 'trailing' (default), 'linspace' or 'leading' (:func:`timestep_sequence`).
        batch_size: images per network call (default :data:`EVAL_BATCH`).
    Returns:
        samples (B, C, H, W), or ``(samples, trajectory)``.
    """
    _check_schedule(schedule)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    t_start = schedule.T - 1 if t_start is None else t_start
    if isinstance(t_start, bool) or not isinstance(t_start, int) or not 0 <= t_start <= schedule.T - 1:
        raise ValueError(f"t_start must be an int in [0, T-1] = [0, {schedule.T - 1}], got {t_start!r}")
    steps = t_start + 1 if steps is None else steps
    seq = timestep_sequence(t_start, steps, spacing)
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    if method == "dpm-solver++" and eta != 0:
        raise ValueError(f"eta applies to method 'ddim' only; got eta = {eta} with {method!r}")
    batch_size = EVAL_BATCH if batch_size is None else batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
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
    from .train import autocast  # bf16 only where the GPU runs it natively

    amp_context = autocast(device)
    iterator = seq
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(seq, desc=f"{method} sampling", leave=False)
    x = _loop(model, schedule, x, seq, method, eta, y, clip_x0, generator, batch_size, amp_context, iterator,
              traj if return_trajectory else None)
    model.train(was_training)
    return (x, traj) if return_trajectory else x


def reverse_step(x, eps, t: int, t_prev: int, schedule: NoiseSchedule, method: str, eta: float = 0.0,
                 clip_x0: bool = False, generator=None, previous=None):
    r"""One step of ``method`` from t to ``t_prev`` (-1: the clean image), given the network's ε at (x, t).

    ``previous`` is DPM-Solver++'s memory, ``(t, x0_hat)`` of the last evaluation (None at a chain's start); the
    step returns it updated: ``(x_{t_prev}, previous)``. The ancestral step on consecutive steps is
    :func:`~ardiff.ddpm.ddpm_step`, on a respaced chain DDIM with η = 1; DDIM takes ``eta``.
    """
    if method == "dpm-solver++":
        x0_hat = predict_x0(x, eps, t, schedule)
        x0_hat = x0_hat.clamp(-1, 1) if clip_x0 else x0_hat
        second = previous is not None and t_prev >= 0          # first order at the first and the last step
        x_new = dpm_solver_pp_step(x, x0_hat, t, t_prev, schedule, *(previous[::-1] if second else ()))
        return x_new, (t, x0_hat)
    if method == "ddpm" and t_prev == t - 1:
        return ddpm_step(x, eps, t, schedule, generator=generator, clip_x0=clip_x0), None
    return ddim_step(x, eps, t, t_prev, schedule, eta=1.0 if method == "ddpm" else eta, generator=generator,
                     clip_x0=clip_x0), None


def _loop(model, schedule, x, seq, method, eta, y, clip_x0, generator, batch_size, amp_context, iterator, traj):
    """The reverse steps of :func:`sample` over ``seq`` (``iterator`` is ``seq``, maybe with a progress bar)."""
    previous = None                                     # DPM-Solver++: (t, x0_hat) of the last evaluation
    for i, t in enumerate(iterator):
        t_prev = seq[i + 1] if i + 1 < len(seq) else -1
        eps = predict_eps(model, x, t, y, batch_size, amp_context)
        if traj is not None:
            x0_hat = predict_x0(x, eps, t, schedule)
            x0_hat = x0_hat.clamp(-1, 1) if clip_x0 else x0_hat
            traj["t"].append(t), traj["x_t"].append(x.cpu()), traj["x0_hat"].append(x0_hat.cpu())
        x, previous = reverse_step(x, eps, t, t_prev, schedule, method, eta, clip_x0, generator, previous)
    return x
