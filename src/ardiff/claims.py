r"""Claims ledgers: verdicts computed from measurements, never typed in.

A claim compares two configurations a and b on a measure m (FID, sharpness, seconds per image...).
The verdict rests on the *difference* :math:`d = m(a) - m(b)` and the spread of that difference,
:math:`s = \mathrm{sd}(d)` over paired resamples: bootstrap draws that resample both sample sets (and
the reference set, for FID) together, or repeated seeds. Then

- 'better' when :math:`d` beats 0 by more than :math:`k s` in the measure's good direction,
- 'worse' when it loses by more than :math:`k s`,
- 'tie' otherwise.

With :math:`k = 2` and a roughly normal :math:`d`, a true tie is called a win or a loss about 5% of the
time. The spread of the difference is what decides, not the spread of each measure: two FIDs measured
against the same test digits share much of their noise, which cancels in the difference.

A configuration whose samples have collapsed (FID at or above that of noise, or almost no diversity)
is not scored on sharpness or anything else: :func:`collapse` names why, and the ledger says
'collapsed'.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Difference", "difference", "compare", "bootstrap_means", "bootstrap_sets", "collapse", "Ledger",
           "claims_table"]


@dataclass(frozen=True)
class Difference:
    """:math:`d = m(a) - m(b)` and the standard deviation of d over paired resamples."""
    value: float
    sd: float

    def __format__(self, spec: str) -> str:
        return f"{self.value:{spec or '.3g'}} ± {self.sd:{spec or '.3g'}}"

    def sign(self, k: float = 2.0) -> int:
        """+1 when d > k·sd, -1 when d < -k·sd, 0 otherwise."""
        if not k > 0:
            raise ValueError(f"k must be > 0, got {k}")
        return 1 if self.value > k * self.sd else -1 if self.value < -k * self.sd else 0


def difference(value_a: float, value_b: float, draws_a, draws_b) -> Difference:
    """The difference of two measures, with its spread from paired draws.

    Args:
        value_a, value_b: the measures on the full sample sets.
        draws_a, draws_b: (draws,) the same measures on paired resamples: draw i of both used the same
            resample of everything they share (e.g. a column pair of ``FidMnist.bootstrap``).
    """
    a, b = np.asarray(draws_a, np.float64), np.asarray(draws_b, np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"draws_a and draws_b must be paired 1-D arrays of >= 2 draws, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all() and np.isfinite([value_a, value_b]).all()):
        raise ValueError("values and draws must be finite")
    return Difference(float(value_a - value_b), float((a - b).std(ddof=1)))


def compare(diff: Difference, lower_is_better: bool, k: float = 2.0) -> str:
    """'better', 'worse' or 'tie' for a over b, given ``diff = m(a) - m(b)``."""
    s = diff.sign(k)
    if s == 0:
        return "tie"
    return "better" if (s < 0) == lower_is_better else "worse"


def bootstrap_means(*per_item, draws: int = 200, seed: int = 0) -> np.ndarray:
    """Means of per-item values on paired bootstrap resamples: (draws, len(per_item)).

    All sets must have one value per item, with item i of every set made from the same input (e.g. the
    same starting noise); each draw resamples the item indices once and uses them for every set, so
    column differences give the spread of a paired difference.
    """
    sets = [np.asarray(v, np.float64).ravel() for v in per_item]
    if not sets or len({len(v) for v in sets}) != 1 or len(sets[0]) < 2:
        raise ValueError(f"per_item must be one or more sets of the same length >= 2, got lengths "
                         f"{[len(v) for v in sets]}")
    if draws < 2:
        raise ValueError(f"draws must be >= 2, got {draws}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(sets[0]), (draws, len(sets[0])))          # (draws, n)
    return np.stack([v[idx].mean(1) for v in sets], axis=1)


def bootstrap_sets(measure, sets, reference, draws: int = 100, seed: int = 0, paired: bool = False) -> np.ndarray:
    """A set-level measure (FID, spectral distance) of each set on bootstrap resamples: (draws, len(sets)).

    ``measure(rows_of_a_set, rows_of_the_reference) -> float``; sets and reference are arrays or tensors of
    per-image rows (features, spectra). Each draw resamples the reference once, shared by every set, and
    each set with replacement, so column differences give the spread of a *difference* of measures.
    ``paired=True`` resamples every set with the same indices: right when row i of every set comes from the
    same input (the same starting noise), and then the noise the pairs share leaves the spread.
    """
    if not sets or draws < 2:
        raise ValueError(f"give at least one sample set and draws >= 2, got {len(sets)} sets, {draws}")
    if paired and len({len(s) for s in sets}) != 1:
        raise ValueError(f"paired sets must have the same length, got {[len(s) for s in sets]}")
    rng = np.random.default_rng(seed)
    out = np.empty((draws, len(sets)))
    for k in range(draws):
        ref = reference[rng.integers(0, len(reference), len(reference))]
        if paired:
            idx = rng.integers(0, len(sets[0]), len(sets[0]))
            out[k] = [measure(s[idx], ref) for s in sets]
        else:
            out[k] = [measure(s[rng.integers(0, len(s), len(s))], ref) for s in sets]
    return out


def collapse(fid: float, noise_fid: float, diversity: float, real_diversity: float,
             min_share: float = 0.1) -> str | None:
    """Why a configuration's samples have collapsed, or None.

    Collapsed: an FID at or above that of Gaussian noise at the same n (the samples are no closer to
    digits than noise is), or a diversity (mean pairwise feature distance) below ``min_share`` of
    real images' (nearly identical samples, e.g. all black).
    """
    if not 0 < min_share < 1:
        raise ValueError(f"min_share must be in (0, 1), got {min_share}")
    if fid >= noise_fid:
        return f"FID {fid:.0f} is at or above that of noise ({noise_fid:.0f})"
    if diversity < min_share * real_diversity:
        return f"diversity {diversity:.2f} is below {min_share:.0%} of real images' ({real_diversity:.2f})"
    return None


class Ledger:
    """Sampling configurations measured side by side on one FID (:class:`ardiff.metrics.Fid`).

    Each row holds the FID at the Fid's n, the diversity relative to the real test images', the collapse
    reason (or None), seconds per image and network evaluations per image when given, and any extra measures.
    :meth:`bootstrap` then resamples every row's samples (and the test images, shared per draw) so that
    :meth:`difference` gives the spread of a difference of FIDs.

    >>> ledger = Ledger(FidCifar(classifier, n=1000), noise=torch.randn(1000, 3, 32, 32))
    >>> ledger.add("DDIM 50", samples, seconds=12.0, evals=50)
    >>> ledger.bootstrap(draws=50); ledger.difference("DDIM 50", "PixelCNN")   # Difference(value, sd)
    """

    RESERVED = ("fid", "diversity", "s_per_image", "evals", "collapsed")

    def __init__(self, fid, noise, paired: bool = False):
        """``noise``: (n, C, H, W) noise images, the FID every row is read against. ``paired=True`` when sample i of
        every row comes from the same starting noise: each bootstrap draw then resamples the same indices in every
        row, and the noise the rows share cancels in a difference."""
        from .metrics import diversity

        self.fid, self.n, self.paired = fid, fid.n, paired
        self.noise_fid = fid(noise)
        self.real_diversity = diversity(fid.test_features)
        self.rows, self.samples, self.features, self.per_image, self.draws = {}, {}, {}, {}, {}

    def add(self, name: str, samples, seconds: float | None = None, evals: int | None = None, per_image=None,
            **extra) -> dict:
        """Measure ``samples`` (n, C, H, W) as row ``name``; ``seconds`` is the wall time of all n samples.
        ``per_image``: ``{measure: (n,) values}`` (e.g. sharpness per image); the row holds their mean, and
        :meth:`bootstrap` resamples them with the images, so that :meth:`difference` can compare them too."""
        from .metrics import diversity, fid

        if name in self.rows:
            raise ValueError(f"the ledger already has a row named {name!r}")
        per_image = {k: np.asarray(v, np.float64).ravel() for k, v in (per_image or {}).items()}
        for k, v in per_image.items():
            if k in self.RESERVED or k in extra:
                raise ValueError(f"per_image measure {k!r} would overwrite a field of the row; reserved: {self.RESERVED}")
            if len(v) != len(samples):
                raise ValueError(f"per_image[{k!r}] has {len(v)} values; it needs one per sample ({len(samples)})")
        feats = self.fid.features(samples)                  # once: for the FID, the diversity and the bootstrap
        row = {"fid": fid(feats, self.fid.test_features), "diversity": diversity(feats) / self.real_diversity,
               "s_per_image": None if seconds is None else seconds / len(samples), "evals": evals, **extra}
        row["collapsed"] = collapse(row["fid"], self.noise_fid, row["diversity"], 1.0)
        row.update({k: float(v.mean()) for k, v in per_image.items()})
        self.rows[name], self.samples[name], self.features[name] = row, samples.detach().float().clamp(-1, 1).cpu(), feats
        self.per_image[name] = per_image
        self.draws = {}                 # a difference needs every row's draws from the same test resamples
        return row

    def bootstrap(self, draws: int = 50, seed: int = 0, mean_draws: int = 200) -> None:
        """FIDs of every row on the same ``draws`` resamples of the test images (for :meth:`difference`), and the
        per-image measures' means on ``mean_draws`` resamples of the image indices, the same indices for every row
        (right for rows that share their inputs; for independent rows it is an ordinary bootstrap of each mean)."""
        from .metrics import fid

        names = list(self.rows)
        out = bootstrap_sets(fid, [self.features[k] for k in names], self.fid.test_features, draws, seed,
                             paired=self.paired)
        self.draws = {"fid": dict(zip(names, out.T))}
        for m in sorted({m for k in names for m in self.per_image[k]}):
            have = [k for k in names if m in self.per_image[k]]
            means = bootstrap_means(*[self.per_image[k][m] for k in have], draws=mean_draws, seed=seed)
            self.draws[m] = dict(zip(have, means.T))

    def difference(self, a: str, b: str, measure: str = "fid") -> Difference:
        """measure(a) - measure(b) with the bootstrap spread of the difference (call :meth:`bootstrap` first)."""
        missing = [k for k in (a, b) if k not in self.draws.get(measure, {})]
        if missing:
            raise ValueError(f"no bootstrap draws of {measure!r} for {missing}: call bootstrap() after the last add()")
        d = self.draws[measure]
        return difference(self.rows[a][measure], self.rows[b][measure], d[a], d[b])

    def verdict(self, a: str, b: str, measure: str = "fid", lower_is_better: bool = True, k: float = 2.0) -> str:
        """'better', 'worse' or 'tie' for row a against row b (on FID by default), at k spreads of the difference."""
        return compare(self.difference(a, b, measure), lower_is_better=lower_is_better, k=k)

    def scored(self, names=None) -> list:
        """The rows (of ``names``, default all) that have not collapsed: only those are scored."""
        return [k for k in (self.rows if names is None else names) if not self.rows[k]["collapsed"]]

    def best(self, names=None) -> str:
        """The row of lowest FID among ``names`` (default all) that have not collapsed."""
        pool = self.scored(names)
        if not pool:
            raise ValueError("every row given has collapsed: there is no best")
        return min(pool, key=lambda k: self.rows[k]["fid"])

    def as_good_as(self, ref: str, names=None) -> list:
        """The non-collapsed rows of ``names`` whose FID is not worse than ``ref``'s beyond twice the spread."""
        return [k for k in self.scored(names) if k != ref and self.verdict(k, ref) != "worse"]

    def table(self, extra=()) -> str:
        """The rows as aligned text: FID, diversity, evaluations, ms per image, the ``extra`` measures, collapse."""
        head = f"{'configuration':<24} {'FID':>7} {'div':>5} {'evals':>6} {'ms/image':>9}" + "".join(
            f" {k:>10}" for k in extra)
        lines = [f"FID at n = {self.n}: real floor {self.fid.floor:.1f}, noise {self.noise_fid:.0f}", head]
        for name, r in self.rows.items():
            ms = "-" if r["s_per_image"] is None else f"{1000 * r['s_per_image']:.1f}"
            line = (f"{name:<24} {r['fid']:>7.1f} {r['diversity']:>5.2f} {r['evals'] or '-':>6} {ms:>9}"
                    + "".join(f" {r.get(k, float('nan')):>10.3g}" for k in extra))
            lines.append(line + (f"   COLLAPSED: {r['collapsed']}" if r["collapsed"] else ""))
        return "\n".join(lines)


def claims_table(rows, note: str = "", header=("claim", "measured here", "verdict")) -> str:
    """A markdown table: ``rows`` of as many cells as ``header`` (by default ``(claim, measured here, verdict)``),
    with '|' escaped and line breaks flattened, and an optional note in italics below."""
    rows, header = list(rows), tuple(header)
    if not rows or any(len(r) != len(header) for r in rows):
        raise ValueError(f"rows must be one or more rows of {len(header)} cells, one per header column {header}")
    clean = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(r) + " |" for r in clean]
    out = "\n".join([lines[0], "|" + "---|" * len(header), *lines[1:]])
    return out + (f"\n\n*{note}*" if note else "")
