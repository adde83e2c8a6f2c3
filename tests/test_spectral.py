import numpy as np
import pytest
import torch

from ardiff import NoiseSchedule, q_sample
from ardiff.spectral import (SpectralDistance, band_split, cutoff_frequency, fit_power_law, noisy_spectrum, power_spectrum, rapsd,
                             settling_steps, snr_per_frequency, trajectory_errors, trajectory_spectra)


def power_law_field(n, beta, batch=8, seed=0):
    """Gaussian random fields with power spectrum proportional to f^(-beta)."""
    g = torch.Generator().manual_seed(seed)
    white = torch.fft.fft2(torch.randn(batch, n, n, generator=g, dtype=torch.float64))
    f = torch.sqrt(torch.fft.fftfreq(n, dtype=torch.float64)[:, None] ** 2 + torch.fft.fftfreq(n, dtype=torch.float64)[None] ** 2)
    amp = torch.where(f > 0, f.clamp_min(1e-12) ** (-beta / 2), torch.zeros_like(f))
    return torch.fft.ifft2(white * amp).real


def test_rapsd_of_white_noise_is_flat_at_one():
    x = torch.randn(1024, 1, 32, 32, generator=torch.Generator().manual_seed(0))  # ~8k samples in the lowest bin
    f, p = rapsd(x)
    assert f.ndim == p.ndim == 1 and torch.all(f[1:] > f[:-1]) and f[0] > 0 and f[-1] <= 0.5 + 1e-9
    assert torch.all((p - 1).abs() < 0.05), p


def test_parseval():
    x = torch.randn(3, 2, 16, 24, generator=torch.Generator().manual_seed(1))
    P = power_spectrum(x)
    assert P.shape == x.shape
    torch.testing.assert_close(P.mean(dim=(-2, -1)), (x.double() ** 2).mean(dim=(-2, -1)))


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_power_law_exponent_is_recovered(beta):
    f, p = rapsd(power_law_field(128, beta))
    slope, _ = fit_power_law(f, p)
    assert slope == pytest.approx(-beta, abs=0.1)


def test_input_shapes_agree():
    x = torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(2))
    f1, p1 = rapsd(x)
    f2, p2 = rapsd(x[:, None])
    f3, p3 = rapsd(x[0])
    torch.testing.assert_close(p1, p2)
    torch.testing.assert_close(f1, f3)
    assert p3.shape == p1.shape


def test_noisy_spectrum_model_matches_measurement():
    s = NoiseSchedule.linear(1000)
    x0 = power_law_field(64, 2.0, batch=32).float()[:, None]
    x0 = x0 / x0.std()
    f, S = rapsd(x0)
    for t in (100, 300, 600):
        _, measured = rapsd(q_sample(x0, t, s, generator=torch.Generator().manual_seed(t)))
        model = noisy_spectrum(S, s.alphas_cumprod[t].double())
        assert ((measured - model).abs() / model).max() < 0.15


def test_cutoff_frequency_does_not_increase_with_t():
    s = NoiseSchedule.cosine(1000)
    f, S = rapsd(power_law_field(64, 2.0))
    S = S / S.mean()
    ts = torch.arange(0, 1000, 25)
    fmax = cutoff_frequency(f, S, s, ts)
    assert fmax.shape == ts.shape and torch.all(fmax[1:] <= fmax[:-1]) and fmax[0] > fmax[-1]
    assert cutoff_frequency(f, S, s, 999).item() == 0.0
    assert snr_per_frequency(S, torch.tensor([0.5, 0.1])).shape == (2, len(f))


