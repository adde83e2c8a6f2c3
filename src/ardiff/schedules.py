"""Noise schedules: how much signal the forward process keeps at each step.

Notation (code name -> symbol, 0-indexed t in {0, ..., T-1}):

| code                    | symbol                                   |
|-------------------------|------------------------------------------|
| ``betas[t]``            | :math:`\\beta_t`, variance added at step t |
| ``alphas[t]``           | :math:`\\alpha_t = 1 - \\beta_t`            |
| ``alphas_cumprod[t]``   | :math:`\\bar\\alpha_t = \\prod_{s \\le t} \\alpha_s` |
| ``alphas_cumprod_prev`` | :math:`\\bar\\alpha_{t-1}`, with :math:`\\bar\\alpha_{-1} = 1` |
| ``snr[t]``              | :math:`\\bar\\alpha_t / (1 - \\bar\\alpha_t)` |
| ``log_snr[t]``          | :math:`\\log \\mathrm{SNR}_t`                |
| ``posterior_variance``  | :math:`\\tilde\\beta_t = \\beta_t (1-\\bar\\alpha_{t-1}) / (1-\\bar\\alpha_t)` |

The papers index steps from 1 (Ho et al. 2020 write :math:`t = 1..T`); our step ``t`` is their
step ``t + 1``. This is the convention of the diffusers schedulers. Everything is computed in
float64 and stored as float32 tensors on the CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

__all__ = ["NoiseSchedule"]


def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"T must be an int >= 1, got {T!r} ({type(T).__name__})")
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    return T


def _check_finite(name: str, value, lo: float | None = None, hi: float | None = None,
                  lo_open: bool = True, hi_open: bool = True) -> float:
    """Validate a scalar parameter; the error names it and the allowed range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    allowed = f"{'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open else ']'}"
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, in {allowed}; got {v}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be in {allowed}, got {v:g}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{name} must be in {allowed}, got {v:g}")
    return v


