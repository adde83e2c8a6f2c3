r"""Sanity gates: a verdict about a *family* is computed only when the models it rests on work.

"Block-wise diffusion fails" is a claim about a family; a badly trained block model makes it about the training.
So a lesson states its gates before it measures, shows them, and passes its family verdicts through
:func:`judged`: when a gate fails, the verdict reads "not judged: <gate> failed", which is a valid verdict.

>>> g = fid_within_floor("DDPM's best sampler", fid=17.7, floor=12.8)       # passes: 1.38x the floor
>>> judged(lambda: ledger.verdict("block-wise", "DDPM"), g, no_worse("block denoiser vs DDPM", err_block, err_ddpm))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .resampling import bootstrap_means

__all__ = ["Gate", "fid_within_floor", "makes_digits", "no_worse", "bpd_within", "judged", "gates_table"]


@dataclass(frozen=True)
class Gate:
    """One sanity check: its name, the rule stated before measuring, what was measured, and whether it passed."""
    name: str
    rule: str
    measured: str
    passed: bool

    def __str__(self) -> str:
        return f"{self.name}: {self.measured} ({self.rule}): {'passed' if self.passed else 'FAILED'}"


def _finite(**values):
    for k, v in values.items():
        if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v)):
            raise ValueError(f"{k} must be a finite number, got {v!r}")


def fid_within_floor(name: str, fid: float, floor: float, factor: float = 1.5) -> Gate:
    """The model's best sampler scores within ``factor`` times the real floor (FID of real training images against
    the test images at the same n and feature network): FID <= factor x floor."""
    _finite(fid=fid, floor=floor, factor=factor)
    if floor <= 0 or factor < 1:
        raise ValueError(f"floor must be > 0 and factor >= 1, got floor {floor}, factor {factor}")
    return Gate(name, f"FID <= {factor:g} x the real floor {floor:.1f}", f"FID {fid:.1f} = {fid / floor:.2f} x floor",
                fid <= factor * floor)


def makes_digits(name: str, fid: float, noise_fid: float, diversity: float, real_diversity: float = 1.0) -> Gate:
    """The model's samples are digits at all: neither collapsed nor 'not digits' (:func:`ardiff.claims.not_digits`:
    FID below half that of noise, and diversity above half the real images'). A weak gate, for a model used as a
    *component* (an AR prior) rather than judged as a generator."""
    from .claims import not_digits

    _finite(fid=fid, noise_fid=noise_fid, diversity=diversity, real_diversity=real_diversity)
    why = not_digits(fid, noise_fid, diversity, real_diversity)
    return Gate(name, f"FID < {noise_fid / 2:.0f} (half the noise's) and diversity > {real_diversity / 2:.2f} (half the real)",
                f"FID {fid:.1f}, diversity {diversity:.2f}" + (f": {why}" if why else ""), why is None)


def no_worse(name: str, errors, reference_errors, margin: float = 0.05, alpha: float = 0.05, draws: int = 200,
             seed: int = 0) -> Gate:
    r"""A model that sees more (e.g. a block denoiser with the clean rows above) is no worse than the reference on the
    same items, by a non-inferiority test: with :math:`d_i = e_i - e^\text{ref}_i`, it passes when
    :math:`\bar d + z_{1-\alpha}\,\mathrm{sd}_\text{boot}(\bar d) < \delta\,\bar e^\text{ref}`, i.e. the one-sided upper
    confidence bound of the mean extra error is below ``margin`` (δ, relative) of the reference's mean error. A small
    or noisy sample fails it: no evidence of being worse is not enough.

    Args:
        errors, reference_errors: one error per item (e.g. each test image's ε-MSE on the same pixels, the same t
            and ε), item i of both from the same input; >= 2 items.
        margin: the relative margin δ > 0, stated before measuring. alpha: the one-sided level.
    """
    e, r = np.asarray(errors, np.float64).ravel(), np.asarray(reference_errors, np.float64).ravel()
    if len(e) != len(r) or len(e) < 2:
        raise ValueError(f"errors and reference_errors must be paired, one per item (>= 2), got {len(e)} and {len(r)}")
    if not (np.isfinite(e).all() and np.isfinite(r).all()) or r.mean() <= 0:
        raise ValueError("errors must be finite, and the reference's mean error > 0")
    _finite(margin=margin, alpha=alpha)
    if margin <= 0 or not 0 < alpha < 0.5:
        raise ValueError(f"margin must be > 0 and alpha in (0, 0.5), got margin {margin}, alpha {alpha}")
    d = bootstrap_means(e - r, draws=draws, seed=seed)[:, 0]
    gap, sd = float((e - r).mean()), float(d.std(ddof=1))
    upper = gap + NormalDist().inv_cdf(1 - alpha) * sd
    return Gate(name, f"mean extra error below {margin:.0%} of the reference's (one-sided, α = {alpha:g})",
                f"error ratio {e.mean() / r.mean():.2f}; extra error {gap:.3g} ± {sd:.2g} (upper bound "
                f"{upper / r.mean():+.1%} of the reference's)", upper < margin * r.mean())


def bpd_within(name: str, bpd: float, reference: float, tolerance: float) -> Gate:
    """A likelihood model's bits/dim within ``tolerance`` of a stated reference (e.g. a published model of its
    kind): bpd <= reference + tolerance."""
    _finite(bpd=bpd, reference=reference, tolerance=tolerance)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    return Gate(name, f"bits/dim <= {reference:.3f} + {tolerance:g}", f"{bpd:.3f} bits/dim", bpd <= reference + tolerance)


def judged(verdict, *gates: Gate):
    """``verdict()`` when every gate passed; otherwise "not judged: <names> failed" (``verdict`` is not called)."""
    if not gates or not all(isinstance(g, Gate) for g in gates):
        raise ValueError("give one or more Gate objects: a family verdict rests on stated gates")
    failed = [g.name for g in gates if not g.passed]
    return verdict() if not failed else f"not judged: {'; '.join(failed)} failed"


def gates_table(gates) -> str:
    """The gates as a markdown table: gate, rule, measured, result."""
    from .claims import claims_table

    return claims_table([(g.name, g.rule, g.measured, "passed" if g.passed else "failed") for g in gates],
                        header=("gate", "rule", "measured", "result"))
