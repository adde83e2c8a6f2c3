"""Bootstrap resampling for the spread of a *difference* of measures: paired item means and set-level measures.

Both functions resample so that the columns they return can be subtracted: draw i of every column used the same
resample of what the columns share (the items, or the reference set). :mod:`ardiff.claims` turns such paired draws
into verdicts; :mod:`ardiff.metrics` (FID) and :mod:`ardiff.spectral` bootstrap their set-level measures here.
"""
from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_means", "bootstrap_sets"]


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
