"""Sanity gates: family verdicts are computed only on models that pass them."""
import numpy as np
import pytest

from ardiff.gates import Gate, bpd_within, fid_within_floor, gates_table, judged, makes_digits, no_worse


def test_fid_gate():
    assert fid_within_floor("DDPM", 17.7, 12.8).passed                     # 1.38x the floor
    g = fid_within_floor("DDPM", 27.4, 12.8)
    assert not g.passed and "2.14 x floor" in g.measured and "FAILED" in str(g)
    with pytest.raises(ValueError, match="floor"):
        fid_within_floor("DDPM", 10.0, 0.0)
    with pytest.raises(ValueError, match="fid must be a finite"):
        fid_within_floor("DDPM", float("nan"), 10.0)


def test_no_worse_gate_on_paired_errors():
    rng = np.random.default_rng(0)
    ref = rng.gamma(2.0, 0.05, 500)                                         # the unconditional model's errors
    assert no_worse("sees more", ref * 0.9 + rng.normal(0, 0.001, 500), ref).passed
    assert no_worse("same", ref + rng.normal(0, 0.001, 500), ref).passed    # equal, measured tightly: passes
    bad = no_worse("block model", ref * 1.18, ref)                          # issue 28's median ratio
    assert not bad.passed and "ratio 1.18" in bad.measured
    noisy = no_worse("noisy", ref[:20] + rng.normal(0, 0.05, 20), ref[:20])  # no evidence either way: fails
    assert not noisy.passed
    assert no_worse("wide margin", ref * 1.18, ref, margin=0.25).passed
    with pytest.raises(ValueError, match="paired"):
        no_worse("x", ref, ref[:10])
    with pytest.raises(ValueError, match="margin"):
        no_worse("x", ref, ref, margin=0)


def test_bpd_gate_and_judged():
    ok, bad = bpd_within("PixelCNN", 1.098, 1.0, 0.2), bpd_within("PixelCNN", 1.5, 1.0, 0.2)
    assert ok.passed and not bad.passed
    calls = []
    assert judged(lambda: calls.append(1) or "supported", ok) == "supported" and calls == [1]
    assert judged(lambda: calls.append(2) or "refuted", ok, bad) == "not judged: PixelCNN failed" and calls == [1]
    with pytest.raises(ValueError, match="Gate"):
        judged(lambda: "x")
    table = gates_table([ok, bad]).splitlines()
    assert table[0] == "| gate | rule | measured | result |" and table[-1].endswith("| failed |")
    assert isinstance(ok, Gate)


def test_makes_digits_gate():
    ok = makes_digits("PixelCNN prior", fid=383.0, noise_fid=1968.0, diversity=0.73)
    assert ok.passed and "FID 383.0" in ok.measured and "984" in ok.rule
    far = makes_digits("far", fid=1200.0, noise_fid=1968.0, diversity=0.9)
    same = makes_digits("same", fid=100.0, noise_fid=1968.0, diversity=0.2)
    assert not far.passed and "half that of noise" in far.measured
    assert not same.passed and "diversity" in same.measured
    assert judged(lambda: "ok", ok, far) == "not judged: far failed"
    with pytest.raises(ValueError, match="fid"):
        makes_digits("x", fid=float("nan"), noise_fid=1.0, diversity=1.0)
