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
'collapsed'. One that is not that far gone but makes no digits (FID above half the noise FID, or diversity
below half the real data's: :func:`not_digits`) is shown and called "not digits", and never scored either.

Three more rules make a verdict one an expert would sign:

- **equivalence** is a test with a margin stated beforehand, never "no difference beyond 2 sd" (absence of
  evidence): :meth:`Difference.equivalent` runs two one-sided tests (TOST) on the bootstrap of the difference;
  :meth:`Difference.not_worse` the one-sided non-inferiority test;
- **multiplicity**: a lesson's confirmatory claims are decided together by :meth:`Ledger.confirm`, with Holm's
  step-down correction on the bootstrap z-scores (:func:`holm`) or at 3 sd, and the ledger says which;
- **draws**: verdicts rest on >= :attr:`Ledger.MIN_DRAWS` = 200 bootstrap draws (50 leave ~10% Monte-Carlo error
  on the sd itself); fewer are allowed for a quick check, and the ledger's :meth:`Ledger.note` then calls its
  verdicts provisional.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .resampling import bootstrap_means, bootstrap_sets  # re-exported: lessons import them from here

__all__ = ["Difference", "difference", "mean_difference", "compare", "holm", "bootstrap_means", "bootstrap_sets", "collapse", "not_digits",
           "verdict_words", "measures_verdict", "Ledger", "claims_table"]


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

    @property
    def z(self) -> float:
        """d / sd (±inf for an exact difference, 0 for none)."""
        return self.value / self.sd if self.sd > 0 else math.copysign(math.inf, self.value) if self.value else 0.0

    def p_value(self) -> float:
        r"""Two-sided p of d = 0 under a normal bootstrap distribution: :math:`2\,\Phi(-|z|)`."""
        return math.erfc(abs(self.z) / math.sqrt(2))

    def equivalent(self, margin: float, alpha: float = 0.05) -> bool:
        r"""Two one-sided tests (TOST, Schuirmann 1987): d lies within ±``margin`` when both
        :math:`(d + \delta)/s > z_{1-\alpha}` and :math:`(\delta - d)/s > z_{1-\alpha}`, i.e. the
        :math:`1 - 2\alpha` confidence interval of d lies inside :math:`(-\delta, \delta)`."""
        z = _z_one_sided(margin, alpha)
        return self.value + z * self.sd < margin and self.value - z * self.sd > -margin

    def not_worse(self, margin: float, lower_is_better: bool, alpha: float = 0.05) -> bool:
        r"""Non-inferiority: a is worse than b by less than ``margin`` (one-sided at level α). For a lower-is-better
        measure, :math:`d + z_{1-\alpha} s < \delta`."""
        z = _z_one_sided(margin, alpha)
        return (self.value + z * self.sd < margin) if lower_is_better else (self.value - z * self.sd > -margin)


def _z_one_sided(margin: float, alpha: float) -> float:
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0 (stated before measuring), got {margin!r}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
    return NormalDist().inv_cdf(1 - alpha)


def holm(p_values, alpha: float = 0.05) -> list:
    r"""Holm's step-down correction (Holm 1979): which of m hypotheses to reject, with family-wise error <= α.

    Sort the p-values :math:`p_{(1)} \le \dots \le p_{(m)}`; reject :math:`H_{(j)}` while
    :math:`p_{(j)} \le \alpha / (m - j + 1)`, and stop at the first that is not. Returns a list of bools in the
    order given.
    """
    p = [float(v) for v in p_values]
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if any(not 0 <= v <= 1 for v in p):
        raise ValueError(f"p_values must lie in [0, 1], got {p}")
    reject, m = [False] * len(p), len(p)
    for j, i in enumerate(sorted(range(m), key=p.__getitem__)):
        if p[i] > alpha / (m - j):
            break
        reject[i] = True
    return reject


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


def mean_difference(a, b=None) -> Difference:
    r"""The mean of per-item values ``a`` (minus ``b``, item by item, when given) and its standard error:
    :math:`\bar d \pm s_d / \sqrt{n}` with :math:`d_i = a_i - b_i`, e.g. the bits/dim of two models on the same
    digits. Pairing removes the variation the items share from the spread.

    Args:
        a, b: (n,) per-item values, n >= 2; b on the same items as a, or None.
    """
    x = np.asarray(a, np.float64).ravel()
    if b is not None:
        y = np.asarray(b, np.float64).ravel()
        if y.shape != x.shape:
            raise ValueError(f"a and b must hold one value per item each, got {x.shape} and {y.shape}")
        x = x - y
    if len(x) < 2 or not np.isfinite(x).all():
        raise ValueError(f"a (and b) must hold >= 2 finite values, got {len(x)}")
    return Difference(float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))))


