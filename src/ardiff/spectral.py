r"""Fourier analysis of images and of diffusion: power spectra, RAPSD, power laws, the rising noise floor.

Reproduces the measurements of Dieleman (2024), "Diffusion is spectral autoregression":

- natural images have a radially averaged power spectral density (RAPSD) close to a power law,
  :math:`S(f) \propto f^{\,\text{slope}}` with a negative slope;
- the forward process adds white noise, whose spectrum is flat: at step t the noisy image's spectrum is
  :math:`\bar\alpha_t S(f) + (1-\bar\alpha_t)` (for unit-variance noise, with this normalisation), so the
  noise floor rises and drowns the high frequencies (small S) first;
- the per-frequency signal-to-noise ratio :math:`\bar\alpha_t S(f)/(1-\bar\alpha_t)` and the cut-off frequency
  above which signal is below the noise.

Conventions: frequencies in cycles per pixel, from 1/N up to the Nyquist frequency 0.5; power is
:math:`|\mathrm{FFT}_2(x)|^2 / (HW)`, so unit white noise has power 1 at every frequency and, by
Parseval, the mean power equals the mean of :math:`x^2`.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

__all__ = ["standardise", "power_spectrum", "rapsd", "SpectralDistance", "fit_power_law", "noisy_spectrum", "snr_per_frequency",
           "cutoff_frequency", "trajectory_spectra", "settling_steps", "trajectory_errors", "settled_index", "band_split"]


def _as_4d(images) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must be (H, W), (B, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[-1] < 4 or x.shape[-2] < 4:
        raise ValueError(f"images must be at least 4x4 pixels, got {tuple(x.shape[-2:])}")
    if not torch.isfinite(x).all():
        raise ValueError("images must be finite")
    return x.double()


def standardise(images: torch.Tensor) -> torch.Tensor:
    r"""Zero mean and unit sample variance per image and channel, :math:`(x - \bar x) / s_x` (:math:`s_x` the unbiased
    standard deviation): a total power of :math:`(N-1)/N \approx 1` for N pixels, the power of unit white noise, so
    that spectra of different images and data sets share one scale.

    Args:
        images: (B, C, H, W) tensor.
    Returns:
        a tensor of the same shape and dtype.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a (B, C, H, W) tensor, got shape {tuple(getattr(images, 'shape', ()))}")
    return (images - images.mean(dim=(2, 3), keepdim=True)) / images.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)


