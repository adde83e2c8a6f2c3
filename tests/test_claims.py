"""Ledger verdicts: margins from the spread of differences, and collapse."""
import numpy as np
import pytest

from ardiff.claims import (Difference, Ledger, bootstrap_means, bootstrap_sets, collapse, compare, difference, holm,
                           not_digits)


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


def test_ledger_best_verdict_and_as_good_skip_collapsed_rows():
    import torch
    g = torch.Generator().manual_seed(1)
    test = torch.randn(400, 1, 4, 4, generator=g)
    ledger = Ledger(_ToyFid(test), noise=10 * torch.randn(400, 1, 4, 4, generator=g))
    ledger.add("ref", torch.randn(400, 1, 4, 4, generator=g))
    ledger.add("twin", torch.randn(400, 1, 4, 4, generator=g))
    ledger.add("shifted", torch.randn(400, 1, 4, 4, generator=g) + 0.7)
    ledger.add("one image", torch.zeros(400, 1, 4, 4))                      # collapsed: zero diversity
    ledger.bootstrap(draws=40)
    assert ledger.verdict("shifted", "ref") == "worse" and ledger.verdict("ref", "shifted") == "better"
    assert ledger.verdict("twin", "ref") == "tie"
    assert ledger.scored() == ["ref", "twin", "shifted"]
    assert ledger.best() in ("ref", "twin") and ledger.best(["shifted", "one image"]) == "shifted"
    assert ledger.as_good_as("ref") == ["twin"]
    with pytest.raises(ValueError, match="no row given makes digits"):
        ledger.best(["one image"])


def test_claims_table_is_markdown_and_escapes_pipes():
    from ardiff.claims import claims_table

    t = claims_table([("fast", "a | b", "supported")], note="n = 10")
    lines = t.splitlines()
    assert lines[0] == "| claim | measured here | verdict |" and lines[2] == "| fast | a \\| b | supported |"
    assert lines[-1] == "*n = 10*"
    with pytest.raises(ValueError, match="3 cells"):
        claims_table([("only two", "x")])
    five = claims_table([("speed", "slow", "fast", "4x", "supported")], header=("aspect", "AR", "diffusion", "measured", "verdict"))
    assert five.splitlines()[1] == "|---|---|---|---|---|" and five.splitlines()[2].count("|") == 6


def test_ledger_per_image_measures_and_paired_draws():
    import torch
    g = torch.Generator().manual_seed(2)
    test = torch.randn(300, 1, 4, 4, generator=g)
    start = torch.randn(300, 1, 4, 4, generator=g)                       # the shared starting noise of both rows
    noise = 10 * torch.randn(300, 1, 4, 4, generator=g)
    sharp = lambda x: x.abs().flatten(1).mean(1)
    near = start + 0.05 * torch.randn(300, 1, 4, 4, generator=g)        # almost the same images as row "a"
    ledgers = {}
    for paired in (False, True):
        ledger = Ledger(_ToyFid(test), noise=noise, paired=paired)
        ledger.add("a", start, per_image={"sharp": sharp(start)})
        ledger.add("b", 1.5 * start, per_image={"sharp": sharp(1.5 * start)})
        ledger.add("near", near, per_image={"sharp": sharp(near)})
        ledger.bootstrap(draws=40)
        ledgers[paired] = ledger
    ledger = ledgers[True]
    assert ledger.rows["a"]["sharp"] == pytest.approx(sharp(start).mean().item())
    d = ledger.difference("b", "a", measure="sharp")                   # = 0.5 * mean |x|, paired: sd = 0.5 sd/sqrt(n)
    assert d.value == pytest.approx(0.5 * sharp(start).mean().item())
    assert d.sd == pytest.approx(0.5 * sharp(start).std().item() / 300 ** 0.5, rel=0.3)
    assert ledger.verdict("b", "a", "sharp", lower_is_better=False) == "better"
    # almost the same images: paired resamples keep the noise the rows share out of the spread of the difference
    assert ledgers[True].difference("near", "a").sd < ledgers[False].difference("near", "a").sd / 3
    with pytest.raises(ValueError, match=r"per_image\['sharp'\] has 2 values"):
        ledger.add("c", start, per_image={"sharp": [1.0, 2.0]})
    with pytest.raises(ValueError, match="overwrite"):
        ledger.add("d", start, per_image={"fid": sharp(start)})
    with pytest.raises(ValueError, match="'sharp'"):
        Ledger(_ToyFid(test), noise=start).difference("a", "b", measure="sharp")


