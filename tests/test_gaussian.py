"""The linear-Gaussian (Wiener) denoiser: exact posterior mean, eps/x0 consistency, Monte-Carlo regression,
better than a scalar shrinker, runs in the samplers, argument errors."""
import pytest
import torch

from ardiff import NoiseSchedule
from ardiff.gaussian import GaussianDenoiser
from ardiff.samplers import sample

SCHED = NoiseSchedule.cosine(100)   # ends at pure noise (abar_T ~ 2e-7), so sampling starts right
SHAPE = (1, 4, 4)
D = 16


def known_gaussian(seed=0):
    """A mean and a full-rank covariance with a spread of eigenvalues (from ~4 down to ~0.01)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    lam = torch.logspace(0.6, -2, D, dtype=torch.float64)
    return 0.3 * torch.randn(SHAPE, generator=g, dtype=torch.float64), Q @ torch.diag(lam) @ Q.T


def draw(mu, cov, n, seed):
    g = torch.Generator().manual_seed(seed)
    L = torch.linalg.cholesky(cov)
    return (mu.flatten() + torch.randn(n, D, generator=g, dtype=torch.float64) @ L.T).reshape(n, *SHAPE)


def noised(x0, t, seed):
    g = torch.Generator().manual_seed(seed)
    abar = SCHED.alphas_cumprod.double()[t]
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * eps, eps


@pytest.mark.parametrize("t", [0, 30, 70, 99])
def test_x0_hat_is_the_exact_posterior_mean(t):
    mu, cov = known_gaussian()
    model = GaussianDenoiser(mu, cov, SCHED)
    x_t, _ = noised(draw(mu, cov, 8, 1), t, 2)
    abar = SCHED.alphas_cumprod.double()[t]
    a = abar.sqrt()
    # the closed form, with a linear solve instead of the eigenbasis: mu + a Sigma (abar Sigma + (1-abar) I)^-1 (x_t - a mu)
    M = abar * cov + (1 - abar) * torch.eye(D, dtype=torch.float64)
    r = x_t.flatten(1) - a * mu.flatten()
    expected = mu.flatten() + a * (cov @ torch.linalg.solve(M, r.T)).T
    got = model.x0_hat(x_t, torch.full((8,), t))
    torch.testing.assert_close(got.flatten(1), expected, rtol=1e-9, atol=1e-9)
    assert got.shape == x_t.shape and got.dtype == x_t.dtype


@pytest.mark.parametrize("t", [0, 50, 99])
def test_eps_hat_agrees_with_x0_hat(t):
    mu, cov = known_gaussian(3)
    model = GaussianDenoiser(mu, cov, SCHED)
    x_t = noised(draw(mu, cov, 5, 4), t, 5)[0]                                   # float64: at t = 99, 1/sqrt(abar) ~ 2000
    tt = torch.full((5,), t, dtype=torch.long)
    eps, x0 = model(x_t, tt), model.x0_hat(x_t, tt)
    abar = SCHED.alphas_cumprod.double()[t]
    assert eps.shape == x_t.shape and eps.dtype == torch.float64 and model(x_t.float(), tt).dtype == torch.float32
    torch.testing.assert_close((x_t - (1 - abar).sqrt() * eps) / abar.sqrt(), x0, rtol=1e-7, atol=1e-7)


def test_matches_the_monte_carlo_regression():
    """The least-squares regression of x_0 on x_t (with intercept) over many draws converges to the Wiener filter."""
    mu, cov = known_gaussian(6)
    model = GaussianDenoiser(mu, cov, SCHED)
    t, n = 40, 100_000
    x0 = draw(mu, cov, n, 7)
    x_t, _ = noised(x0, t, 8)
    X = torch.cat([x_t.flatten(1), torch.ones(n, 1, dtype=torch.float64)], 1)      # (n, D + 1)
    coef = torch.linalg.lstsq(X, x0.flatten(1)).solution                          # (D + 1, D)
    probe = noised(draw(mu, cov, 256, 9), t, 10)[0]
    regression = torch.cat([probe.flatten(1), torch.ones(256, 1, dtype=torch.float64)], 1) @ coef
    wiener = model.x0_hat(probe, torch.full((256,), t)).flatten(1)
    gap = (regression - wiener).pow(2).mean().sqrt()
    spread = (wiener - wiener.mean(0)).pow(2).mean().sqrt()
    assert gap < 0.02 * spread, (gap, spread)


def digit_like(n, seed):
    """Non-Gaussian 8x8 toy images: a bright blurred bar at a random place and angle on a dark background."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 8), torch.linspace(-1, 1, 8), indexing="ij")
    c = torch.rand(n, 2, generator=g) - 0.5
    th = torch.rand(n, generator=g) * torch.pi
    d = ((xx - c[:, :1, None]) * torch.sin(th)[:, None, None] - (yy - c[:, 1:, None]) * torch.cos(th)[:, None, None])
    return (2 * torch.exp(-(d / 0.25) ** 2) - 1)[:, None]                           # (n, 1, 8, 8) in [-1, 1]


