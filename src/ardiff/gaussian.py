r"""The linear-Gaussian (Wiener) denoiser: the null model of lesson 05.

If the clean images were Gaussian, :math:`x_0 \sim \mathcal N(\mu, \Sigma)`, then for
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon` the minimum-mean-square-error
denoiser would be linear, the Wiener filter:

.. math::

    \mathbb E[x_0 \mid x_t] = \mu + \sqrt{\bar\alpha_t}\,\Sigma\,\bigl(\bar\alpha_t \Sigma + (1-\bar\alpha_t) I\bigr)^{-1}
    (x_t - \sqrt{\bar\alpha_t}\,\mu).

With the eigendecomposition :math:`\Sigma = U \operatorname{diag}(\lambda) U^\top`, computed once, it is a shrinkage
in the eigenbasis: component k of :math:`z = U^\top (x_t - \sqrt{\bar\alpha_t}\mu)` is multiplied by
:math:`\sqrt{\bar\alpha_t}\lambda_k / (\bar\alpha_t\lambda_k + 1 - \bar\alpha_t)`, so directions of high variance
(for images with a falling spectrum: the low frequencies) are kept at a noise level that already drowns the others.
The matching noise prediction, :math:`\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}`, is
:math:`\hat\varepsilon = U \operatorname{diag}\bigl(\sqrt{1-\bar\alpha_t} / (\bar\alpha_t\lambda_k + 1 - \bar\alpha_t)\bigr) z`,
which is also :math:`\mathbb E[\varepsilon \mid x_t]` and stays finite where :math:`\lambda_k = 0`.

:class:`GaussianDenoiser` fits :math:`\mu` and :math:`\Sigma` to real images (:meth:`GaussianDenoiser.fit`) and is an
ε-prediction model with the U-Net's call signature, ``model(x_t, t) -> eps_hat`` with ``x_t`` (B, C, H, W) and ``t``
(B,) long (the code's 0-indexed step), so every sampler of :mod:`ardiff.samplers` runs it unchanged. It is the best
linear denoiser, in mean square, for any data with this mean and covariance (and the best of all for Gaussian data):
it uses the second-order statistics (for images, the spectrum) and nothing else. Lesson 05 measures it
beside the trained DDPM to separate what the spectrum explains from what the network learned. Wang and Vastola
(2024) study the same Gaussian score as an approximation of trained diffusion models; Kadkhodaie et al. (2024)
describe trained denoisers as shrinkage in a basis adapted to the image, of which this fixed eigenbasis is the
Gaussian case.

References:
    B. Wang, J. J. Vastola, "The Unreasonable Effectiveness of Gaussian Score Approximation for Diffusion Models
    and its Applications", TMLR 2024. Z. Kadkhodaie, F. Guth, E. P. Simoncelli, S. Mallat, "Generalization in
    diffusion models arises from geometry-adaptive harmonic representations", ICLR 2024.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .schedules import NoiseSchedule

__all__ = ["GaussianDenoiser"]


class GaussianDenoiser(nn.Module):
    r"""The Wiener denoiser of :math:`\mathcal N(\mu, \Sigma)` data as an ε-prediction model: ``model(x_t, t) -> eps_hat``.

    >>> wiener = GaussianDenoiser.fit(train_images, schedule)   # (N, C, H, W) images
    >>> eps_hat = wiener(x_t, t)                                 # (B, C, H, W), t (B,) long in 0..T-1
    >>> x0_hat = wiener.x0_hat(x_t, t)                           # E[x_0 | x_t], the posterior mean

    Args:
        mean: :math:`\mu`, (C, H, W).
        covariance: :math:`\Sigma`, (D, D) with D = C·H·W, symmetric positive semi-definite (eigenvalues
            below 0 from rounding are set to 0).
        schedule: the :class:`~ardiff.schedules.NoiseSchedule` whose :math:`\bar\alpha_t` the step t indexes.

    The statistics are stored in float64 as frozen parameters (``requires_grad=False``), so ``.to(device)`` moves
    them and the samplers find the model's device; the output has the dtype of ``x_t``.
    """

    def __init__(self, mean: torch.Tensor, covariance: torch.Tensor, schedule: NoiseSchedule):
        super().__init__()
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        if not isinstance(mean, torch.Tensor) or mean.ndim != 3:
            raise ValueError(f"mean must be a (C, H, W) tensor, got shape {tuple(getattr(mean, 'shape', ()))}")
        D = mean.numel()
        if not isinstance(covariance, torch.Tensor) or tuple(covariance.shape) != (D, D):
            raise ValueError(f"covariance must be a (D, D) tensor with D = C*H*W = {D}, got shape "
                             f"{tuple(getattr(covariance, 'shape', ()))}")
        mean, covariance = mean.detach().double().cpu(), covariance.detach().double().cpu()
        if not (torch.isfinite(mean).all() and torch.isfinite(covariance).all()):
            raise ValueError("mean and covariance must be finite")
        scale = covariance.abs().max().clamp_min(1e-300)
        if (covariance - covariance.T).abs().max() > 1e-8 * scale:
            raise ValueError("covariance must be symmetric")
        eigvals, eigvecs = torch.linalg.eigh((covariance + covariance.T) / 2)   # once; every t reuses it
        if eigvals.min() < -1e-6 * scale:
            raise ValueError(f"covariance must be positive semi-definite, has an eigenvalue {eigvals.min():.3g}")
        self.shape = tuple(mean.shape)
        self.mean = nn.Parameter(mean, requires_grad=False)                      # (C, H, W)
        self.eigvals = nn.Parameter(eigvals.clamp_min(0), requires_grad=False)   # (D,) lambda, ascending
        self.eigvecs = nn.Parameter(eigvecs, requires_grad=False)                # (D, D) U, eigenvectors as columns
        self.register_buffer("alphas_cumprod", schedule.alphas_cumprod.double().clone())   # (T,)

    @classmethod
    def fit(cls, images: torch.Tensor, schedule: NoiseSchedule, chunk: int = 10_000) -> "GaussianDenoiser":
        """Fit the mean and the (unbiased, N - 1) covariance of ``images`` (N, C, H, W), N >= 2, in float64,
        ``chunk`` images at a time (60,000 MNIST digits never sit in memory as float64 at once)."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f"images must be a (N, C, H, W) tensor, got shape {tuple(getattr(images, 'shape', ()))}")
        if len(images) < 2:
            raise ValueError(f"images must hold at least 2 images to estimate a covariance, got {len(images)}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
        if not torch.isfinite(images).all():
            raise ValueError("images must be finite")
        x = images.detach().cpu().flatten(1)                                      # (N, D)
        N, D = x.shape
        mean = x.double().mean(0)                                                 # (D,)
        cov = torch.zeros(D, D, dtype=torch.float64)
        for i in range(0, N, chunk):
            xc = x[i:i + chunk].double() - mean
            cov += xc.T @ xc
        return cls(mean.reshape(images.shape[1:]), cov / (N - 1), schedule)

    def _project(self, x_t: torch.Tensor, t):
        """Check the arguments; return z = U^T (x_t - sqrt(abar) mu) (B, D), sqrt(abar) and sqrt(1 - abar) (B, 1)."""
        if not isinstance(x_t, torch.Tensor) or not x_t.is_floating_point() or tuple(x_t.shape[1:]) != self.shape:
            raise ValueError(f"x_t must be a float (B, {', '.join(map(str, self.shape))}) tensor, got "
                             f"{getattr(x_t, 'dtype', type(x_t).__name__)} of shape {tuple(getattr(x_t, 'shape', ()))}")
        T = len(self.alphas_cumprod)
        if not isinstance(t, torch.Tensor):                                        # an int: the same step for all
            if isinstance(t, bool) or not isinstance(t, int):
                raise ValueError(f"t must be an int or a (B,) integer tensor, got {t!r}")
            t = torch.full((len(x_t),), t, dtype=torch.long)
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.ndim > 1 or (t.ndim == 1 and len(t) != len(x_t)):
            raise ValueError(f"t must be an int or a (B,) = ({len(x_t)},) integer tensor, got {t.dtype} of shape "
                             f"{tuple(t.shape)}")
        if (t < 0).any() or (t > T - 1).any():
            raise ValueError(f"t must be in [0, T-1] = [0, {T - 1}], got values from {int(t.min())} to {int(t.max())}")
        abar = self.alphas_cumprod[t.to(self.alphas_cumprod.device).long().expand(len(x_t))][:, None]   # (B, 1)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        z = (x_t.double().flatten(1) - a * self.mean.flatten()) @ self.eigvecs  # (B, D), the eigenbasis
        return z, a, s

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        r""":math:`\hat\varepsilon = \mathbb E[\varepsilon \mid x_t]`, (B, C, H, W) in the dtype of ``x_t``."""
        with torch.autocast(x_t.device.type, enabled=False):                     # float64 whatever the context
            z, a, s = self._project(x_t, t)
            eps = (z * (s / (a ** 2 * self.eigvals + s ** 2))) @ self.eigvecs.T  # (B, D)
        return eps.reshape(x_t.shape).to(x_t.dtype)

    def x0_hat(self, x_t: torch.Tensor, t) -> torch.Tensor:
        r""":math:`\hat x_0 = \mathbb E[x_0 \mid x_t]`, the Wiener filter, (B, C, H, W) in the dtype of ``x_t``."""
        with torch.autocast(x_t.device.type, enabled=False):
            z, a, s = self._project(x_t, t)
            x0 = self.mean.flatten() + (z * (a * self.eigvals / (a ** 2 * self.eigvals + s ** 2))) @ self.eigvecs.T
        return x0.reshape(x_t.shape).to(x_t.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""``n`` draws of :math:`x_0 = \mu + U\Lambda^{1/2}z`, :math:`z \sim \mathcal N(0, I)`: images with the fitted
        mean and covariance and nothing more (lesson 04's no-information start), (n, C, H, W) float32 on the
        statistics' device. ``generator`` lives on that device."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        z = torch.randn(n, self.eigvals.numel(), generator=generator, dtype=torch.float64, device=self.eigvals.device)
        x = self.mean.flatten() + (z * self.eigvals.sqrt()) @ self.eigvecs.T     # (n, D)
        return x.reshape(n, *self.shape).float()