def test_equivalence_needs_a_margin_and_a_tight_spread():
    """TOST: a tie with a wide spread is not equivalence; a small difference with a tight spread is."""
    assert Difference(0.5, 1.0).sign() == 0 and not Difference(0.5, 1.0).equivalent(margin=2.0)   # CI reaches 2.1
    assert Difference(0.5, 0.5).equivalent(margin=2.0)                                             # 0.5 + 1.645*0.5 < 2
    assert not Difference(1.9, 0.01).equivalent(margin=1.5)                                        # outside the margin
    assert Difference(-1.0, 0.3).not_worse(0.5, lower_is_better=True)                              # better is not worse
    assert not Difference(0.4, 0.3).not_worse(0.5, lower_is_better=True)                           # 0.4 + 0.49 > 0.5
    assert Difference(0.4, 0.3).not_worse(0.5, lower_is_better=False)                              # higher is better
    assert not Difference(-0.4, 0.3).not_worse(0.5, lower_is_better=False)                         # -0.89 < -0.5
    for bad in (0, -1.0, float("nan"), None):
        with pytest.raises(ValueError, match="margin"):
            Difference(0.0, 1.0).equivalent(bad)
    with pytest.raises(ValueError, match="alpha"):
        Difference(0.0, 1.0).equivalent(1.0, alpha=0.7)


def test_equivalence_rejects_at_its_nominal_rate_on_the_margin():
    """At a true difference equal to the margin, TOST calls equivalence about alpha of the time, no more."""
    rng = np.random.default_rng(0)
    hits = np.mean([Difference(1.0 + rng.normal(0, 0.4), 0.4).equivalent(1.0, alpha=0.05) for _ in range(4000)])
    assert 0.03 < hits < 0.07


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03, 0.2], alpha=0.05) == [True, False, False, False]   # 0.03 > 0.05/3
    assert holm([0.001, 0.02, 0.012], alpha=0.05) == [True, True, True]               # 0.012 <= .025, 0.02 <= .05
    assert holm([0.04], alpha=0.05) == [True] and holm([], 0.05) == []
    assert Difference(2.0, 1.0).p_value() == pytest.approx(0.0455, abs=1e-4)
    assert Difference(1.0, 0.0).p_value() == 0.0 and Difference(0.0, 0.0).p_value() == 1.0
    with pytest.raises(ValueError, match="p_values"):
        holm([1.5])


def test_not_digits_is_half_the_noise_or_half_the_diversity():
    assert not_digits(900.0, 1900.0, 9.0, 10.0) is None
    assert "half that of noise" in not_digits(1942.0 / 2 + 1, 1942.0, 9.0, 10.0)
    assert "half of real" in not_digits(100.0, 1900.0, 4.0, 10.0)


def test_ledger_confirms_claims_together_and_says_how():
    import torch
    g = torch.Generator().manual_seed(2)
    test = torch.randn(400, 1, 4, 4, generator=g)
    ledger = Ledger(_ToyFid(test), noise=10 * torch.randn(400, 1, 4, 4, generator=g))
    for name, shift in (("ref", 0.0), ("twin", 0.0), ("shifted", 0.7), ("far", 2.5)):
        ledger.add(name, torch.randn(400, 1, 4, 4, generator=g) + shift)
    assert ledger.rows["far"]["not_digits"] and not ledger.rows["far"]["collapsed"]
    assert ledger.scored() == ["ref", "twin", "shifted"] and "NOT DIGITS" in ledger.table()
    ledger.bootstrap(draws=40)
    assert ledger.n_draws == 40 and "provisional" in ledger.note()
    claims = {"twin vs ref": ("twin", "ref", "fid", True), "shifted vs ref": ("shifted", "ref", "fid", True),
              "far vs ref": ("far", "ref", "fid", True)}
    out = ledger.confirm(claims)
    assert out["shifted vs ref"] == "worse" and out["twin vs ref"] == "tie"
    assert out["far vs ref"].startswith("not judged: far makes no digits")
    assert "Holm" in ledger.multiplicity and "over 2 claims" in ledger.multiplicity and "Holm" in ledger.note()
    assert ledger.confirm(claims, method="3sd")["shifted vs ref"] == "worse" and "3 sd" in ledger.note()
    with pytest.raises(ValueError, match="method"):
        ledger.confirm(claims, method="bonferroni")
    ledger.bootstrap()
    assert ledger.n_draws == Ledger.MIN_DRAWS == 200 and "provisional" not in ledger.note()
    assert ledger.as_good_as("ref", margin=0.5) == ["twin"] and ledger.equivalent("twin", "ref", margin=0.5)
    assert not ledger.equivalent("shifted", "ref", margin=0.05)


