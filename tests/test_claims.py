"""Ledger verdicts: margins from the spread of differences, and collapse."""
import numpy as np
import pytest

from ardiff.claims import Difference, Ledger, bootstrap_means, bootstrap_sets, collapse, compare, difference


def test_paired_draws_cancel_shared_noise():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 10, 500)                  # noise both measures share (e.g. the test resample)
    a, b = 50 + shared + rng.normal(0, 0.5, 500), 52 + shared + rng.normal(0, 0.5, 500)
    d = difference(50.0, 52.0, a, b)
    assert d.value == -2.0 and 0.6 < d.sd < 0.8     # sqrt(0.5^2 + 0.5^2) ~ 0.71, not ~14
    assert compare(d, lower_is_better=True) == "better" and compare(d, lower_is_better=False) == "worse"
    unpaired = difference(50.0, 52.0, a, rng.permutation(b))
    assert unpaired.sd > 10 and compare(unpaired, lower_is_better=True) == "tie"


def test_sign_and_format():
    assert Difference(3.0, 1.0).sign() == 1 and Difference(-3.0, 1.0).sign() == -1 and Difference(1.9, 1.0).sign() == 0
    assert Difference(1.9, 1.0).sign(k=1.5) == 1
    assert f"{Difference(-52.34, 10.41):.1f}" == "-52.3 ± 10.4"
    with pytest.raises(ValueError, match="k must be"):
        Difference(1.0, 1.0).sign(k=0)
    with pytest.raises(ValueError, match="paired"):
        difference(1.0, 2.0, [1.0, 2.0], [1.0])


def test_bootstrap_means_pair_the_items():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 400)
    out = bootstrap_means(base, base + 0.1, draws=300, seed=2)
    assert out.shape == (300, 2)
    np.testing.assert_allclose(out[:, 1] - out[:, 0], 0.1)           # paired: the difference never varies
    assert abs(out[:, 0].std() - 1 / np.sqrt(400)) < 0.01
    with pytest.raises(ValueError, match="same length"):
        bootstrap_means(base, base[:10])


def test_bootstrap_sets_share_the_reference_resample():
    rng = np.random.default_rng(3)
    ref, a = rng.normal(0, 1, (300, 1)), rng.normal(0, 1, (300, 1))
    gap = lambda s, r: float(s.mean() - r.mean())                   # a set-level measure of rows
    out = bootstrap_sets(gap, [a, a + 0.5], ref, draws=200, seed=1, paired=True)
    assert out.shape == (200, 2)
    np.testing.assert_allclose(out[:, 1] - out[:, 0], 0.5)           # paired rows: the difference never varies
    unpaired = bootstrap_sets(gap, [a, a + 0.5], ref, draws=200, seed=1)
    spread = (unpaired[:, 1] - unpaired[:, 0]).std()
    assert 0.06 < spread < 0.1                                       # sqrt(2 / 300) ~ 0.082; the reference cancels
    with pytest.raises(ValueError, match="draws >= 2"):
        bootstrap_sets(gap, [a], ref, draws=1)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_sets(gap, [a, a[:10]], ref, paired=True)


def test_collapse_names_the_reason():
    assert collapse(120.0, 1900.0, 9.0, 10.0) is None
    assert "noise" in collapse(2000.0, 1900.0, 9.0, 10.0)
    assert "diversity" in collapse(300.0, 1900.0, 0.5, 10.0)
    with pytest.raises(ValueError, match="min_share"):
        collapse(1.0, 2.0, 1.0, 1.0, min_share=1.5)


class _ToyFid:
    """An Fid stand-in on 2-d 'features' (the mean pixel of each half of the image)."""

    def __init__(self, test):
        from ardiff.metrics import fid
        self.n, self._fid = len(test), fid
        self.test_features = self.features(test)
        self.floor = 0.0

    def features(self, x):
        return x.flatten(1).reshape(len(x), 2, -1).mean(2).double().numpy()

    def __call__(self, x):
        return self._fid(self.features(x), self.test_features)


def test_ledger_rows_differences_and_collapse():
    import torch
    g = torch.Generator().manual_seed(0)
    test = torch.randn(400, 1, 4, 4, generator=g)
    ledger = Ledger(_ToyFid(test), noise=3 * torch.randn(400, 1, 4, 4, generator=g))
    good = ledger.add("good", torch.randn(400, 1, 4, 4, generator=g), seconds=4.0, evals=10)
    bad = ledger.add("shifted", torch.randn(400, 1, 4, 4, generator=g) + 0.5, seconds=8.0, evals=20)
    same = ledger.add("one image", torch.randn(1, 1, 4, 4, generator=g).expand(400, 1, 4, 4))
    assert good["s_per_image"] == 0.01 and bad["evals"] == 20 and same["s_per_image"] is None
    assert good["collapsed"] is None and bad["collapsed"] is None and "diversity" in same["collapsed"]
    with pytest.raises(ValueError, match="bootstrap"):
        ledger.difference("good", "shifted")
    ledger.bootstrap(draws=40)
    d = ledger.difference("good", "shifted")
    assert compare(d, lower_is_better=True) == "better" and d.sd > 0
    assert "COLLAPSED" in ledger.table().splitlines()[-1] and "COLLAPSED" not in ledger.table().splitlines()[2]
    with pytest.raises(ValueError, match="already"):
        ledger.add("good", test)
    ledger.add("late", torch.randn(400, 1, 4, 4, generator=g))        # draws made before it would not be paired
    with pytest.raises(ValueError, match="bootstrap"):
        ledger.difference("good", "late")
