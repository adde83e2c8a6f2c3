import pytest
import torch

from ardiff import NoiseSchedule, q_posterior, q_sample, q_step

S = NoiseSchedule.linear(1000)


def test_q_sample_is_the_closed_form():
    x0 = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    eps = torch.randn_like(x0)
    t = torch.tensor([0, 10, 500, 999])
    xt = q_sample(x0, t, S, noise=eps)
    ab = S.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(xt, ab.sqrt() * x0 + (1 - ab).sqrt() * eps)
    assert xt.shape == x0.shape and xt.dtype == x0.dtype
    # an int t is the same step for every sample
    torch.testing.assert_close(q_sample(x0, 7, S, noise=eps), q_sample(x0, torch.full((4,), 7), S, noise=eps))


def test_generator_makes_noise_reproducible():
    x0 = torch.zeros(3, 2)
    a = q_sample(x0, 100, S, generator=torch.Generator().manual_seed(1))
    b = q_sample(x0, 100, S, generator=torch.Generator().manual_seed(1))
    c = q_sample(x0, 100, S, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_q_step_is_one_markov_step():
    x = torch.randn(2, 3)
    eps = torch.randn(2, 3)
    b = S.betas[42]
    torch.testing.assert_close(q_step(x, 42, S, noise=eps), (1 - b).sqrt() * x + b.sqrt() * eps)


def test_chained_steps_shrink_the_mean_like_the_closed_form():
    # with zero noise, T steps multiply x0 by prod sqrt(1 - beta_s) = sqrt(alpha_bar_t) exactly
    x0 = torch.linspace(-1, 1, 9, dtype=torch.float64).view(1, 9)
    x = x0.clone()
    for t in range(300):
        x = q_step(x, t, S, noise=torch.zeros_like(x))
    torch.testing.assert_close(x, S.alphas_cumprod[299].double().sqrt() * x0, rtol=1e-6, atol=1e-7)


def test_chained_steps_match_closed_form_in_distribution():
    g = torch.Generator().manual_seed(0)
    n = 20000
    x0 = torch.full((n, 1), 0.7)
    x = x0.clone()
    s = NoiseSchedule.linear(50, 1e-3, 0.05)
    for t in range(50):
        x = q_step(x, t, s, generator=g)
    ab = s.alphas_cumprod[-1]
    assert x.mean().item() == pytest.approx(0.7 * ab.sqrt().item(), abs=5 * ((1 - ab) / n).sqrt().item())
    assert x.var().item() == pytest.approx((1 - ab).item(), rel=5 * (2 / n) ** 0.5)


def test_posterior_matches_formula_and_t0():
    x0, xt = torch.randn(3, 4), torch.randn(3, 4)
    t = torch.tensor([0, 1, 700])
    mean, var = q_posterior(x0, xt, t, S)
    # the formulas, evaluated by hand in float64 from the betas
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    ab_all = torch.cumprod(1 - betas, 0)
    ab = ab_all[t]
    abp = torch.where(t > 0, ab_all[(t - 1).clamp(min=0)], torch.ones(3, dtype=torch.float64))
    b = betas[t]
    c1 = (abp.sqrt() * b / (1 - ab)).view(-1, 1)
    c2 = ((1 - b).sqrt() * (1 - abp) / (1 - ab)).view(-1, 1)
    torch.testing.assert_close(mean, (c1 * x0 + c2 * xt).float())
    torch.testing.assert_close(var, (b * (1 - abp) / (1 - ab)).view(-1, 1).float())
    # t = 0: x_{-1} is x0 itself
    torch.testing.assert_close(mean[0], x0[0])
    assert var[0].item() == 0
    assert var.shape == (3, 1)


def test_posterior_is_the_conditional_of_the_chain():
    # draw x_{t-1} ~ q(. | x0), then x_t = q_step(x_{t-1}); the residual x_{t-1} - mean is
    # uncorrelated with x_t and has variance tilde-beta_t
    g = torch.Generator().manual_seed(3)
    n, t = 40000, 20
    x0 = torch.full((n, 1), -0.4)
    x_prev = q_sample(x0, t - 1, S, generator=g)
    x_t = q_step(x_prev, t, S, generator=g)
    mean, var = q_posterior(x0, x_t, t, S)
    r = (x_prev - mean).squeeze(1)
    assert abs(r.mean().item()) < 5 * (var[0].item() / n) ** 0.5
    assert r.var().item() == pytest.approx(var[0].item(), rel=5 * (2 / n) ** 0.5)
    assert abs(torch.corrcoef(torch.stack([r, x_t.squeeze(1)]))[0, 1].item()) < 5 / n ** 0.5


@pytest.mark.parametrize("fn", [q_sample, q_step])
def test_bad_inputs(fn):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"t must be in \[0, T-1\] = \[0, 999\], got 1000"):
        fn(x, 1000, S)
    with pytest.raises(ValueError, match=r"t must be in \[0, T-1\]"):
        fn(x, -1, S)
    with pytest.raises(ValueError, match=r"t must be in \[0, T-1\]"):
        fn(x, torch.tensor([0, 1000]), S)
    with pytest.raises(ValueError, match=r"t must have shape \(B,\) = \(2,\)"):
        fn(x, torch.tensor([1, 2, 3]), S)
    with pytest.raises(TypeError, match="t must hold integers"):
        fn(x, torch.tensor([1.0, 2.0]), S)
    with pytest.raises(TypeError, match="t must be an int"):
        fn(x, 1.5, S)
    with pytest.raises(ValueError, match=r"noise must have the shape of the input, \(2, 3\)"):
        fn(x, 1, S, noise=torch.zeros(3, 2))
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        fn(x, 1, "linear")
    with pytest.raises(TypeError, match="must be a floating-point tensor"):
        fn(torch.zeros(2, 3, dtype=torch.long), 1, S)


