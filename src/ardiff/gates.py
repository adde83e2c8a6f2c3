r"""Sanity gates: a verdict about a *family* is computed only when the models it rests on work.

"Block-wise diffusion fails" is a claim about a family; a badly trained block model makes it about the training.
So a lesson states its gates before it measures, shows them, and passes its family verdicts through
:func:`judged`: when a gate fails, the verdict reads "not judged: <gate> failed", which is a valid verdict.

>>> g = fid_within_floor("DDPM's best sampler", fid=17.7, floor=12.8)       # passes: 1.38x the floor
>>> judged(lambda: ledger.verdict("block-wise", "DDPM"), g, block_gate(block_model, ddpm, schedule, test_digits, 7))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from .resampling import bootstrap_means

__all__ = ["Gate", "BlockGate", "GATE_TIMESTEPS", "fid_within_floor", "makes_digits", "no_worse", "gate_errors",
           "block_gate", "bpd_within", "judged", "gates_table"]

GATE_TIMESTEPS = (100, 300, 600, 900)   # the noise levels of the block-wise gate, low to high


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


@dataclass(frozen=True)
class BlockGate(Gate):
    """:func:`block_gate`'s result: a :class:`Gate` (all noise levels together) with the ratio at each t."""
    block_rows: int
    timesteps: tuple                 # the t of each entry below
    ratio: tuple                     # mean ε-MSE of the block model / the DDPM's, on the same pixels, per t
    ratio_sd: tuple                  # its paired bootstrap sd
    per_t: tuple                     # the non-inferiority Gate of each t (:func:`no_worse`)

    def rows(self) -> list:
        """``(h, t, ratio ± sd, result)`` per t, for :func:`ardiff.claims.claims_table` with header
        ``("h", "t", "ε-MSE ratio", "result")``."""
        return [(self.block_rows, t, f"{r:.3f} ± {sd:.3f}", "passed" if g.passed else "failed")
                for t, r, sd, g in zip(self.timesteps, self.ratio, self.ratio_sd, self.per_t)]