def compare(diff: Difference, lower_is_better: bool, k: float = 2.0) -> str:
    """'better', 'worse' or 'tie' for a over b, given ``diff = m(a) - m(b)``."""
    s = diff.sign(k)
    if s == 0:
        return "tie"
    return "better" if (s < 0) == lower_is_better else "worse"


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


def not_digits(fid: float, noise_fid: float, diversity: float, real_diversity: float) -> str | None:
    """Why samples are not digits (or not images of the data at all), or None.

    Not digits: an FID above half that of Gaussian noise at the same n, or a diversity below half the real
    data's. Such samples are shown and called so, never scored in a quality comparison: an FID of 1942 against
    noise at 1956 is not "worse digits", it is no digits.
    """
    if fid > noise_fid / 2:
        return f"FID {fid:.0f} is above half that of noise ({noise_fid:.0f})"
    if diversity < real_diversity / 2:
        return f"diversity {diversity:.2f} is below half of real images' ({real_diversity:.2f})"
    return None


def verdict_words(verdict: str, a: str, b: str, better: str = "{a} better", worse: str = "{b} better",
                  tie: str = "no difference shown") -> str:
    """A verdict of a over b in words: 'better' -> ``better``, 'worse' -> ``worse``, 'tie' -> ``tie`` (formatted with
    ``a`` and ``b``); anything else (a 'not judged: ...' reason) is returned as it is. A tie is "no difference shown",
    never "equal": equal quality needs an equivalence test with a margin (:meth:`Difference.equivalent`)."""
    words = {"better": better, "worse": worse, "tie": tie}
    return words[verdict].format(a=a, b=b) if verdict in words else verdict


def measures_verdict(verdicts: dict, a: str, b: str) -> tuple[str, str]:
    """One claim, "a is better than b", judged on several measures at once: ``verdicts`` ``{measure: 'better' |
    'worse' | 'tie'}`` for a over b (e.g. from :meth:`Ledger.confirm`).

    When the measures disagree, the verdict is "mixed" and says which measure favours which side; a measure that
    finds no difference beside one that does is a disagreement too (the claim holds on one measure only).

    Returns:
        ``(word, sentence)``: "supported" (a better on every measure), "contradicted" (b better on every one),
        "not supported" (no measure finds a difference) or "mixed"; a 'not judged: ...' verdict on any measure
        makes the whole "not judged" with its reason.
    """
    if not verdicts:
        raise ValueError("verdicts must name at least one measure")
    bad = {m: v for m, v in verdicts.items() if v not in ("better", "worse", "tie") and not str(v).startswith("not judged")}
    if bad:
        raise ValueError(f"verdicts must be 'better', 'worse', 'tie' or 'not judged: ...', got {bad}")
    gone = [v for v in verdicts.values() if str(v).startswith("not judged")]
    if gone:
        return "not judged", gone[0]
    say = {"better": f"favours {a}", "worse": f"favours {b}", "tie": "finds no difference"}
    parts = ", ".join(f"{m} {say[v]}" for m, v in verdicts.items())
    kinds = set(verdicts.values())
    if kinds == {"better"}:
        return "supported", f"supported: {a} is better on every measure ({parts})"
    if kinds == {"worse"}:
        return "contradicted", f"contradicted: {b} is better on every measure ({parts})"
    if kinds == {"tie"}:
        return "not supported", f"not supported: neither {' nor '.join(verdicts)} finds a difference" if len(verdicts) == 2 \
            else f"not supported: no measure finds a difference ({', '.join(verdicts)})"
    return "mixed", f"mixed: the measures disagree ({parts})"


