r"""The forward (noising) process of DDPM, in closed form and one Markov step at a time.

With 0-indexed steps and :math:`x_{-1} := x_0` the clean image (see :mod:`ardiff.schedules`):

- one step (Ho et al. 2020, eq. 2): :math:`q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I)`
- closed form (eq. 4): :math:`q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I)`
- posterior (eq. 6-7): :math:`q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t,\ \tilde\beta_t I)`

``t`` is a Python int (the same step for the whole batch) or a ``(B,)`` integer tensor (one step per
sample); coefficients are gathered per sample and broadcast over the remaining dimensions.
"""
from __future__ import annotations

import torch

from .schedules import NoiseSchedule

__all__ = ["q_sample", "q_step", "q_posterior", "q_marginal_gaussian", "identification_accuracy", "signal_free_tail"]


def _check_schedule(schedule) -> None:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")


def _check_x(name: str, x) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{name} must have a batch dimension, shape (B, ...); got a 0-d tensor")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def _timesteps(t, batch: int, T: int, device) -> torch.Tensor:
    """Validate ``t`` and return it as a (B,) long tensor on ``device``."""
    if isinstance(t, bool):
        raise TypeError("t must be an int or a (B,) integer tensor, got a bool")
    if isinstance(t, int):
        if not 0 <= t <= T - 1:
            raise ValueError(f"t must be in [0, T-1] = [0, {T - 1}], got {t}")
        return torch.full((batch,), t, dtype=torch.long, device=device)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be an int or a (B,) integer tensor, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t must hold integers, got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must have shape (B,) = ({batch},) to match the batch, got {tuple(t.shape)}")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) > T - 1):
        raise ValueError(f"t must be in [0, T-1] = [0, {T - 1}], got values in [{int(t.min())}, {int(t.max())}]")
    return t.to(device=device, dtype=torch.long)


