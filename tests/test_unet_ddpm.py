import math

import pytest
import torch

from ardiff import NoiseSchedule, ddpm, samplers
from ardiff.unet import UNet, UNetConfig, timestep_embedding

S = NoiseSchedule.linear(1000)
TINY = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention=True, num_heads=2, groups=4)


@pytest.mark.parametrize("size, ch, mults", [(28, 1, (1, 2, 2)), (32, 3, (1, 2, 2)), (28, 1, (1, 2))])
def test_unet_shapes(size, ch, mults):
    m = UNet(in_channels=ch, image_size=size, base_channels=8, channel_mults=mults, num_res_blocks=1, groups=4,
             num_heads=2)
    x = torch.randn(3, ch, size, size)
    assert m(x, torch.tensor([0, 5, 999])).shape == x.shape


def test_unet_class_conditioning_changes_output():
    m = UNet(**TINY, num_classes=10)
    torch.nn.init.normal_(m.conv_out.weight)  # undo the zero init so the output depends on the input
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 10])
    assert not torch.allclose(m(x, t, torch.tensor([0, 0])), m(x, t, torch.tensor([0, 1]))[:, :])
    with pytest.raises(ValueError, match="y .* must be given exactly when"):
        m(x, t)


def test_unet_config_validation():
    for bad in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match="in_channels must be an int >= 1"):
            UNetConfig(in_channels=bad)
    for bad in (0, 256.0, False):
        with pytest.raises(ValueError, match="out_channels must be None or an int >= 1"):
            UNetConfig(out_channels=bad)
    assert UNetConfig(in_channels=2, out_channels=256).out_channels == 256   # the absorbing model's head
    with pytest.raises(ValueError, match="image_size must be divisible"):
        UNetConfig(image_size=30, channel_mults=(1, 2, 2))
    with pytest.raises(ValueError, match="groups=8 must divide every width"):
        UNetConfig(base_channels=12)


def test_timestep_embedding():
    e = timestep_embedding(torch.tensor([0, 1]), 8)
    assert e.shape == (2, 8)
    torch.testing.assert_close(e[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert e[1, 0].item() == pytest.approx(math.sin(1.0))


def test_predict_x0_inverts_q_sample():
    x0, eps = torch.randn(4, 1, 5, 5), torch.randn(4, 1, 5, 5)
    t = torch.tensor([0, 3, 500, 999])
    from ardiff import q_sample
    torch.testing.assert_close(ddpm.predict_x0(q_sample(x0, t, S, noise=eps), eps, t, S), x0, atol=1e-3, rtol=1e-3)


def test_ddpm_step_by_hand():
    """x_{t-1} = 1/sqrt(a_t) (x_t - b_t / sqrt(1 - abar_t) eps) + sqrt(tilde beta_t) z, evaluated in float64."""
    s = NoiseSchedule.from_betas([0.1, 0.2, 0.3])
    x_t, eps, z = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, 0.4]]), torch.tensor([[1.0, -2.0]])
    t = 2
    b = [0.1, 0.2, 0.3]
    abar = [0.9, 0.72, 0.504]
    mean = [(x - b[t] / math.sqrt(1 - abar[t]) * e) / math.sqrt(1 - b[t]) for x, e in zip([0.5, -1.0], [0.2, 0.4])]
    var = b[t] * (1 - abar[t - 1]) / (1 - abar[t])
    want = torch.tensor([[m + math.sqrt(var) * zz for m, zz in zip(mean, [1.0, -2.0])]])
    torch.testing.assert_close(ddpm.ddpm_step(x_t, eps, t, s, noise=z), want, atol=1e-5, rtol=1e-5)
    # at t = 0 no noise is added: the result is x0_hat
    x0_hat = (0.5 - math.sqrt(0.1) * 0.2) / math.sqrt(0.9)
    out = ddpm.ddpm_step(x_t, eps, 0, s, noise=z)
    assert out[0, 0].item() == pytest.approx(x0_hat, rel=1e-5)