def test_posterior_bad_shapes():
    with pytest.raises(ValueError, match=r"x_t must have the shape of x0"):
        q_posterior(torch.zeros(2, 3), torch.zeros(2, 4), 1, S)
    with pytest.raises(ValueError, match=r"t must be in \[0, T-1\]"):
        q_posterior(torch.zeros(2, 3), torch.zeros(2, 3), 5000, S)


def test_q_marginal_gaussian_matches_the_marginal_moments():
    from ardiff.forward import q_marginal_gaussian
    s = NoiseSchedule.linear(T=100, beta_start=1e-4, beta_end=0.05)
    g = torch.Generator().manual_seed(0)
    # correlated 2x2 "images": pixel 1 = pixel 0 + small noise, others independent, nonzero mean
    base = torch.randn(4000, 1, generator=g)
    data = torch.cat([base, base + 0.1 * torch.randn(4000, 1, generator=g), torch.randn(4000, 2, generator=g)], 1)
    data = (data + torch.tensor([1.0, 1.0, -0.5, 0.0])).view(4000, 1, 2, 2)
    t = 99
    x = q_marginal_gaussian(data, t, s, 20000, generator=g).flatten(1).double()
    ref = q_sample(data.repeat(5, 1, 1, 1), torch.full((20000,), t), s, generator=g).flatten(1).double()
    torch.testing.assert_close(x.mean(0), ref.mean(0), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), torch.cov(ref.T), atol=0.04, rtol=0)
    assert torch.cov(x.T)[0, 1] > 0.05                      # the data's correlation survives (abar_T = 0.078)
    with pytest.raises(ValueError, match="t must be"):
        q_marginal_gaussian(data, 100, s, 5)
    with pytest.raises(ValueError, match="data must be"):
        q_marginal_gaussian(data[:1], 0, s, 5)


def test_identification_accuracy_falls_from_certainty_to_chance():
    from ardiff.forward import identification_accuracy, signal_free_tail

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 1, 8, 8, generator=g).sign()                          # 16 distinct candidates
    s = NoiseSchedule.linear(T=1000)
    acc = identification_accuracy(x0, s, [0, 999], draws=200, generator=g)
    assert acc[0] == 1.0                                                       # no noise to speak of: always right
    assert abs(acc[1] - 1 / 16) < 4 * (1 / 16 * 15 / 16 / 3200) ** 0.5        # pure noise: chance
    with pytest.raises(ValueError, match="ts"):
        identification_accuracy(x0, s, [1000], draws=2)
    with pytest.raises(ValueError, match="draws"):
        identification_accuracy(x0, s, [0], draws=0)
    with pytest.raises(ValueError, match="x0"):
        identification_accuracy(x0[:1], s, [0], draws=2)
    # the tail: from the first measured step after the last one above 2/K, to the end
    ts = [99, 199, 299, 399]
    assert signal_free_tail([0.9, 0.5, 0.01, 0.0], ts, K=16, T=400) == 400 - 299
    assert signal_free_tail([0.9, 0.5, 0.3, 0.2], ts, K=16, T=400) == 0
    assert signal_free_tail([0.01, 0.0, 0.0, 0.0], ts, K=16, T=400) == 400 - 99
    with pytest.raises(ValueError, match="increase"):
        signal_free_tail([0.1, 0.1], [5, 5], K=16, T=10)