def _betas_from_alpha_bar(alpha_bar: Callable[[torch.Tensor], torch.Tensor], T: int,
                          max_beta: float) -> torch.Tensor:
    r"""Discretise a continuous :math:`\bar\alpha(\tau)`, :math:`\tau \in [0, 1]`, into T betas.

    :math:`\beta_t = \min(1 - \bar\alpha(\frac{t+1}{T}) / \bar\alpha(\frac{t}{T}),\ \beta_{max})`,
    the construction of Nichol & Dhariwal (2021), eq. 17 (diffusers' ``betas_for_alpha_bar``).
    """
    tau = torch.arange(T + 1, dtype=torch.float64) / T  # (T+1,)
    a = alpha_bar(tau)
    return torch.clamp(1.0 - a[1:] / a[:-1], max=max_beta)  # (T,)


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    r"""A discrete variance schedule :math:`\beta_0, \dots, \beta_{T-1}` and everything derived from it.

    Build one with :meth:`linear`, :meth:`cosine`, :meth:`sigmoid` or :meth:`from_betas`.

    Attributes (all float32, shape ``(T,)``): ``betas``, ``alphas``, ``alphas_cumprod``,
    ``alphas_cumprod_prev``, ``snr``, ``log_snr``, ``posterior_variance``,
    ``posterior_mean_coef1``, ``posterior_mean_coef2``; and ``T`` and ``name``.
    """

    betas: torch.Tensor
    name: str = "custom"
    T: int = field(init=False)
    alphas: torch.Tensor = field(init=False, repr=False)
    alphas_cumprod: torch.Tensor = field(init=False, repr=False)
    alphas_cumprod_prev: torch.Tensor = field(init=False, repr=False)
    snr: torch.Tensor = field(init=False, repr=False)
    log_snr: torch.Tensor = field(init=False, repr=False)
    posterior_variance: torch.Tensor = field(init=False, repr=False)
    posterior_mean_coef1: torch.Tensor = field(init=False, repr=False)
    posterior_mean_coef2: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        b = torch.as_tensor(self.betas).detach().to("cpu", torch.float64)
        if b.ndim != 1 or b.numel() < 1:
            raise ValueError(f"betas must be a 1-D sequence of length T >= 1, got shape {tuple(b.shape)}")
        if not torch.isfinite(b).all():
            raise ValueError("betas must be finite, each in (0, 1); got non-finite values")
        if not ((b > 0) & (b < 1)).all():
            bad = b[(b <= 0) | (b >= 1)]
            raise ValueError(f"betas must each be in (0, 1); got {bad.numel()} outside, e.g. {bad[0].item():g}")
        alphas = 1.0 - b                                    # \alpha_t
        abar = torch.cumprod(alphas, 0)                     # \bar\alpha_t
        abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])  # \bar\alpha_{t-1}, \bar\alpha_{-1} = 1
        log_abar = torch.cumsum(torch.log1p(-b), 0)         # log \bar\alpha_t, accurate near 0
        log_one_minus = torch.log(-torch.expm1(log_abar))   # log(1 - \bar\alpha_t)
        # \tilde\beta_t = \beta_t (1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)   (DDPM eq. 7)
        post_var = b * (1.0 - abar_prev) / (1.0 - abar)
        # \tilde\mu_t = coef1 x_0 + coef2 x_t                                  (DDPM eq. 7)
        coef1 = abar_prev.sqrt() * b / (1.0 - abar)
        coef2 = alphas.sqrt() * (1.0 - abar_prev) / (1.0 - abar)
        f32 = dict(dtype=torch.float32)
        set_ = object.__setattr__
        set_(self, "betas", b.to(**f32))
        set_(self, "T", b.numel())
        set_(self, "alphas", alphas.to(**f32))
        set_(self, "alphas_cumprod", abar.to(**f32))
        set_(self, "alphas_cumprod_prev", abar_prev.to(**f32))
        set_(self, "snr", torch.exp(log_abar - log_one_minus).to(**f32))
        set_(self, "log_snr", (log_abar - log_one_minus).to(**f32))
        set_(self, "posterior_variance", post_var.to(**f32))
        set_(self, "posterior_mean_coef1", coef1.to(**f32))
        set_(self, "posterior_mean_coef2", coef2.to(**f32))
        set_(self, "_device_copies", {})

    def on(self, name: str, device) -> torch.Tensor:
        """The (T,) coefficient ``name`` (e.g. ``"alphas_cumprod"``) on ``device``.

        Copied there once and cached: a training or sampling loop that gathers coefficients at every
        step never copies the schedule from the host again (each such copy would wait for the GPU).
        """
        device = torch.device(device)
        if device.type == "cpu":
            return getattr(self, name)
        key = (name, str(device))
        if key not in self._device_copies:
            self._device_copies[key] = getattr(self, name).to(device)
        return self._device_copies[key]

    def __repr__(self) -> str:
        return (f"NoiseSchedule({self.name}, T={self.T}, beta: {self.betas[0]:.3g} -> {self.betas[-1]:.3g}, "
                f"alpha_bar[T-1]={self.alphas_cumprod[-1]:.3g})")

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_betas(cls, betas, name: str = "custom") -> "NoiseSchedule":
        """A schedule from explicit betas, a 1-D sequence with every value in (0, 1)."""
        return cls(torch.as_tensor(betas, dtype=torch.float64), name=name)

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        r"""Betas evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020, sec. 4).

        :math:`\beta_t = \beta_{start} + \frac{t}{T-1}(\beta_{end} - \beta_{start})`, t = 0..T-1.
        """
        T = _check_T(T)
        beta_start = _check_finite("beta_start", beta_start, 0.0, 1.0)
        beta_end = _check_finite("beta_end", beta_end, 0.0, 1.0)
        if beta_start > beta_end:
            raise ValueError(f"beta_start must be <= beta_end, got beta_start={beta_start:g} > beta_end={beta_end:g}")
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        return cls(betas, name=f"linear({beta_start:g}->{beta_end:g})")

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        r"""The cosine schedule of Nichol & Dhariwal (2021), eq. 17 (diffusers' ``squaredcos_cap_v2``).

        :math:`\bar\alpha(\tau) = \cos^2\!\big(\frac{\tau + s}{1 + s}\cdot\frac{\pi}{2}\big)`,
        discretised as :math:`\beta_t = \min(1 - \bar\alpha(\frac{t+1}{T})/\bar\alpha(\frac{t}{T}), \beta_{max})`.
        """
        T = _check_T(T)
        s = _check_finite("s", s, 0.0, None, lo_open=False)
        max_beta = _check_finite("max_beta", max_beta, 0.0, 1.0)

        def alpha_bar(tau):
            return torch.cos((tau + s) / (1 + s) * math.pi / 2) ** 2

        return cls(_betas_from_alpha_bar(alpha_bar, T, max_beta), name=f"cosine(s={s:g})")

    @classmethod
    def sigmoid(cls, T: int = 1000, start: float = -3.0, end: float = 3.0, tau: float = 1.0,
                max_beta: float = 0.999) -> "NoiseSchedule":
        r"""The sigmoid schedule of Chen (2023), "On the importance of noise scheduling", Algorithm 1.

        :math:`\bar\alpha(\tau) = \frac{\sigma(e/\tau_0) - \sigma((\tau(e-s)+s)/\tau_0)}{\sigma(e/\tau_0) - \sigma(s/\tau_0)}`
        with start s, end e and temperature :math:`\tau_0`; discretised like :meth:`cosine`.
        A lower ``tau`` or a narrower [start, end] keeps more signal in the middle of the chain.
        """
        T = _check_T(T)
        start = _check_finite("start", start)
        end = _check_finite("end", end)
        if start >= end:
            raise ValueError(f"start must be < end, got start={start:g} >= end={end:g}")
        tau0 = _check_finite("tau", tau, 0.0, None)
        max_beta = _check_finite("max_beta", max_beta, 0.0, 1.0)
        v_start = 1 / (1 + math.exp(-start / tau0))
        v_end = 1 / (1 + math.exp(-end / tau0))

        def alpha_bar(t):
            return (v_end - torch.sigmoid((t * (end - start) + start) / tau0)) / (v_end - v_start)

        return cls(_betas_from_alpha_bar(alpha_bar, T, max_beta),
                   name=f"sigmoid({start:g},{end:g},tau={tau0:g})")
