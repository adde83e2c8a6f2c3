import math

import numpy as np
import pytest
import torch

from ardiff import NoiseSchedule


def cosine_reference(T, s=0.008, max_beta=0.999):
    """Independent loop over the formula of Nichol & Dhariwal (2021), eq. 17 (diffusers' squaredcos_cap_v2)."""
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return np.array([min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)])


def test_linear_matches_ddpm_definition():
    s = NoiseSchedule.linear(1000, 1e-4, 0.02)
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    assert s.T == 1000 and s.betas.dtype == torch.float32 and s.betas.shape == (1000,)
    np.testing.assert_allclose(s.betas.numpy(), betas, rtol=1e-6)
    np.testing.assert_allclose(s.alphas.numpy(), 1 - betas, rtol=1e-6)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), np.cumprod(1 - betas), rtol=1e-5)
    # 0-indexed: alphas_cumprod[0] = 1 - beta_0, no step without noise
    assert s.alphas_cumprod[0].item() == pytest.approx(1 - 1e-4, rel=1e-7)
    # the published value at the end of the DDPM schedule: alpha_bar_T ~ 4.04e-5
    assert s.alphas_cumprod[-1].item() == pytest.approx(4.0358e-5, rel=1e-3)


def test_cosine_matches_independent_reference():
    for T in (1, 10, 1000):
        s = NoiseSchedule.cosine(T)
        np.testing.assert_allclose(s.betas.numpy(), cosine_reference(T), rtol=2e-6)
    s = NoiseSchedule.cosine(1000)
    # away from the clipped end, alpha_bar_t = f(t+1)/f(0)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    for t in (0, 10, 500, 900):
        assert s.alphas_cumprod[t].item() == pytest.approx(f((t + 1) / 1000) / f(0), rel=1e-5)
    assert s.betas.max().item() == pytest.approx(0.999)


def test_sigmoid_schedule_follows_its_alpha_bar():
    T, start, end, tau = 500, -3.0, 3.0, 0.7
    s = NoiseSchedule.sigmoid(T, start, end, tau)
    sig = lambda z: 1 / (1 + math.exp(-z))
    g = lambda u: (sig(end / tau) - sig((u * (end - start) + start) / tau)) / (sig(end / tau) - sig(start / tau))
    for t in (0, 100, 250, 400):
        assert s.alphas_cumprod[t].item() == pytest.approx(g((t + 1) / T), rel=1e-4)
    assert s.alphas_cumprod[-1] < 1e-2


@pytest.mark.parametrize("make", [lambda: NoiseSchedule.linear(), lambda: NoiseSchedule.cosine(),
                                  lambda: NoiseSchedule.sigmoid(), lambda: NoiseSchedule.linear(100, 1e-4, 0.05)])
def test_invariants(make):
    s = make()
    ab = s.alphas_cumprod
    assert torch.all(ab[1:] < ab[:-1]) and torch.all(ab > 0) and torch.all(ab < 1)
    ab64 = np.cumprod(1 - s.betas.double().numpy())  # float64 reference from the stored betas
    np.testing.assert_allclose(s.snr.numpy(), ab64 / (1 - ab64), rtol=1e-4)
    np.testing.assert_allclose(s.log_snr.numpy(), np.log(ab64 / (1 - ab64)), rtol=1e-4, atol=1e-4)
    assert torch.all(s.log_snr[1:] < s.log_snr[:-1])
    # posterior variance: 0 at t = 0 and never above beta_t
    assert s.posterior_variance[0] == 0
    assert torch.all(s.posterior_variance <= s.betas * (1 + 1e-6))
    assert s.alphas_cumprod_prev[0] == 1
    torch.testing.assert_close(s.alphas_cumprod_prev[1:], ab[:-1])
    for name in ("betas", "alphas", "alphas_cumprod", "snr", "log_snr", "posterior_variance"):
        v = getattr(s, name)
        assert v.dtype == torch.float32 and v.shape == (s.T,) and torch.isfinite(v).all(), name


def test_float64_computation_keeps_tiny_alpha_bar_accurate():
    s = NoiseSchedule.linear(1000, 1e-4, 0.02)
    exact = np.exp(np.cumsum(np.log1p(-np.linspace(1e-4, 0.02, 1000))))
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), exact, rtol=1e-6)


def test_from_betas_roundtrip():
    betas = [0.1, 0.2, 0.3]
    s = NoiseSchedule.from_betas(betas)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), [0.9, 0.72, 0.504], rtol=1e-6)
    assert s.T == 3


@pytest.mark.parametrize("call, words", [
    (lambda: NoiseSchedule.linear(0), "T must be >= 1"),
    (lambda: NoiseSchedule.linear(-5), "T must be >= 1"),
    (lambda: NoiseSchedule.cosine(0), "T must be >= 1"),
    (lambda: NoiseSchedule.linear(10, 0.0, 0.02), "beta_start must be in (0, 1)"),
    (lambda: NoiseSchedule.linear(10, 1e-4, 1.0), "beta_end must be in (0, 1)"),
    (lambda: NoiseSchedule.linear(10, 0.05, 0.02), "beta_start must be <= beta_end"),
    (lambda: NoiseSchedule.linear(10, float("nan"), 0.02), "beta_start must be finite"),
    (lambda: NoiseSchedule.linear(10, 1e-4, float("inf")), "beta_end must be finite"),
    (lambda: NoiseSchedule.cosine(10, s=-0.1), "s must be in [0, inf)"),
    (lambda: NoiseSchedule.cosine(10, max_beta=1.0), "max_beta must be in (0, 1)"),
    (lambda: NoiseSchedule.sigmoid(10, start=3, end=-3), "start must be < end"),
    (lambda: NoiseSchedule.sigmoid(10, tau=0), "tau must be in (0, inf)"),
    (lambda: NoiseSchedule.from_betas([0.1, 0.0]), "betas must each be in (0, 1)"),
    (lambda: NoiseSchedule.from_betas([0.1, 1.0]), "betas must each be in (0, 1)"),
    (lambda: NoiseSchedule.from_betas([0.1, float("nan")]), "betas must be finite"),
    (lambda: NoiseSchedule.from_betas([]), "betas must be a 1-D sequence"),
    (lambda: NoiseSchedule.from_betas([[0.1, 0.2]]), "betas must be a 1-D sequence"),
])
def test_bad_arguments_raise_value_error_naming_them(call, words):
    with pytest.raises(ValueError) as e:
        call()
    assert words in str(e.value)


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="T must be an int"):
        NoiseSchedule.linear(10.5)
    with pytest.raises(TypeError, match="beta_start must be a real number"):
        NoiseSchedule.linear(10, "small", 0.02)


def test_coefficients_are_copied_to_a_device_once():
    s = NoiseSchedule.linear(10)
    assert s.on("alphas_cumprod", "cpu") is s.alphas_cumprod            # the CPU needs no copy
    a = s.on("alphas_cumprod", "meta")
    assert a.device.type == "meta" and a.shape == (10,)
    assert s.on("alphas_cumprod", "meta") is a                          # cached: no host copy per step
    assert s.on("betas", "meta") is not a