def _power(x: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[-2:]
    return torch.fft.fft2(x).abs() ** 2 / (H * W)  # |FFT_2(x)|^2 / (HW)


def power_spectrum(images) -> torch.Tensor:
    r""":math:`P(k) = |\mathrm{FFT}_2(x)(k)|^2 / (HW)`, unshifted, same shape as the input (float64)."""
    return _power(_as_4d(images)).reshape(torch.as_tensor(images).shape)


@lru_cache(maxsize=8)
def _radial_bins(H: int, W: int):
    """Bin k of every FFT coefficient of an (H, W) image (|f| near k / min(H, W)), as a (H*W, F) averaging matrix
    over bins 1..min(H, W)//2 (no DC, nothing past Nyquist), and the mean frequency of each bin (F,)."""
    fy, fx = torch.fft.fftfreq(H, dtype=torch.float64), torch.fft.fftfreq(W, dtype=torch.float64)
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).flatten()   # (H*W,) radial frequency
    n = min(H, W)
    bins = torch.round(r * n).long()                                # bin k holds |f| near k / n
    onehot = torch.zeros(H * W, n // 2, dtype=torch.float64)
    keep = (bins >= 1) & (bins <= n // 2)
    onehot[keep.nonzero().squeeze(1), bins[keep] - 1] = 1.0
    average = onehot / onehot.sum(0)                                # (H*W, F): columns average their bin
    return average, r @ average


def rapsd(images) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectral density, averaged over the batch and the channels.

    Args:
        images: (H, W), (B, H, W) or (B, C, H, W).
    Returns:
        ``(freqs, power)``: 1-D float64, ascending frequencies in cycles per pixel (DC excluded, up to 0.5)
        and the mean power in each radial bin of width 1 / min(H, W).
    """
    x = _as_4d(images)
    H, W = x.shape[-2:]
    average, freqs = _radial_bins(H, W)
    return freqs, _power(x).mean(dim=(0, 1)).flatten() @ average


class SpectralDistance:
    r"""A model-free quality measure: how far the RAPSD of samples is from that of real images.

    :math:`d = \frac1F \sum_f \left|\log_{10} S_\text{samples}(f) - \log_{10} S_\text{real}(f)\right|`, in
    decades, over the F radial bins of :func:`rapsd` (each set's RAPSD averaged over its images and channels).
    0 for the same spectrum; 0.3 is a factor of 2 on average. It sees blur (missing high frequencies), noise
    (excess high frequencies) and wrong contrast, but not whether the images show cats: pair it with an FID.
    Images on any device are measured on the CPU.

    >>> sd = SpectralDistance(test_cats)      # (N, C, H, W) real images
    >>> sd(samples)                           # a float, samples of the same H, W
    >>> sd.bootstrap(a, b, draws=100)         # (draws, 2) on resamples, the real set resampled once per draw
    """

    def __init__(self, reference: torch.Tensor):
        x = _as_4d(reference)
        self.shape = tuple(x.shape[-2:])
        self._average, self.freqs = _radial_bins(*self.shape)
        self.reference = self._per_image(x)                         # (N, F)

    def _per_image(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_4d(x).cpu()
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"images must be {self.shape[0]}x{self.shape[1]} like the reference, got "
                             f"{tuple(x.shape[-2:])}")
        return _power(x).mean(dim=1).flatten(1) @ self._average      # (B, F): each image's RAPSD

    @staticmethod
    def _distance(a: torch.Tensor, b: torch.Tensor) -> float:
        # a floor on the power keeps constant images (a collapsed sampler) at a large, finite distance
        return float((a.mean(0).clamp_min(1e-12).log10() - b.mean(0).clamp_min(1e-12).log10()).abs().mean())

    def __call__(self, samples: torch.Tensor) -> float:
        return self._distance(self._per_image(samples), self.reference)

    def bootstrap(self, *sample_sets: torch.Tensor, draws: int = 100, seed: int = 0) -> np.ndarray:
        """Distances of each set on ``draws`` bootstrap resamples, (draws, len(sample_sets)); every set and the
        reference are resampled in each draw (one reference resample shared by all sets), so column
        differences give the spread of a difference of distances."""
        from .resampling import bootstrap_sets

        return bootstrap_sets(self._distance, [self._per_image(s) for s in sample_sets], self.reference, draws, seed)


def fit_power_law(freqs, power, n_points: int = 32) -> tuple[float, float]:
    r"""Least-squares fit of :math:`\log_{10} P = \text{intercept} + \text{slope}\,\log_{10} f`.

    The spectrum is first resampled (linear interpolation in log-log) onto ``n_points`` log-spaced
    frequencies, so that the many high-frequency bins do not outweigh the few low ones.
    """
    f, p = np.asarray(freqs, np.float64), np.asarray(power, np.float64)
    if f.ndim != 1 or f.shape != p.shape or len(f) < 3:
        raise ValueError(f"freqs and power must be 1-D of the same length >= 3, got {f.shape} and {p.shape}")
    if (f <= 0).any() or (p <= 0).any():
        raise ValueError("freqs and power must be positive for a log-log fit")
    lf, lp = np.log10(f), np.log10(p)
    grid = np.linspace(lf[0], lf[-1], n_points)
    slope, intercept = np.polyfit(grid, np.interp(grid, lf, lp), 1)
    return float(slope), float(intercept)


def _alpha_bar(schedule, t) -> torch.Tensor:
    t = torch.as_tensor(t)
    if t.dtype.is_floating_point or (t < 0).any() or (t > schedule.T - 1).any():
        raise ValueError(f"t must be integer steps in [0, T-1] = [0, {schedule.T - 1}]")
    return schedule.alphas_cumprod.double()[t]


def noisy_spectrum(signal_power, alpha_bar) -> torch.Tensor:
    r"""The modelled RAPSD of :math:`x_t`: :math:`\bar\alpha_t S(f) + (1 - \bar\alpha_t)` (signal and noise independent)."""
    s, a = torch.as_tensor(signal_power, dtype=torch.float64), torch.as_tensor(alpha_bar, dtype=torch.float64)
    a = a[..., None]  # broadcast over frequencies, as in snr_per_frequency
    return a * s + (1 - a)


def snr_per_frequency(signal_power, alpha_bar) -> torch.Tensor:
    r"""Signal-to-noise ratio at each frequency: :math:`\bar\alpha_t S(f) / (1-\bar\alpha_t)` ((T', F) for T' steps)."""
    s, a = torch.as_tensor(signal_power, dtype=torch.float64), torch.as_tensor(alpha_bar, dtype=torch.float64)
    a = a[..., None]  # () -> (1,) gives (F,); (T',) -> (T', 1) gives (T', F)
    return a * s / (1 - a)


def cutoff_frequency(freqs, signal_power, schedule, t, tau: float = 1.0) -> torch.Tensor:
    r"""The highest frequency whose signal power exceeds ``tau`` times the noise power at step t.

    :math:`f_{max}(t) = \max\{f : \bar\alpha_t S(f) > \tau (1-\bar\alpha_t)\}`, or 0 when no frequency
    qualifies. ``t`` may be an int or a 1-D tensor of steps; returns float64 of the same shape.
    """
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    f = torch.as_tensor(freqs, dtype=torch.float64)
    a = _alpha_bar(schedule, t)
    above = snr_per_frequency(signal_power, a.reshape(-1)) > tau           # (T', F)
    fmax = torch.where(above, f[None], torch.zeros_like(f)[None]).amax(dim=1)  # (T',)
    return fmax.reshape(a.shape)


def trajectory_spectra(states) -> tuple[torch.Tensor, torch.Tensor]:
    """RAPSD of each state of a sampling trajectory (e.g. the x0_hat list of ``samplers.sample``).

    Returns ``(freqs, power)`` with power of shape (steps, F).
    """
    if len(states) == 0:
        raise ValueError("states must hold at least one (B, C, H, W) tensor")
    out = [rapsd(s) for s in states]
    return out[0][0], torch.stack([p for _, p in out])


def settling_steps(power: torch.Tensor, tol: float = 0.1) -> torch.Tensor:
    """For each frequency band, the first index from which the power stays within ``tol`` of its final value.

    Args:
        power: (steps, F) spectra along a trajectory, the last row the final sample.
    Returns:
        (F,) long: the index (into the trajectory) at which each band has settled.
    """
    if power.ndim != 2 or power.shape[0] < 1:
        raise ValueError(f"power must be (steps, F), got {tuple(power.shape)}")
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    rel = (power - power[-1:]).abs() / power[-1:].abs().clamp_min(1e-12)   # (steps, F)
    return settled_index(rel, tol)


def settled_index(distance: torch.Tensor, tol: float) -> torch.Tensor:
    """For each column of ``distance`` (steps, F), the first index from which it stays at or below ``tol``.

    Returns (F,) long: 0 when never above ``tol``; ``steps`` when still above it at the last step.
    """
    if distance.ndim != 2:
        raise ValueError(f"distance must be (steps, F), got {tuple(distance.shape)}")
    outside = distance > tol
    idx = torch.arange(outside.shape[0])[:, None].expand_as(outside)
    return torch.where(outside, idx, torch.full_like(idx, -1)).amax(dim=0) + 1


def trajectory_errors(states, tol: float | None = None):
    r"""How far each state's *content* in each frequency band is from the last state's.

    For radial band k (the bins of :func:`rapsd`), summed over the batch,
    :math:`e_k(s) = \sum |\mathrm{FFT}(x_s) - \mathrm{FFT}(x_\text{last})|^2 / \sum |\mathrm{FFT}(x_\text{last})|^2`.
    Unlike the power (:func:`settling_steps`), this compares the Fourier coefficients themselves, phase
    included: a band has settled when *what* it shows stops changing, not only how strong it is.

    Args:
        states: a list of (B, C, H, W) tensors along a trajectory (e.g. the x0_hat of ``samplers.sample``).
        tol: also return, per band, the first index from which :math:`e_k` stays at or below ``tol``.
    Returns:
        ``(freqs, errors)`` with errors (steps, F) float64; with ``tol``, ``(freqs, errors, settled)``.
    """
    if len(states) == 0:
        raise ValueError("states must hold at least one (B, C, H, W) tensor")
    if tol is not None and not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    final = _as_4d(states[-1])
    if any(tuple(s.shape) != tuple(states[-1].shape) for s in states):
        raise ValueError(f"states must all have the final state's shape {tuple(states[-1].shape)}")
    freqs, ref = rapsd(final)
    errors = torch.stack([rapsd(_as_4d(s) - final)[1] / ref.clamp_min(1e-12) for s in states])
    return (freqs, errors) if tol is None else (freqs, errors, settled_index(errors, tol))


def band_split(images, edges) -> torch.Tensor:
    """Split images into radial frequency bands that add up to the images.

    Band k keeps the Fourier coefficients with radial frequency in ``[edges[k-1], edges[k])`` (the
    first band from 0, so it holds the mean; the last up to the corner, sqrt(0.5)).

    Args:
        images: (B, C, H, W).
        edges: ascending cut frequencies in (0, 0.5], cycles per pixel; e.g. (0.1, 0.25) gives 3 bands.
    Returns:
        (len(edges) + 1, B, C, H, W) float64, whose sum over the first axis is the input.
    """
    x = _as_4d(images)
    edges = [float(e) for e in edges]
    if not edges or any(not 0 < e <= 0.5 for e in edges) or edges != sorted(set(edges)):
        raise ValueError(f"edges must be ascending, distinct, in (0, 0.5]; got {edges}")
    H, W = x.shape[-2:]
    fy, fx = torch.fft.fftfreq(H, dtype=torch.float64), torch.fft.fftfreq(W, dtype=torch.float64)
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)            # (H, W) radial frequency
    bounds = [0.0, *edges, float("inf")]
    spectrum = torch.fft.fft2(x)
    return torch.stack([torch.fft.ifft2(spectrum * ((r >= lo) & (r < hi))).real for lo, hi in zip(bounds, bounds[1:])])