def test_claim_rows_put_the_verdicts_in_words():
    import torch
    from ardiff.claims import verdict_words
    assert verdict_words("better", "DDIM", "ancestral") == "DDIM better"
    assert verdict_words("worse", "DDIM", "ancestral") == "ancestral better"
    assert verdict_words("tie", "a", "b") == "no difference shown"
    assert verdict_words("not judged: x makes no digits", "a", "b") == "not judged: x makes no digits"
    assert verdict_words("worse", "a", "b", worse="{a} is blurrier") == "a is blurrier"
    g = torch.Generator().manual_seed(3)
    test = torch.randn(300, 1, 4, 4, generator=g)
    ledger = Ledger(_ToyFid(test), noise=10 * torch.randn(300, 1, 4, 4, generator=g))
    for name, shift in (("ref", 0.0), ("shifted", 0.7), ("twin", 0.0)):
        ledger.add(name, torch.randn(300, 1, 4, 4, generator=g) + shift)
    ledger.bootstrap(draws=60)
    claims = {"shifted vs ref": ("shifted", "ref", "fid", True), "twin vs ref": ("twin", "ref", "fid", True)}
    rows = ledger.claim_rows(claims, ledger.confirm(claims), labels={"shifted": "S"})
    assert rows[0][0] == "shifted vs ref" and rows[0][1].startswith("FID S − ref = ") and " ± " in rows[0][1]
    assert rows[0][2] == "ref better" and rows[1][2] == "no difference shown"
    with pytest.raises(ValueError, match="confirmed has no verdict"):
        ledger.claim_rows(claims, {"twin vs ref": "tie"})
    named = ledger.claim_rows(claims, ledger.confirm(claims), fmt={"fid": ".2f"}, measures={"fid": "Fréchet distance"})
    d = ledger.difference("shifted", "ref")
    assert named[0][1] == f"Fréchet distance shifted − ref = {d.value:.2f} ± {d.sd:.2f}"


def test_an_outside_measure_and_an_outside_claim_join_the_ledger():
    """add_measure: a spectral-like measure with its own draws; confirm(extra=): a likelihood difference decided in
    the same Holm family (one more claim makes the correction stricter)."""
    import torch
    g = torch.Generator().manual_seed(4)
    test = torch.randn(300, 1, 4, 4, generator=g)
    ledger = Ledger(_ToyFid(test), noise=10 * torch.randn(300, 1, 4, 4, generator=g))
    for name, shift in (("ref", 0.0), ("shifted", 0.7)):
        ledger.add(name, torch.randn(300, 1, 4, 4, generator=g) + shift)
    ledger.bootstrap(draws=60)
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.01, 60)
    ledger.add_measure("spec", {"ref": 0.10, "shifted": 0.30}, {"ref": 0.10 + base, "shifted": 0.30 + base + rng.normal(0, 0.01, 60)})
    d = ledger.difference("shifted", "ref", "spec")
    assert d.value == pytest.approx(0.2) and 0.005 < d.sd < 0.02 and ledger.rows["shifted"]["spec"] == 0.30
    claims = {"spec": ("shifted", "ref", "spec", True)}
    lik = Difference(-2.17, 1.0)                        # two-sided p = 0.030: passes Holm beside the spec claim alone
    out = ledger.confirm(claims, extra={"lik": (lik, True)})
    assert out == {"spec": "worse", "lik": "better"} and "over 2 claims" in ledger.multiplicity
    # a third claim (p = 0.040) makes the second step 0.05 / 2 = 0.025: now neither passes
    out = ledger.confirm(claims, extra={"lik": (lik, True), "other": (Difference(2.054, 1.0), True)})
    assert out["lik"] == "tie" and out["other"] == "tie" and "over 3 claims" in ledger.multiplicity
    assert ledger.confirm({}, extra={"lik": (lik, True)}) == {"lik": "better"}
    with pytest.raises(ValueError, match="extra must map"):
        ledger.confirm(claims, extra={"spec": (lik, True)})
    with pytest.raises(ValueError, match="extra must map"):
        ledger.confirm(claims, extra={"lik": (0.5, True)})
    with pytest.raises(ValueError, match="same rows"):
        ledger.add_measure("spec2", {"nope": 1.0}, {"nope": base})
    with pytest.raises(ValueError, match="same number"):
        ledger.add_measure("spec2", {"ref": 1.0, "shifted": 2.0}, {"ref": base, "shifted": base[:10]})
    with pytest.raises(ValueError, match="reserved"):
        ledger.add_measure("fid", {"ref": 1.0}, {"ref": base})