def test_ddim_step_by_hand():
    s = NoiseSchedule.from_betas([0.1, 0.2, 0.3])
    x_t, eps = torch.tensor([[0.5]]), torch.tensor([[0.2]])
    abar_t, abar_p = 0.504, 0.9
    x0 = (0.5 - math.sqrt(1 - abar_t) * 0.2) / math.sqrt(abar_t)
    want = math.sqrt(abar_p) * x0 + math.sqrt(1 - abar_p) * 0.2
    assert ddpm.ddim_step(x_t, eps, 2, 0, s).item() == pytest.approx(want, rel=1e-5)
    # t_prev = -1: alpha_bar_prev = 1, the step lands on x0_hat
    assert ddpm.ddim_step(x_t, eps, 2, -1, s).item() == pytest.approx(x0, rel=1e-5)
    # eta = 0.5, with its sigma
    sigma = 0.5 * math.sqrt((1 - abar_p) / (1 - abar_t) * (1 - abar_t / abar_p))
    want = math.sqrt(abar_p) * x0 + math.sqrt(1 - abar_p - sigma ** 2) * 0.2 + sigma * 1.5
    got = ddpm.ddim_step(x_t, eps, 2, 0, s, eta=0.5, noise=torch.tensor([[1.5]]))
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_ddim_eta1_one_step_is_ddpm():
    x_t, eps, z = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    for t in (1, 10, 999):
        torch.testing.assert_close(ddpm.ddim_step(x_t, eps, t, t - 1, S, eta=1.0, noise=z),
                                   ddpm.ddpm_step(x_t, eps, t, S, noise=z), atol=1e-5, rtol=1e-4)