def _gather(schedule: NoiseSchedule, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``schedule.<name>[t]`` reshaped to (B, 1, 1, ...) so that it broadcasts against ``like``."""
    out = schedule.on(name, like.device)[t].to(like.dtype)  # (B,); the schedule is cached on the device
    return out.view(-1, *([1] * (like.ndim - 1)))  # (B, 1, ..., 1)


def _noise_like(x: torch.Tensor, noise, generator) -> torch.Tensor:
    if noise is None:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if not isinstance(noise, torch.Tensor):
        raise TypeError(f"noise must be a torch.Tensor or None, got {type(noise).__name__}")
    if noise.shape != x.shape:
        raise ValueError(f"noise must have the shape of the input, {tuple(x.shape)}; got {tuple(noise.shape)}")
    return noise.to(x.device, x.dtype)


def _prepare(name: str, x: torch.Tensor, t, schedule, noise, generator):
    """Validate the arguments shared by q_sample and q_step; return (t as a (B,) long tensor, eps)."""
    _check_schedule(schedule)
    _check_x(name, x)
    t = _timesteps(t, x.shape[0], schedule.T, x.device)
    return t, _noise_like(x, noise, generator)


def _q_sample(x0: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule, eps: torch.Tensor) -> torch.Tensor:
    """The closed form without validation, for callers whose t is valid by construction (no GPU sync)."""
    abar = _gather(schedule, "alphas_cumprod", t, x0)  # \bar\alpha_t, (B, 1, ...)
    # x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t} \epsilon
    return abar.sqrt() * x0 + (1.0 - abar).sqrt() * eps


def q_sample(x0: torch.Tensor, t, schedule: NoiseSchedule, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Draw :math:`x_t \sim q(x_t \mid x_0)` in one shot (Ho et al. 2020, eq. 4).

    :math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1-\bar\alpha_t}\, \varepsilon,\quad \varepsilon \sim \mathcal N(0, I)`

    Args:
        x0: clean images, (B, ...), float.
        t: the step's code index, an int in [0, T-1], or a (B,) integer tensor. The code indexes from 0, the
            maths from 1 (book/notation.md): index ``t - 1`` draws :math:`x_t`, and index ``T - 1`` the last state
            :math:`x_T`.
        schedule: the noise schedule.
        noise: optional ε of the same shape as ``x0``; drawn with ``generator`` when None.
        generator: optional ``torch.Generator`` for reproducible noise.
    Returns:
        x_t, same shape and dtype as ``x0``.
    """
    t, eps = _prepare("x0", x0, t, schedule, noise, generator)
    return _q_sample(x0, t, schedule, eps)


def q_step(x_prev: torch.Tensor, t, schedule: NoiseSchedule, noise: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Take one Markov step :math:`x_t \sim q(x_t \mid x_{t-1})` (Ho et al. 2020, eq. 2).

    :math:`x_t = \sqrt{1-\beta_t}\, x_{t-1} + \sqrt{\beta_t}\, \varepsilon`

    Starting from the clean image ``x_prev = x0`` and calling ``q_step`` with the indices 0, 1, ..., k - 1 gives a
    sample of :math:`x_k` with the same distribution as ``q_sample(x0, k - 1)`` (lesson 01 measures this).

    Args:
        x_prev: :math:`x_{t-1}` (the clean image :math:`x_0` at index 0), (B, ...), float.
        t: the step's code index, an int in [0, T-1], or a (B,) integer tensor: index ``t - 1`` takes
            :math:`x_{t-1}` to :math:`x_t` (the maths counts from 1, book/notation.md).
        schedule, noise, generator: as in :func:`q_sample`.
    Returns:
        x_t, same shape and dtype as ``x_prev``.
    """
    t, eps = _prepare("x_prev", x_prev, t, schedule, noise, generator)
    beta = _gather(schedule, "betas", t, x_prev)  # \beta_t, (B, 1, ...)
    # x_t = \sqrt{1 - \beta_t} x_{t-1} + \sqrt{\beta_t} \epsilon
    return (1.0 - beta).sqrt() * x_prev + beta.sqrt() * eps


def q_posterior(x0: torch.Tensor, x_t: torch.Tensor, t, schedule: NoiseSchedule
                ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and variance of :math:`q(x_{t-1} \mid x_t, x_0)` (Ho et al. 2020, eq. 6-7).

    :math:`\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t} x_0
    + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t} x_t`,
    :math:`\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t`
    (the 'fixed_small' variance). At :math:`t = 1` (code index 0) the target :math:`x_{t-1}` is the clean
    image :math:`x_0` itself: the mean is ``x0`` and the variance 0.

    Args:
        x0: clean images, (B, ...).
        x_t: noisy images at step t, same shape as ``x0``.
        t: the step's code index, an int in [0, T-1], or a (B,) integer tensor: index ``t - 1`` for
            :math:`q(x_{t-1} \mid x_t, x_0)` (the maths counts from 1, book/notation.md).
    Returns:
        ``(mean, variance)``: mean has the shape of ``x0``; variance is (B, 1, ..., 1), broadcastable.
    """
    _check_schedule(schedule)
    _check_x("x0", x0)
    _check_x("x_t", x_t)
    if x_t.shape != x0.shape:
        raise ValueError(f"x_t must have the shape of x0, {tuple(x0.shape)}; got {tuple(x_t.shape)}")
    t = _timesteps(t, x0.shape[0], schedule.T, x0.device)
    coef1 = _gather(schedule, "posterior_mean_coef1", t, x0)
    coef2 = _gather(schedule, "posterior_mean_coef2", t, x0)
    mean = coef1 * x0 + coef2 * x_t.to(x0.dtype)  # \tilde\mu_t(x_t, x_0)
    variance = _gather(schedule, "posterior_variance", t, x0)  # \tilde\beta_t
    return mean, variance


def q_marginal_gaussian(data: torch.Tensor, t: int, schedule: NoiseSchedule, n: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Draws from the Gaussian with the mean and covariance of the marginal :math:`q(x_t)` of a data set.

    :math:`q(x_t) = \int q(x_t \mid x_0)\, p_\text{data}(x_0)\, dx_0` has mean :math:`\sqrt{\bar\alpha_t}\,\mu`
    and covariance :math:`\bar\alpha_t \Sigma + (1 - \bar\alpha_t) I`, with :math:`\mu, \Sigma` the data's
    mean and (sample) covariance. This draws
    :math:`x_t = \sqrt{\bar\alpha_t}\,\big(\mu + X_c^\top z / \sqrt{N - 1}\big) + \sqrt{1 - \bar\alpha_t}\,\varepsilon`,
    :math:`z \sim \mathcal N(0, I_N)`, :math:`X_c` the centred data (N, D): exactly that Gaussian, without forming
    the D x D covariance. No single data image is copied into a draw (each is a random mix of all N).

    It is the start a sampler *should* use when :math:`\bar\alpha_{T-1}` is not close to 0 (a schedule whose last
    step still holds signal): the model was trained on :math:`q(x_{T-1})`, not on :math:`\mathcal N(0, I)`.

    Args:
        data: (N, C, H, W) images, N >= 2.
        t: the step, in [0, T-1].
        n: number of draws.
    Returns:
        (n, C, H, W) float32 on ``data``'s device.
    """
    _check_schedule(schedule)
    if not isinstance(data, torch.Tensor) or data.ndim != 4 or len(data) < 2:
        raise ValueError(f"data must be a (N, C, H, W) tensor with N >= 2, got {tuple(getattr(data, 'shape', ()))}")
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= schedule.T - 1:
        raise ValueError(f"t must be an int in [0, T-1] = [0, {schedule.T - 1}], got {t!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    x = data.double().flatten(1)                                          # (N, D)
    mu, xc = x.mean(0), x - x.mean(0)
    z = torch.randn(n, len(x), generator=generator, device=x.device, dtype=torch.float64)
    eps = torch.randn(n, x.shape[1], generator=generator, device=x.device, dtype=torch.float64)
    a = schedule.alphas_cumprod[t].double()
    xt = a.sqrt() * (mu + z @ xc / (len(x) - 1) ** 0.5) + (1 - a).sqrt() * eps
    return xt.float().view(n, *data.shape[1:])


def identification_accuracy(x0: torch.Tensor, schedule: NoiseSchedule, ts, draws: int,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    r"""How much of the image is left in :math:`x_t`: the accuracy of the best possible observer who must tell
    which of K candidate images :math:`x_0^{(k)}` a noisy copy came from.

    Each candidate is noised ``draws`` times to step t with :func:`q_sample`; the observer picks
    :math:`\arg\max_k q(x_t \mid x_0^{(k)}) = \arg\max_k\, 2a\,x_t \cdot x_0^{(k)} - a^2 \lVert x_0^{(k)} \rVert^2`,
    :math:`a = \sqrt{\bar\alpha_t}` (white Gaussian noise: the nearest :math:`a\,x_0^{(k)}`). Chance is 1/K.

    Args:
        x0: (K, ...) candidate images, K >= 2.
        schedule: the noise schedule.
        ts: the steps to measure, each in [0, T-1].
        draws: noisy copies R of each candidate per step (K * R copies in all).
        generator: optional ``torch.Generator`` on ``x0``'s device.
    Returns:
        (len(ts),) float64 tensor: the fraction of copies traced to their true source.
    """
    _check_schedule(schedule)
    if not isinstance(x0, torch.Tensor) or x0.ndim < 2 or len(x0) < 2:
        raise ValueError(f"x0 must be a (K, ...) tensor of K >= 2 candidates, got {tuple(getattr(x0, 'shape', ()))}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be an int >= 1, got {draws!r}")
    steps = [int(t) for t in ts]
    if not steps or not all(0 <= t <= schedule.T - 1 for t in steps):
        raise ValueError(f"ts must be steps in [0, T-1] = [0, {schedule.T - 1}], got {list(ts)!r}")
    K = len(x0)
    flat = x0.flatten(1).float()                                # (K, D)
    sq = (flat ** 2).sum(1)                                     # (K,)
    src = torch.arange(K, device=x0.device).repeat(draws)      # (K*R,) the true source of each copy
    acc = []
    for t in steps:
        xt = q_sample(flat[src], t, schedule, generator=generator)          # (K*R, D)
        a = schedule.alphas_cumprod[t].sqrt().item()
        score = 2 * a * xt @ flat.T - a ** 2 * sq                           # (K*R, K): log-likelihood + const
        acc.append((score.argmax(1) == src).double().mean().item())
    return torch.tensor(acc, dtype=torch.float64)


def signal_free_tail(accuracy, ts, K: int, T: int) -> int:
    r"""The number of final steps of a chain of T steps that are *almost signal-free*: from the first measured step
    after which :func:`identification_accuracy` stays at or below twice chance, :math:`2/K`, to the end.

    Args:
        accuracy: (n,) accuracies measured at the increasing steps ``ts``.
        ts: (n,) increasing steps in [0, T-1].
        K: number of candidates (chance is 1/K).
        T: the chain's length.
    Returns:
        ``T - t_free``, with ``t_free`` the first measured step after the last one above 2/K: 0 when the last
        measured step is still above 2/K (no tail), and ``T - ts[0]`` when no measured step is (the grid cannot
        place the start of the tail earlier than its first step).

    The threshold 2/K is a size of effect; it is only meaningful when it stands well above the sampling error at
    chance, :math:`\sqrt{(1/K)(1 - 1/K)/(K R)}` for K·R copies (lesson 01 prints the margin).
    """
    acc, steps = torch.as_tensor(accuracy, dtype=torch.float64), [int(t) for t in ts]
    if acc.ndim != 1 or len(acc) != len(steps) or not steps:
        raise ValueError(f"accuracy and ts must be 1-D of the same non-zero length, got {tuple(acc.shape)} and {len(steps)}")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError("ts must increase")
    above = torch.nonzero(acc > 2 / K).flatten()
    if not len(above):
        return T - steps[0]
    last = int(above[-1])
    return 0 if last + 1 == len(steps) else T - steps[last + 1]