def _check_gate_args(schedule, x0, block_rows, timesteps, block):
    """The block indices the gate scores, after validating its arguments."""
    from .blockwise import num_blocks
    from .forward import _check_schedule

    _check_schedule(schedule)
    if x0.ndim != 4 or x0.shape[1] != 1 or x0.shape[-1] != x0.shape[-2] or len(x0) < 2:
        raise ValueError(f"x0 must be (n, 1, H, H) test images with n >= 2, got {tuple(x0.shape)}")
    K = num_blocks(block_rows, x0.shape[-1])                             # validates block_rows
    ts = list(timesteps)
    if not ts or len(set(ts)) != len(ts) or not all(isinstance(t, int) and not isinstance(t, bool)
                                                    and 0 <= t < schedule.T for t in ts):
        raise ValueError(f"timesteps must be distinct ints in [0, T-1] = [0, {schedule.T - 1}], at least one, "
                         f"got {timesteps!r}")
    if block == "last":
        return [K - 1]
    if block == "middle":
        return [K // 2]
    if block == "all":
        return list(range(K))
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < K:
        raise ValueError(f"block must be 'last', 'middle', 'all' or an int in [0, {K - 1}] for block_rows={block_rows}, "
                         f"got {block!r}")
    return [block]


@torch.no_grad()
def gate_errors(block_model, ddpm, schedule, x0: torch.Tensor, block_rows: int, timesteps=GATE_TIMESTEPS,
                block="last", seed: int = 0) -> dict:
    r"""Per-image ε-MSE of a block denoiser and of the DDPM on the same pixels of the same noisy images.

    For each t and test image :math:`x_0`: draw :math:`\varepsilon \sim N(0, I)` once, form
    :math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\varepsilon`, and score both on the pixels of block k:

    .. math:: e_\text{block} = \operatorname{mean}_{p \in B_k} (\varepsilon_\theta([x_0 \text{ above}, x_t \text{ on } B_k], t, h) - \varepsilon)_p^2,
              \quad e_\text{DDPM} = \operatorname{mean}_{p \in B_k} (\varepsilon_\text{DDPM}(x_t, t) - \varepsilon)_p^2.

    What each model sees of the image: on block k both see the same :math:`x_t`; above it the block model sees the
    clean rows and the DDPM their noisy version; below it the DDPM sees the noisy rows and the block model zeros
    (:func:`ardiff.blockwise.denoiser_input`). So neither has strictly more information about the block's pixels,
    except on the **last block** (nothing below): there the block model sees everything the DDPM sees and the rows
    above clean, and a Bayes-optimal block model is at least as good as a Bayes-optimal DDPM. That is where the gate
    holds its premise, and the default ``block="last"`` scores there. Elsewhere (``"middle"``, an int, ``"all"``) the
    DDPM's noisy rows below carry signal, most at small t, and a ratio above 1 can be the protocol's rather than the
    model's: report those ratios as a description, not as a gate. The gate is a sanity check that fine-tuning from
    the DDPM (BD3-LM, Arriola et al. 2025) kept its denoising skill. On MNIST the last block of a small h lies in
    the blank bottom margin of most digits, where the check is weaker; show another block's ratios beside it.

    ``block``: ``"last"`` scores block K - 1 of every image (h = H: block 0); ``"middle"`` block K // 2 (issue 28's
    first protocol); an int, that block; ``"all"``, every block of every image (K block-model passes per image and
    t), averaged per image, i.e. the mean over all pixels.

    Args:
        block_model: ``model(inp, t, y)`` of :mod:`ardiff.blockwise`. ddpm: ``ddpm(x_t, t)``, on the same device.
        x0: (n, 1, H, H) held-out images in [-1, 1] (test digits). block_rows: h.
        timesteps: distinct ints in [0, T-1]. seed: seeds ε (one draw per t, shared by both models).
    Returns:
        ``{t: (e_block, e_ddpm)}``, two (n,) float64 numpy arrays per t.
    """
    from .blockwise import BLOCK_ROWS, block_masks, denoiser_input
    from .forward import q_sample
    from .samplers import predict_eps

    blocks = _check_gate_args(schedule, x0, block_rows, timesteps, block)
    dev = next(block_model.parameters()).device
    x0 = x0.to(dev, torch.float32)
    n, size = len(x0), x0.shape[-1]
    g = torch.Generator(dev).manual_seed(seed)
    y = torch.full((n,), BLOCK_ROWS.index(block_rows), device=dev)
    was = block_model.training, ddpm.training
    block_model.eval(), ddpm.eval()
    out = {}
    for t in timesteps:
        eps = torch.randn(x0.shape, device=dev, generator=g)             # (n, 1, H, H), the same for both models
        x_t = q_sample(x0, torch.full((n,), t, device=dev), schedule, eps)
        sq_ddpm = (predict_eps(ddpm, x_t, t) - eps) ** 2                  # (n, 1, H, H)
        e_block, e_ddpm = torch.zeros(n, device=dev), torch.zeros(n, device=dev)
        for k in blocks:
            context, current = block_masks(torch.full((n,), k, device=dev), torch.full((n,), block_rows, device=dev),
                                           size, dev)
            sq_block = (predict_eps(block_model, denoiser_input(x0, x_t, context, current), t, y) - eps) ** 2
            pixels = current.sum((1, 2, 3))
            e_block += (sq_block * current).sum((1, 2, 3)) / pixels / len(blocks)
            e_ddpm += (sq_ddpm * current).sum((1, 2, 3)) / pixels / len(blocks)
        out[t] = (e_block.double().cpu().numpy(), e_ddpm.double().cpu().numpy())
    block_model.train(was[0]), ddpm.train(was[1])
    return out


def block_gate(block_model, ddpm, schedule, x0: torch.Tensor, block_rows: int, timesteps=GATE_TIMESTEPS,
               block="last", margin: float = 0.05, alpha: float = 0.05, draws: int = 200, seed: int = 0) -> BlockGate:
    r"""The block-wise sanity gate: at every t, the block model predicts the noise of the last block, where it sees at
    least what the DDPM sees (the premise: :func:`gate_errors`), no worse than the DDPM.

    From :func:`gate_errors` (the same test images, t and ε for both), at each t a non-inferiority test
    (:func:`no_worse`): the one-sided upper confidence bound of the mean extra error is below ``margin`` (δ) of
    the DDPM's mean error, i.e. the ratio :math:`\bar e_\text{block} / \bar e_\text{DDPM}` is below 1 + δ with
    confidence 1 - α. The gate passes when it passes at every t: an intersection-union test, whose chance of
    passing a model that is worse at some t is at most α without a multiplicity correction (Berger 1982).
    A family verdict about block-wise diffusion at this h is computed only when it passes (:func:`judged`).

    Args:
        block_model, ddpm, schedule, x0, block_rows, timesteps, block, seed: as :func:`gate_errors`.
        margin: δ > 0, relative, stated before measuring. alpha: the one-sided level of each t.
        draws: paired bootstrap draws of the images, for the spreads.
    Returns:
        a :class:`BlockGate`: passed, the ratio and its bootstrap sd per t, and each t's :class:`Gate`.
    """
    errors = gate_errors(block_model, ddpm, schedule, x0, block_rows, timesteps, block, seed)
    name = f"block model h = {block_rows} vs DDPM"
    per_t = tuple(no_worse(f"{name}, t = {t}", e, r, margin, alpha, draws, seed) for t, (e, r) in errors.items())
    ratio, sd = [], []
    for e, r in errors.values():
        m = bootstrap_means(e, r, draws=draws, seed=seed)               # (draws, 2): the same images per draw
        ratio.append(float(e.mean() / r.mean()))
        sd.append(float((m[:, 0] / m[:, 1]).std(ddof=1)))
    where = {"last": "the last block (clean rows above, nothing below)", "middle": "the middle block",
             "all": "every block"}.get(block, f"block {block}")
    measured = "; ".join(f"t = {t}: {q:.2f} ± {s:.2f}" for t, q, s in zip(errors, ratio, sd))
    return BlockGate(name, f"ε-MSE on the pixels of {where} at most {1 + margin:g} x the DDPM's on the "
                           f"same pixels, at every t (one-sided, α = {alpha:g} each; n = {len(x0)})",
                     f"ε-MSE ratio {measured}", all(g.passed for g in per_t), block_rows, tuple(errors), tuple(ratio),
                     tuple(sd), per_t)


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