def test_settling_steps():
    power = torch.tensor([[10.0, 0.0], [1.05, 0.5], [1.0, 0.95], [1.0, 1.0]])
    assert settling_steps(power, tol=0.1).tolist() == [1, 2]


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"images must be \(H, W\), \(B, H, W\) or \(B, C, H, W\)"):
        rapsd(torch.zeros(1, 1, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 4x4"):
        rapsd(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="finite"):
        rapsd(torch.full((8, 8), float("nan")))
    with pytest.raises(ValueError, match="positive for a log-log fit"):
        fit_power_law([0.0, 0.1, 0.2], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="same length >= 3"):
        fit_power_law([0.1, 0.2], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"t must be integer steps in \[0, T-1\]"):
        cutoff_frequency([0.1, 0.2], [1.0, 1.0], NoiseSchedule.linear(10), 10)
    with pytest.raises(ValueError, match="tau must be > 0"):
        cutoff_frequency([0.1, 0.2], [1.0, 1.0], NoiseSchedule.linear(10), 1, tau=0)
    with pytest.raises(ValueError, match=r"tol must be in \(0, 1\)"):
        settling_steps(torch.ones(3, 2), tol=1.5)


def test_band_split_adds_up_and_separates_frequencies():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 16, 20, generator=g)
    bands = band_split(x, (0.1, 0.25))
    assert bands.shape == (3, 3, 1, 16, 20)
    torch.testing.assert_close(bands.sum(0), x.double())
    # a cosine of 0.15 cycles/pixel along x (3 cycles over 20 pixels) lies wholly in the middle band
    cos = torch.cos(2 * torch.pi * 0.15 * torch.arange(20.0)).expand(1, 1, 16, 20)
    parts = band_split(cos, (0.1, 0.25))
    energy = (parts ** 2).sum(dim=(1, 2, 3, 4))
    assert energy[1] > 0.99 * energy.sum() and energy[0] < 1e-9 * energy[1] and energy[2] < 1e-9 * energy[1]
    with pytest.raises(ValueError, match="edges"):
        band_split(x, (0.3, 0.1))


def test_trajectory_errors_compare_content_not_only_power():
    g = torch.Generator().manual_seed(1)
    final = torch.randn(4, 1, 16, 16, generator=g)
    low, mid, high = band_split(final, (2.5 / 16, 0.3))  # the first edge between two RAPSD bins
    flipped = low - mid - high         # the right coarse content, fine content of the same power but opposite sign
    freqs, errors, settled = trajectory_errors([torch.zeros_like(final), flipped, final], tol=0.1)
    assert errors.shape == (3, len(freqs)) and torch.all(errors[-1] == 0)
    torch.testing.assert_close(errors[0], torch.ones_like(errors[0]))      # nothing there yet: error 1 everywhere
    assert torch.all(errors[1][freqs < 0.14] < 1e-20) and torch.all(errors[1][freqs > 0.17] > 3.9)
    assert settled[freqs < 0.14].eq(1).all() and settled[freqs > 0.17].eq(2).all()
    # the power of the middle state is the final power at every band, so settling_steps sees no change there
    _, power = trajectory_spectra([flipped, final])
    torch.testing.assert_close(power[0], power[1])


def test_spectral_distance_is_zero_for_the_same_set_and_grows_with_blur_and_noise():
    x = power_law_field(32, 2.0, batch=64, seed=3).float()[:, None]           # (64, 1, 32, 32)
    x = x / x.std()
    other = power_law_field(32, 2.0, batch=64, seed=4).float()[:, None]
    other = other / other.std()
    sd = SpectralDistance(x)
    assert sd(x) == 0.0
    same_law = sd(other)                                                     # another draw of the same spectrum
    blurred = torch.nn.functional.avg_pool2d(other, 3, stride=1, padding=1)   # high frequencies damped
    noisy = other + torch.randn(other.shape, generator=torch.Generator().manual_seed(5))
    assert same_law < 0.1 < sd(blurred) and same_law < 0.1 < sd(noisy), (same_law, sd(blurred), sd(noisy))
    # a uniform gain of 10 in power is one decade at every frequency
    assert abs(sd(other * 10 ** 0.5) - 1.0) < same_law + 1e-6


def test_spectral_distance_bootstrap_and_errors():
    x = power_law_field(16, 2.0, batch=40, seed=6).float()[:, None]
    sd = SpectralDistance(x)
    a, b = x[:20], torch.randn(20, 1, 16, 16, generator=torch.Generator().manual_seed(7))
    draws = sd.bootstrap(a, b, draws=30)
    assert draws.shape == (30, 2) and np.isfinite(draws).all() and draws[:, 0].std() > 0
    assert (draws[:, 1] > draws[:, 0]).all()                                 # noise is far from a power law
    with pytest.raises(ValueError, match="16x16"):
        sd(torch.zeros(4, 1, 8, 8))
    with pytest.raises(ValueError, match="draws"):
        sd.bootstrap(a, draws=1)


def test_spectral_distance_floor_of_real_cats_is_below_noise(shared_data):
    from ardiff.data import load_cifar10_cats
    sd = SpectralDistance(load_cifar10_cats("test", limit=500))
    floor = sd(load_cifar10_cats("train", limit=500))
    noise = sd(torch.randn(500, 3, 32, 32, generator=torch.Generator().manual_seed(0)).clamp(-1, 1))
    assert floor < 0.05 < 0.5 < noise, (floor, noise)


def test_rapsd_matches_a_plain_bincount_and_spectral_distance_uses_it():
    x = torch.randn(5, 3, 12, 16, generator=torch.Generator().manual_seed(8)).double()
    # the definition, written out: power averaged over images and channels, then over each radial bin
    p = (torch.fft.fft2(x).abs() ** 2 / (12 * 16)).mean(dim=(0, 1))
    fy, fx = torch.fft.fftfreq(12, dtype=torch.float64), torch.fft.fftfreq(16, dtype=torch.float64)
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).flatten()
    bins = torch.round(r * 12).long()
    keep = (bins >= 1) & (bins <= 6)
    count = torch.bincount(bins[keep], minlength=7)[1:].double()
    power = torch.bincount(bins[keep], weights=p.flatten()[keep], minlength=7)[1:] / count
    freqs = torch.bincount(bins[keep], weights=r[keep], minlength=7)[1:] / count
    f, q = rapsd(x)
    torch.testing.assert_close(f, freqs)
    torch.testing.assert_close(q, power)
    torch.testing.assert_close(SpectralDistance(x)._per_image(x).mean(0), power)


def test_spectral_distance_of_constant_images_is_large_and_finite():
    x = power_law_field(16, 2.0, batch=20, seed=9).float()[:, None]
    d = SpectralDistance(x)(torch.zeros(20, 1, 16, 16))                        # a sampler collapsed to black
    assert np.isfinite(d) and d > 5


def test_standardise_gives_zero_mean_unit_variance_per_image():
    from ardiff.spectral import standardise

    x = 3 * torch.randn(4, 2, 16, 16, generator=torch.Generator().manual_seed(0)) + 5
    z = standardise(x)
    assert z.shape == x.shape
    assert torch.allclose(z.mean(dim=(2, 3)), torch.zeros(4, 2), atol=1e-5)
    assert torch.allclose(z.std(dim=(2, 3)), torch.ones(4, 2), atol=1e-5)
    with pytest.raises(ValueError, match="images"):
        standardise(x[0])