@pytest.mark.parametrize("t", [20, 60])
def test_beats_a_scaled_identity_shrinker_on_toy_digits(t):
    train, test = digit_like(4000, 0), digit_like(1000, 1)
    model = GaussianDenoiser.fit(train, SCHED)
    abar = SCHED.alphas_cumprod.double()[t]
    a, s = abar.sqrt(), (1 - abar).sqrt()
    x_t = (a * test.double() + s * torch.randn(test.shape, generator=torch.Generator().manual_seed(2),
                                               dtype=torch.float64)).float()
    wiener = (model.x0_hat(x_t, torch.full((1000,), t)) - test).pow(2).mean()
    # the best scaled-identity shrinker mu + c (x_t - a mu), c = a v / (abar v + 1 - abar), v the mean pixel variance
    mu = train.double().mean(0)
    v = train.double().var(0).mean()
    c = a * v / (abar * v + 1 - abar)
    shrink = (mu + c * (x_t.double() - a * mu) - test).pow(2).mean()
    assert wiener < 0.9 * shrink, (wiener, shrink)


def test_fit_recovers_mean_and_covariance():
    mu, cov = known_gaussian(11)
    x = draw(mu, cov, 20_000, 12).float()
    model = GaussianDenoiser.fit(x, SCHED, chunk=3000)
    U, lam = model.eigvecs, model.eigvals
    torch.testing.assert_close(model.mean, x.double().mean(0))
    torch.testing.assert_close(U @ torch.diag(lam) @ U.T, torch.cov(x.double().flatten(1).T), rtol=1e-6, atol=1e-8)
    assert (U @ torch.diag(lam) @ U.T - cov).abs().max() < 0.1 and not model.mean.requires_grad


def test_runs_in_the_samplers_unchanged():
    mu, cov = known_gaussian(13)
    model = GaussianDenoiser(mu.float(), cov, SCHED)
    for method in ("ddpm", "ddim", "dpm-solver++"):
        x, traj = sample(model, SCHED, (6, *SHAPE), steps=10, method=method, return_trajectory=True,
                         generator=torch.Generator().manual_seed(0))
        assert traj["x0_hat"][-1].dtype == torch.float32
        assert x.shape == (6, *SHAPE) and torch.isfinite(x).all() and len(traj["x0_hat"]) == 10


@pytest.fixture
def one_thread():
    """100 steps of tiny (2000, 16) tensors: per-op threading overhead dominates, so run them on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_ddpm_samples_have_the_fitted_covariance(one_thread):
    """Ancestral sampling with the exact score of N(mu, Sigma) returns (approximately) N(mu, Sigma)."""
    mu, cov = known_gaussian(14)
    model = GaussianDenoiser(mu, cov, SCHED)
    x = sample(model, SCHED, (2000, *SHAPE), method="ddpm", generator=torch.Generator().manual_seed(1),
               batch_size=2000).double()
    emp = torch.cov(x.flatten(1).T)
    assert (emp - cov).abs().max() < 0.12 * cov.diagonal().max() and (x.mean(0) - mu).abs().max() < 0.1


def test_argument_errors():
    mu, cov = known_gaussian()
    with pytest.raises(ValueError, match="schedule"):
        GaussianDenoiser(mu, cov, "linear")
    with pytest.raises(ValueError, match="mean"):
        GaussianDenoiser(mu.flatten(), cov, SCHED)
    with pytest.raises(ValueError, match="covariance"):
        GaussianDenoiser(mu, cov[:5, :5], SCHED)
    with pytest.raises(ValueError, match="symmetric"):
        GaussianDenoiser(mu, cov + torch.triu(torch.ones(D, D, dtype=torch.float64), 1), SCHED)
    with pytest.raises(ValueError, match="semi-definite"):
        GaussianDenoiser(mu, cov - 10 * torch.eye(D, dtype=torch.float64), SCHED)
    with pytest.raises(ValueError, match="images"):
        GaussianDenoiser.fit(torch.zeros(5, 4, 4), SCHED)
    with pytest.raises(ValueError, match="at least 2"):
        GaussianDenoiser.fit(torch.zeros(1, *SHAPE), SCHED)
    with pytest.raises(ValueError, match="chunk"):
        GaussianDenoiser.fit(torch.zeros(3, *SHAPE), SCHED, chunk=0)
    model = GaussianDenoiser(mu, cov, SCHED)
    x = torch.zeros(2, *SHAPE)
    with pytest.raises(ValueError, match="x_t"):
        model(torch.zeros(2, 1, 5, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="t must be in"):
        model(x, torch.tensor([0, 100]))
    with pytest.raises(ValueError, match=r"t must be an int or a \(B,\)"):
        model(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must be an int or a \(B,\)"):
        model(x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="t must be an int"):
        model(x, 0.5)
    torch.testing.assert_close(model(x, 3), model(x, torch.tensor([3, 3])))   # an int t: the same step for all


def test_sample_has_the_fitted_mean_and_covariance():
    mean, cov = known_gaussian(3)
    model = GaussianDenoiser(mean, cov, SCHED)
    x = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20_000, *SHAPE) and x.dtype == torch.float32
    flat = x.double().flatten(1)
    assert torch.allclose(flat.mean(0), mean.flatten(), atol=0.05)
    assert torch.allclose(torch.cov(flat.T), cov, atol=0.1)
    again = model.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, model.sample(4, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="n must be"):
        model.sample(0)