class Ledger:
    """Sampling configurations measured side by side on one FID (:class:`ardiff.metrics.Fid`).

    Each row holds the FID at the Fid's n, the diversity relative to the real test images', the collapse
    reason (or None), seconds per image and network evaluations per image when given, and any extra measures.
    :meth:`bootstrap` then resamples every row's samples (and the test images, shared per draw) so that
    :meth:`difference` gives the spread of a difference of FIDs.

    >>> ledger = Ledger(FidCifar(classifier, n=1000), noise=torch.randn(1000, 3, 32, 32))
    >>> ledger.add("DDIM 50", samples, seconds=12.0, evals=50)
    >>> ledger.bootstrap(); ledger.difference("DDIM 50", "PixelCNN")   # Difference(value, sd), 200 draws
    >>> ledger.confirm({"DDIM beats PixelCNN": ("DDIM 50", "PixelCNN", "fid", True)})   # Holm across the claims
    """

    RESERVED = ("fid", "diversity", "s_per_image", "evals", "collapsed", "not_digits")
    MIN_DRAWS = 200          # bootstrap draws behind a verdict the book states (fewer: provisional)

    def __init__(self, fid, noise, paired: bool = False):
        """``noise``: (n, C, H, W) noise images, the FID every row is read against. ``paired=True`` when sample i of
        every row comes from the same starting noise: each bootstrap draw then resamples the same indices in every
        row, and the noise the rows share cancels in a difference."""
        from .metrics import diversity

        self.fid, self.n, self.paired = fid, fid.n, paired
        self.noise_fid = fid(noise)
        self.real_diversity = diversity(fid.test_features)
        self.rows, self.samples, self.features, self.per_image, self.draws = {}, {}, {}, {}, {}
        self.n_draws, self.multiplicity = 0, None

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
        row["not_digits"] = row["collapsed"] or not_digits(row["fid"], self.noise_fid, row["diversity"], 1.0)
        row.update({k: float(v.mean()) for k, v in per_image.items()})
        self.rows[name], self.samples[name], self.features[name] = row, samples.detach().float().clamp(-1, 1).cpu(), feats
        self.per_image[name] = per_image
        self.draws = {}                 # a difference needs every row's draws from the same test resamples
        return row

    def bootstrap(self, draws: int = MIN_DRAWS, seed: int = 0, mean_draws: int = MIN_DRAWS) -> None:
        """FIDs of every row on the same ``draws`` resamples of the test images (for :meth:`difference`), and the
        per-image measures' means on ``mean_draws`` resamples of the image indices, the same indices for every row
        (right for rows that share their inputs; for independent rows it is an ordinary bootstrap of each mean)."""
        from .metrics import fid

        names = list(self.rows)
        out = bootstrap_sets(fid, [self.features[k] for k in names], self.fid.test_features, draws, seed,
                             paired=self.paired)
        self.draws, self.n_draws = {"fid": dict(zip(names, out.T))}, draws
        for m in sorted({m for k in names for m in self.per_image[k]}):
            have = [k for k in names if m in self.per_image[k]]
            means = bootstrap_means(*[self.per_image[k][m] for k in have], draws=mean_draws, seed=seed)
            self.draws[m] = dict(zip(have, means.T))

    def add_measure(self, measure: str, values: dict, draws: dict) -> None:
        """A measure computed outside the ledger (e.g. a spectral distance), so that :meth:`difference` and
        :meth:`confirm` can use it: ``values`` ``{row: value}`` and ``draws`` ``{row: (draws,) values}``, draw i of
        every row from the same resample. Call it after the last :meth:`bootstrap`, which starts the draws anew."""
        if measure in self.RESERVED:
            raise ValueError(f"measure {measure!r} would overwrite a field of the rows; reserved: {self.RESERVED}")
        unknown = sorted(set(values) - set(self.rows))
        if unknown or set(values) != set(draws):
            raise ValueError(f"values and draws must name the same rows of the ledger; unknown {unknown}, "
                             f"values {sorted(values)}, draws {sorted(draws)}")
        d = {k: np.asarray(v, np.float64).ravel() for k, v in draws.items()}
        if len({len(v) for v in d.values()}) > 1 or min(len(v) for v in d.values()) < 2:
            raise ValueError(f"draws must hold the same number (>= 2) of draws for every row, got "
                             f"{ {k: len(v) for k, v in d.items()} }")
        for k, v in values.items():
            self.rows[k][measure] = float(v)
        self.draws[measure] = d

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
        """The rows (of ``names``, default all) that make digits (neither collapsed nor 'not digits'): only those
        are scored."""
        return [k for k in (self.rows if names is None else names) if not self.rows[k]["not_digits"]]

    def best(self, names=None) -> str:
        """The row of lowest FID among the scored rows of ``names`` (default all)."""
        pool = self.scored(names)
        if not pool:
            raise ValueError("no row given makes digits (each collapsed or is 'not digits'): there is no best")
        return min(pool, key=lambda k: self.rows[k]["fid"])

    def as_good_as(self, ref: str, names=None, margin: float | None = None, alpha: float = 0.05) -> list:
        """The scored rows of ``names`` as good as ``ref`` on FID.

        With ``margin`` (FID units, stated before measuring): a non-inferiority test, FID(row) - FID(ref) < margin at
        one-sided level α (:meth:`Difference.not_worse`). Without it, the rows not worse beyond twice the spread: no
        evidence of a difference, which is not evidence of equal quality; say so where it is used.
        """
        if margin is None:
            return [k for k in self.scored(names) if k != ref and self.verdict(k, ref) != "worse"]
        return [k for k in self.scored(names) if k != ref and self.difference(k, ref).not_worse(margin, True, alpha)]

    def equivalent(self, a: str, b: str, margin: float, measure: str = "fid", alpha: float = 0.05) -> bool:
        """Whether rows a and b are equal on ``measure`` within ±``margin``, by two one-sided tests (TOST)."""
        return self.difference(a, b, measure).equivalent(margin, alpha)

    def practical_words(self, a: str, b: str, verdict: str, measure: str, margin: float,
                        words=("higher", "lower"), per_unit: str | None = None, caveats=("", "")) -> str:
        """A confirmed verdict on a descriptive measure (higher is neither better nor worse), read against a
        practical margin stated before measuring.

        With :math:`d = m(a) - m(b)` and ``verdict`` the confirmed 'better' | 'worse' | 'tie' for a over b with
        higher counted as 'better' (e.g. from :meth:`confirm` with ``lower_is_better=False``):

        - a tie is "no practical difference" only when TOST shows :math:`|d| <` ``margin``
          (:meth:`Difference.equivalent`), else "undecided (neither different nor shown equal)";
        - a significant :math:`|d| <` ``margin`` is "different, but by less than the practical margin";
        - otherwise ``words[0]`` (a higher) or ``words[1]`` (a lower). With ``per_unit`` (a second measure, e.g. edge
          energy per unit of ink), a difference that the per-unit measure does not show in the same direction gets
          the matching ``caveats`` entry: "weaker edges, with less ink: not evidence of blur".

        A 'not judged: ...' verdict is returned as it is.
        """
        if not margin > 0:
            raise ValueError(f"margin must be > 0 (in the measure's units), got {margin}")
        if verdict not in ("better", "worse", "tie"):
            return verdict
        d = self.difference(a, b, measure)
        if verdict == "tie":
            return "no practical difference" if d.equivalent(margin) else "undecided (neither different nor shown equal)"
        if abs(d.value) < margin:
            return f"different, but by less than the practical margin ±{margin:g}"
        i = 0 if verdict == "better" else 1
        if per_unit is None or self.verdict(a, b, per_unit, lower_is_better=False) == verdict or not caveats[i]:
            return words[i]
        return f"{words[i]}, {caveats[i]}"

    def confirm(self, claims: dict, alpha: float = 0.05, method: str = "holm", extra: dict | None = None) -> dict:
        """Verdicts for a lesson's confirmatory claims, corrected together for multiplicity.

        Args:
            claims: ``{name: (a, b, measure, lower_is_better)}``, every claim the lesson states a verdict on.
            extra: ``{name: (Difference, lower_is_better)}``, claims measured outside the ledger (e.g. a
                likelihood difference with its standard error), decided in the same family.
            method: 'holm' (Holm's step-down on the two-sided bootstrap p-values at family-wise level α) or
                '3sd' (each claim at 3 spreads of its difference).
        Returns:
            ``{name: 'better' | 'worse' | 'tie'}`` for a over b, or 'not judged: ... makes no digits' when a row is
            not scored; :attr:`multiplicity` then says how they were decided.
        """
        if method not in ("holm", "3sd"):
            raise ValueError(f"method must be 'holm' or '3sd', got {method!r}")
        extra = extra or {}
        if not claims and not extra:
            raise ValueError("claims must name at least one claim")
        if set(claims) & set(extra) or not all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], Difference)
                                               for v in extra.values()):
            raise ValueError("extra must map new claim names (not those of claims) to (Difference, lower_is_better)")
        gone = {name: f"not judged: {', '.join(k for k in (a, b) if self.rows[k]['not_digits'])} makes no digits"
                for name, (a, b, m, lib) in claims.items() if self.rows[a]["not_digits"] or self.rows[b]["not_digits"]}
        diffs = {name: (self.difference(a, b, m), lib) for name, (a, b, m, lib) in claims.items() if name not in gone}
        diffs.update(extra)
        if not diffs:
            return gone
        if method == "3sd":
            out = {name: compare(d, lib, k=3.0) for name, (d, lib) in diffs.items()}
            self.multiplicity = f"each of {len(diffs)} claims at 3 sd of its difference"
            return {**out, **gone}
        reject = dict(zip(diffs, holm([d.p_value() for d, _ in diffs.values()], alpha)))
        out = {name: (compare(d, lib, k=1e-12) if reject[name] else "tie") for name, (d, lib) in diffs.items()}
        self.multiplicity = f"Holm's correction over {len(diffs)} claims, family-wise α = {alpha:g}"
        return {**out, **gone}

    def claim_rows(self, claims: dict, confirmed: dict, labels: dict | None = None, fmt=".1f",
                   measures: dict | None = None) -> list:
        """Rows ``(claim, measured, verdict)`` for :func:`claims_table`, one per claim of :meth:`confirm`.

        ``measured`` is "measure a − b = d ± sd"; the verdict is :func:`verdict_words` with the rows' ``labels``
        (``{row: short name}``, default the row names). ``fmt``: one format spec, or ``{measure: spec}``;
        ``measures``: ``{measure: the name printed}`` (default 'FID' for 'fid', else the key).
        """
        missing = [name for name in claims if name not in confirmed]
        if missing:
            raise ValueError(f"confirmed has no verdict for {missing}: pass the dict confirm() returned for claims")
        label = lambda k: (labels or {}).get(k, k)
        names = {"fid": "FID", **(measures or {})}
        rows = []
        for name, (a, b, m, _) in claims.items():
            spec = fmt.get(m, ".3g") if isinstance(fmt, dict) else fmt
            rows.append((name, f"{names.get(m, m)} {label(a)} − {label(b)} = {format(self.difference(a, b, m), spec)}",
                         verdict_words(confirmed[name], label(a), label(b))))
        return rows

    def note(self) -> str:
        """The footnote a lesson's claims table needs: n, floor and noise, the draws, and the multiplicity rule."""
        text = (f"FID at n = {self.n}; real floor {self.fid.floor:.1f}, noise {self.noise_fid:.0f}; "
                f"± = bootstrap sd of the difference over {self.n_draws} draws")
        if self.multiplicity:
            text += f"; {self.multiplicity}"
        if self.n_draws < self.MIN_DRAWS:
            text += f"; fewer than {self.MIN_DRAWS} draws: verdicts provisional"
        return text

    def table(self, extra=()) -> str:
        """The rows as aligned text: FID, diversity, evaluations, ms per image, the ``extra`` measures, collapse."""
        w = max([24, *(len(k) for k in self.rows)])
        head = f"{'configuration':<{w}} {'FID':>7} {'div':>5} {'evals':>6} {'ms/image':>9}" + "".join(
            f" {k:>10}" for k in extra)
        lines = [f"FID at n = {self.n}: real floor {self.fid.floor:.1f}, noise {self.noise_fid:.0f}", head]
        for name, r in self.rows.items():
            ms = "-" if r["s_per_image"] is None else f"{1000 * r['s_per_image']:.1f}"
            line = (f"{name:<{w}} {r['fid']:>7.1f} {r['diversity']:>5.2f} {r['evals'] or '-':>6} {ms:>9}"
                    + "".join(f" {r.get(k, float('nan')):>10.3g}" for k in extra))
            flag = (f"   COLLAPSED: {r['collapsed']}" if r["collapsed"] else
                    f"   NOT DIGITS: {r['not_digits']}" if r["not_digits"] else "")
            lines.append(line + flag)
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