def test_one_claim_on_two_measures_is_mixed_when_they_disagree():
    from ardiff.claims import measures_verdict
    both = measures_verdict({"FID": "better", "spectral distance": "better"}, "diffusion", "the PixelCNN")
    assert both == ("supported", "supported: diffusion is better on every measure (FID favours diffusion, "
                                 "spectral distance favours diffusion)")
    word, said = measures_verdict({"FID": "better", "spectral distance": "worse"}, "diffusion", "the PixelCNN")
    assert word == "mixed" and "FID favours diffusion, spectral distance favours the PixelCNN" in said
    assert measures_verdict({"FID": "better", "spectral distance": "tie"}, "A", "B")[0] == "mixed"
    assert measures_verdict({"FID": "worse", "spectral distance": "worse"}, "A", "B")[0] == "contradicted"
    assert measures_verdict({"FID": "tie", "spectral distance": "tie"}, "A", "B") == \
        ("not supported", "not supported: neither FID nor spectral distance finds a difference")
    assert measures_verdict({"FID": "not judged: A makes no digits", "x": "better"}, "A", "B") == \
        ("not judged", "not judged: A makes no digits")
    with pytest.raises(ValueError, match="verdicts must be"):
        measures_verdict({"FID": "slightly better"}, "A", "B")
    with pytest.raises(ValueError, match="at least one measure"):
        measures_verdict({}, "A", "B")


def test_practical_words_read_a_descriptive_measure_against_its_margin():
    """Edge energy: a significant difference inside the margin is not practical; a tie is equal only by TOST; a
    difference the per-ink measure does not share is flagged (fainter digits, not blur)."""
    import torch
    g = torch.Generator().manual_seed(3)
    test, imgs = torch.randn(400, 1, 4, 4, generator=g), torch.randn(400, 1, 4, 4, generator=g)
    base = 1 + 0.1 * torch.randn(400, generator=g)
    ledger = Ledger(_ToyFid(test), noise=10 * torch.randn(400, 1, 4, 4, generator=g), paired=True)
    rows = {"ref": (base, base), "weak, same per ink": (base - 0.2, base - 0.2), "weak, less ink": (base - 0.2, base),
            "slightly stronger": (base + 0.02, base + 0.02), "noisy twin": (base + torch.randn(400, generator=g), base),
            "close twin": (base + 0.001 * torch.randn(400, generator=g), base)}
    for name, (sharp, per_ink) in rows.items():
        ledger.add(name, imgs, per_image={"sharp": sharp, "edge_ink": per_ink})
    ledger.bootstrap(draws=60)
    words = dict(words=("stronger edges", "weaker edges"), per_unit="edge_ink",
                 caveats=("with more ink", "with less ink: not evidence of blur"))
    say = lambda a: ledger.practical_words(a, "ref", ledger.verdict(a, "ref", "sharp", lower_is_better=False), "sharp",
                                           0.05, **words)
    assert say("weak, same per ink") == "weaker edges"
    assert say("weak, less ink") == "weaker edges, with less ink: not evidence of blur"
    assert say("slightly stronger") == "different, but by less than the practical margin ±0.05"
    assert say("close twin") == "no practical difference"
    assert say("noisy twin").startswith("undecided")                      # sd of the difference ~0.05: no TOST within 0.05
    assert ledger.practical_words("weak, less ink", "ref", "not judged: x makes no digits", "sharp", 0.05) == \
        "not judged: x makes no digits"
    with pytest.raises(ValueError, match="margin"):
        ledger.practical_words("ref", "close twin", "tie", "sharp", 0.0)


def test_mean_difference_pairs_items():
    from ardiff.claims import mean_difference

    rng = np.random.default_rng(0)
    shared = rng.normal(0, 1.0, 400)                                   # what both models find hard, digit by digit
    a, b = shared + 0.1 + rng.normal(0, 0.05, 400), shared + rng.normal(0, 0.05, 400)
    d = mean_difference(a, b)
    assert d.value == pytest.approx(0.1, abs=0.01) and d.sd == pytest.approx(0.0707 / 20, rel=0.15)
    assert mean_difference(a).sd > 10 * d.sd                           # unpaired, the shared spread stays in
    with pytest.raises(ValueError, match="one value per item"):
        mean_difference(a, b[:10])
    with pytest.raises(ValueError, match=">= 2"):
        mean_difference([1.0])
