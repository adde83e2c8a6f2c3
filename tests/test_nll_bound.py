"""The DDPM variational bound (ardiff.ddpm.nll_bound): its terms, its prior in closed form, and the bound
lying above an exactly known likelihood."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from ardiff.ddpm import discretised_gaussian_log_likelihood, nll_bound, snr_strata
from ardiff.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.linear(T=40, beta_start=1e-3, beta_end=0.3)
V = 0.3  # the data variance the linear denoiser below is optimal for


class LinearDenoiser(torch.nn.Module):
    """eps_hat(x_t, t) = c_t x_t: the optimal noise predictor for data N(0, V I)."""

    def __init__(self, schedule, v=V):
        super().__init__()
        abar = schedule.alphas_cumprod.double()
        self.register_buffer("c", (1 - abar).sqrt() / (abar * v + 1 - abar))
        self.dummy = torch.nn.Parameter(torch.zeros(()))   # gives the bound a device to run on

    def forward(self, x_t, t):
        return (self.c[t].view(-1, 1, 1, 1) * x_t.double()).float()


def chain_variance(model, schedule) -> float:
    """The variance of the linear chain's x0 before discretisation: every step is linear-Gaussian, so its marginal is
    N(0, var) in each dimension."""
    abar = schedule.alphas_cumprod.double()
    c1, c2 = schedule.posterior_mean_coef1.double(), schedule.posterior_mean_coef2.double()
    post_var = schedule.posterior_variance.double()
    g = (1 - (1 - abar).sqrt() * model.c) / abar.sqrt()          # x0_hat = g_t x_t
    var = 1.0                                                     # x at the last step ~ N(0, 1)
    for t in range(schedule.T - 1, 0, -1):
        a = c1[t] * g[t] + c2[t]
        var = a ** 2 * var + post_var[t]
    return float(g[0] ** 2 * var + post_var[1])                   # the decoder's mean g_0 x, variance of step 1


def exact_nll_bits(model, schedule, pixels):
    """-log2 p(x0) per dimension for the linear chain: N(0, var) in each dimension (:func:`chain_variance`), and each
    pixel's probability is its bin's mass."""
    var = chain_variance(model, schedule)
    x = pixels.double().numpy() / 127.5 - 1
    sd = math.sqrt(var)
    hi = np.where(x > 0.999, 1.0, norm.cdf((x + 1 / 255) / sd))
    lo = np.where(x < -0.999, 0.0, norm.cdf((x - 1 / 255) / sd))
    return -np.log2(hi - lo).reshape(len(x), -1).mean(1)


def test_discretised_decoder_sums_to_one_and_matches_bins():
    grid = torch.arange(256).double() / 127.5 - 1
    for mean, std in ((0.3, 0.05), (-0.99, 0.01), (1.0, 0.5)):
        logp = discretised_gaussian_log_likelihood(grid, torch.tensor(mean), torch.tensor(std))
        assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
        k = 100
        assert logp[k].exp().item() == pytest.approx(norm.cdf((grid[k] + 1 / 255 - mean) / std)
                                                     - norm.cdf((grid[k] - 1 / 255 - mean) / std), rel=1e-6, abs=1e-300)


def test_terms_add_up_and_the_prior_is_its_closed_form():
    model = LinearDenoiser(SCHEDULE)
    x = torch.randint(0, 256, (3, 2, 4, 4))
    out = nll_bound(model, x, SCHEDULE, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["total"], out["prior"] + out["diffusion"] + out["decoder"])
    torch.testing.assert_close(out["diffusion"], out["terms"].sum(1))
    assert out["t"] == list(range(1, SCHEDULE.T)) and out["terms"].shape == (3, SCHEDULE.T - 1)
    assert (out["terms"] >= 0).all() and (out["prior"] >= 0).all()
    # the prior term against torch's KL of the two Gaussians
    x0 = x.double() / 127.5 - 1
    a = SCHEDULE.alphas_cumprod[-1].double()
    q = torch.distributions.Normal(a.sqrt() * x0, (1 - a).sqrt())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)
    torch.testing.assert_close(out["prior"], kl / (32 * math.log(2)))


def test_bound_lies_above_the_exact_nll_and_the_stratified_estimate_is_unbiased():
    model = LinearDenoiser(SCHEDULE)
    pixels = torch.tensor([[0, 40, 128, 200], [255, 90, 130, 10]]).view(2, 1, 2, 2)
    exact = exact_nll_bits(model, SCHEDULE, pixels)                       # (2,)
    reps = pixels.repeat_interleave(400, 0)                               # 400 noise draws per image
    out = nll_bound(model, reps, SCHEDULE, generator=torch.Generator().manual_seed(1))
    bound = out["total"].view(2, 400)
    mean, se = bound.mean(1).numpy(), (bound.std(1) / 20).numpy()
    assert (mean - 3 * se > exact).all(), (mean, se, exact)             # above, beyond the noise of the estimate
    # (the gap is several bits here: a linear denoiser is poor at low noise, where the posterior variance is tiny)
    # stratified: one step per stratum, shared by a batch, so average over many independent draws of the steps
    strat = [nll_bound(model, reps[:50], SCHEDULE, timesteps=6, generator=torch.Generator().manual_seed(s))
             for s in range(2, 42)]
    assert all(len(o["t"]) == 6 and o["terms"].shape == (50, 6) for o in strat)
    means = torch.stack([o["diffusion"].mean() for o in strat])            # (40,): one per draw of the steps
    full = out["diffusion"][:400]                                          # the same image, every step
    diff = means.mean() - full.mean()
    assert abs(diff) < 4 * (means.std() / 40 ** 0.5 + full.std() / 400 ** 0.5)


@pytest.mark.parametrize("v", [V, 3.0])
def test_the_clipped_bound_is_still_a_bound(v):
    """clip_x0=True is the bound of the clipped reverse process, a model of its own, so it bounds that model's -log p.
    On data drawn from the linear chain's own (exactly known) marginal, the mean of any model's -log p is at least the
    chain's (Gibbs' inequality: cross-entropy >= entropy); so the clipped bound's mean lies above the chain's exact NLL.
    With v = 3 the denoiser's x0_hat leaves [-1, 1] often, so clipping acts on the terms."""
    model = LinearDenoiser(SCHEDULE, v)
    sd = chain_variance(model, SCHEDULE) ** 0.5
    z = torch.randn(3000, 1, 2, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * sd
    pixels = ((z + 1) * 127.5).round().clamp(0, 255).long()          # the discretised marginal the decoder scores
    exact = torch.from_numpy(exact_nll_bits(model, SCHEDULE, pixels))
    clipped = nll_bound(model, pixels, SCHEDULE, generator=torch.Generator().manual_seed(6), clip_x0=True)
    free = nll_bound(model, pixels, SCHEDULE, generator=torch.Generator().manual_seed(6))
    gap = clipped["total"] - exact                                    # (3000,)
    assert gap.mean() > 3 * gap.std() / len(gap) ** 0.5, (gap.mean(), gap.std())
    assert torch.isfinite(clipped["total"]).all() and (clipped["terms"] >= 0).all()
    changed = (clipped["terms"] - free["terms"]).abs().max().item()  # the largest change of a term, bits/dim
    assert changed > (0.1 if v > 1 else 0.0)                          # clipping acts


def test_snr_strata_cover_the_steps_and_isolate_the_cosine_schedules_last_step():
    cosine = NoiseSchedule.cosine(1000)
    for m in (1, 7, 100, 999):
        strata = snr_strata(cosine, m)
        assert len(strata) == m and strata[0][0] == 1 and strata[-1][1] == 1000
        assert all(lo < hi for lo, hi in strata) and all(a[1] == b[0] for a, b in zip(strata, strata[1:]))
    strata = snr_strata(cosine, 100)
    assert strata[-1] == (999, 1000)              # beta clipped to 0.999: the SNR falls 1000x in the last step
    assert strata[0][1] - strata[0][0] < 10       # the least noisy steps, where the terms are largest, are narrow
    with pytest.raises(ValueError, match=r"m must be an int in \[1, T-1\] = \[1, 999\]"):
        snr_strata(cosine, 1000)


def test_bad_arguments():
    model = LinearDenoiser(SCHEDULE)
    x = torch.randint(0, 256, (1, 1, 2, 2))
    with pytest.raises(ValueError, match="x0_pixels must be a"):
        nll_bound(model, x.float(), SCHEDULE)
    with pytest.raises(ValueError, match=r"x0_pixels must hold values in \[0, 255\]"):
        nll_bound(model, x + 300, SCHEDULE)
    with pytest.raises(ValueError, match=r"timesteps must be None or an int in \[1, T-1\] = \[1, 39\]"):
        nll_bound(model, x, SCHEDULE, timesteps=40)
    with pytest.raises(ValueError, match="variance must be 'small' or 'large'"):
        nll_bound(model, x, SCHEDULE, variance="learned")