class ZeroEps(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return x * self.w + 0.3 * torch.sin(x)


def test_ddim_eta0_is_deterministic_and_ddpm_is_seeded():
    m = ZeroEps()
    x_T = torch.randn(2, 1, 4, 4)
    a = samplers.sample(m, S, x_T.shape, steps=20, method="ddim", x_T=x_T, generator=torch.Generator().manual_seed(0))
    b = samplers.sample(m, S, x_T.shape, steps=20, method="ddim", x_T=x_T, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    c = samplers.sample(m, S, x_T.shape, steps=20, method="ddpm", x_T=x_T, generator=torch.Generator().manual_seed(0))
    d = samplers.sample(m, S, x_T.shape, steps=20, method="ddpm", x_T=x_T, generator=torch.Generator().manual_seed(0))
    e = samplers.sample(m, S, x_T.shape, steps=20, method="ddpm", x_T=x_T, generator=torch.Generator().manual_seed(1))
    assert torch.equal(c, d) and not torch.equal(c, e)


def test_sample_from_t_start_and_trajectory():
    m = ZeroEps()
    x = torch.randn(2, 1, 4, 4)
    out, traj = samplers.sample(m, S, x.shape, steps=5, method="ddim", x_T=x, t_start=300, return_trajectory=True)
    assert traj["t"] == [300, 240, 180, 119, 59]                                 # trailing spacing (the default)
    _, traj = samplers.sample(m, S, x.shape, steps=5, method="ddim", x_T=x, t_start=300, return_trajectory=True,
                          spacing="linspace")
    assert traj["t"] == [300, 225, 150, 75, 0]
    assert len(traj["x_t"]) == len(traj["x0_hat"]) == 5 and torch.equal(traj["x_t"][0], x)
    assert out.shape == x.shape
    assert samplers.timestep_sequence(999, 1000) == list(range(999, -1, -1))


def test_sample_bad_arguments():
    m = ZeroEps()
    with pytest.raises(ValueError, match="method must be one of"):
        samplers.sample(m, S, (1, 1, 2, 2), method="euler")
    with pytest.raises(ValueError, match=r"t_start must be an int in \[0, T-1\]"):
        samplers.sample(m, S, (1, 1, 2, 2), t_start=1000)
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, t_start \+ 1\]"):
        samplers.sample(m, S, (1, 1, 2, 2), steps=0)
    with pytest.raises(ValueError, match="eta must be in"):
        samplers.sample(m, S, (1, 1, 2, 2), method="ddim", eta=1.5, steps=3)
    with pytest.raises(ValueError, match="x_T must have shape"):
        samplers.sample(m, S, (1, 1, 2, 2), x_T=torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match=r"t_prev must be in \[-1, t - 1\]"):
        ddpm.ddim_step(torch.zeros(1, 2), torch.zeros(1, 2), 5, 5, S)


def test_x0_is_not_clipped_by_default():
    m = ZeroEps()
    x = torch.full((1, 1, 2, 2), 30.0)
    out = samplers.sample(m, S, x.shape, steps=2, method="ddim", x_T=x, t_start=10)
    assert out.abs().max() > 1
    out = samplers.sample(m, S, x.shape, steps=2, method="ddim", x_T=x, t_start=10, clip_x0=True)
    assert out.abs().max() <= 1 + 1e-5


def test_loss_of_zero_predictor_is_one():
    class Zero(torch.nn.Module):
        def forward(self, x, t):
            return torch.zeros_like(x)
    g = torch.Generator().manual_seed(0)
    assert ddpm.loss(Zero(), torch.zeros(512, 1, 8, 8), S, generator=g).item() == pytest.approx(1.0, abs=0.02)


class GaussianEpsilon(torch.nn.Module):
    r"""The exact noise predictor for data x0 ~ N(mu, s^2) per pixel: with x_t = a x0 + b eps,
    :math:`E[\varepsilon \mid x_t] = b\,(x_t - a\mu) / (a^2 s^2 + b^2)`."""

    def __init__(self, schedule, mu, s):
        super().__init__()
        self.abar, self.mu, self.s = schedule.alphas_cumprod.double(), mu, s
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # gives the sampler a device

    def forward(self, x, t):
        abar = self.abar[t].view(-1, 1, 1, 1)
        a, b = abar.sqrt(), (1 - abar).sqrt()
        return (b * (x.double() - a * self.mu) / (a ** 2 * self.s ** 2 + b ** 2)).float()


def test_ancestral_sampler_recovers_gaussian_data_with_the_exact_noise_predictor():
    """End to end: 1000 ancestral steps with the exact eps for N(mu, s^2) data return that distribution."""
    sched = NoiseSchedule.linear(1000)
    mu, s = 0.3, 0.5
    g = torch.Generator().manual_seed(0)
    x = samplers.sample(GaussianEpsilon(sched, mu, s), sched, (4000, 1, 2, 2), method="ddpm", generator=g)
    assert x.mean().item() == pytest.approx(mu, abs=0.02)  # SE of the mean: 0.5 / sqrt(16000) = 0.004
    assert x.std().item() == pytest.approx(s, rel=0.03)


@pytest.mark.parametrize("steps", [10, 50])
def test_ddim_matches_its_closed_form_on_gaussian_data(steps):
    """For Gaussian data DDIM is linear: each step maps x - a mu to k (x - a mu), with
    k = (a' a s^2 + b' b) / (a^2 s^2 + b^2) (a = sqrt(abar_t), b = sqrt(1 - abar_t), primes at t_prev).
    The samples' mean and std must follow that recursion from x_T ~ N(0, 1); few steps shrink the std."""
    sched = NoiseSchedule.linear(1000)
    mu, s = 0.3, 0.5
    abar = sched.alphas_cumprod.double()
    seq = samplers.timestep_sequence(999, steps) + [-1]
    mean, std = 0.0, 1.0
    for t, tp in zip(seq[:-1], seq[1:]):
        a, b = abar[t].sqrt(), (1 - abar[t]).sqrt()
        a2, b2 = (abar[tp].sqrt(), (1 - abar[tp]).sqrt()) if tp >= 0 else (1.0, 0.0)
        k = (a2 * a * s ** 2 + b2 * b) / (a ** 2 * s ** 2 + b ** 2)
        mean, std = float(a2 * mu + k * (mean - a * mu)), float(k * std)
    g = torch.Generator().manual_seed(0)
    x = samplers.sample(GaussianEpsilon(sched, mu, s), sched, (4000, 1, 2, 2), steps=steps, method="ddim", generator=g)
    assert x.mean().item() == pytest.approx(mean, abs=0.015)  # 4 standard errors
    assert x.std().item() == pytest.approx(std, rel=0.025)
    assert std < s  # the discretisation loses variance
