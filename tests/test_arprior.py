"""Method 1 (consistency loss), method 2 (blend), the principled variant, and the AR partners."""
import math
from dataclasses import replace

import pytest
import torch

from ardiff import NoiseSchedule, zoo
from ardiff.arprior import (ar_partners, blend_init, consistency_loss, consistency_weight, sample_from_ar,
                            truncated_init)
from ardiff.ddpm import loss as ddpm_loss
from ardiff.metrics import diversity, sharpness
from ardiff.pixelcnn import PixelCNN, to_pixels
from ardiff.train import train
from ardiff.unet import UNet


class Recorder(torch.nn.Module):
    """eps_theta(x_t, t) = c, a constant; remembers the x_t and t it was given."""

    def __init__(self, c=0.5):
        super().__init__()
        self.c, self.w = c, torch.nn.Parameter(torch.zeros(()))

    def forward(self, x_t, t):
        self.x_t, self.t = x_t.clone(), t.clone()
        return torch.full_like(x_t, self.c) + 0 * self.w


ONE_STEP = NoiseSchedule.from_betas(torch.tensor([0.36]))  # abar_0 = 0.64: sqrt 0.8, sqrt(1 - abar) 0.6


def test_consistency_loss_by_hand():
    x0 = torch.tensor([[[[0.5, -1.0], [0.0, 1.0]]]])
    x0_ar = torch.tensor([[[[1.0, -1.0], [-0.5, 0.0]]]])
    model = Recorder(0.5)
    total, diff, ar = consistency_loss(model, x0, x0_ar, ONE_STEP, lam=0.3, generator=torch.Generator().manual_seed(0))
    assert model.t.tolist() == [0]
    eps = (model.x_t - 0.8 * x0) / 0.6                   # the eps that was drawn
    want_diff = ((0.5 - eps) ** 2).mean()
    x0_hat = (model.x_t - 0.6 * 0.5) / 0.8               # (x_t - sqrt(1 - abar) eps_theta) / sqrt(abar)
    want_ar = ((x0_hat - x0_ar) ** 2).mean()
    assert diff.item() == pytest.approx(want_diff.item(), rel=1e-6)
    assert ar.item() == pytest.approx(want_ar.item(), rel=1e-6)
    assert total.item() == pytest.approx(want_diff.item() + 0.3 * want_ar.item(), rel=1e-6)


def test_consistency_loss_numbers_when_the_model_is_exact():
    # eps_theta = eps exactly: L_diff = 0 and x0_hat = x0, so L_AR = mean((x0 - x0_ar)^2) = (0.25 + 0 + 0.25 + 1) / 4
    class Exact(torch.nn.Module):
        def forward(self, x_t, t):
            return (x_t - 0.8 * self.x0) / 0.6
    m = Exact()
    m.x0 = torch.tensor([[[[0.5, -1.0], [0.0, 1.0]]]])
    x0_ar = torch.tensor([[[[1.0, -1.0], [-0.5, 0.0]]]])
    total, diff, ar = consistency_loss(m, m.x0, x0_ar, ONE_STEP, lam=2.0)
    assert diff.item() == pytest.approx(0.0, abs=1e-10)
    assert ar.item() == pytest.approx(0.375, rel=1e-6)
    assert total.item() == pytest.approx(0.75, rel=1e-6)


def test_lam_zero_is_the_baseline_loss_value_for_value():
    torch.manual_seed(0)
    model = UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention=False)
    sched = NoiseSchedule.linear(100)
    x0 = torch.rand(4, 1, 16, 16) * 2 - 1
    base = ddpm_loss(model, x0, sched, generator=torch.Generator().manual_seed(3))
    total, diff, ar = consistency_loss(model, x0, -x0, sched, 0.0, generator=torch.Generator().manual_seed(3))
    assert total.item() == base.item() and diff.item() == base.item() and ar.item() > 0


def test_lam_zero_trains_exactly_like_the_baseline():
    sched = NoiseSchedule.linear(50)
    x = torch.rand(16, 1, 8, 8) * 2 - 1

    def run(loss_fn, data):
        torch.manual_seed(0)
        model = UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention=False)
        r = train(model, data, loss_fn, steps=4, batch_size=4, lr=1e-3, log_every=1, progress=False, device="cpu")
        return r.history, [p.detach().clone() for p in r.model.parameters()]

    h0, w0 = run(lambda m, b, g: ddpm_loss(m, b[0], sched, generator=g), x)
    h1, w1 = run(lambda m, b, g: consistency_loss(m, b[0], b[1], sched, 0.0, g)[0], (x, torch.zeros_like(x)))
    assert h0 == h1 and all(torch.equal(a, b) for a, b in zip(w0, w1))


@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf"), True, "1"])
def test_lam_is_validated(lam):
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="lam"):
        consistency_loss(Recorder(), x, x, ONE_STEP, lam)
    with pytest.raises(ValueError, match="lam"):
        consistency_weight(ONE_STEP, lam)


def test_partner_shape_is_checked():
    with pytest.raises(ValueError, match="x0_ar"):
        consistency_loss(Recorder(), torch.zeros(2, 1, 2, 2), torch.zeros(1, 1, 2, 2), ONE_STEP, 0.1)


def test_method1_recipe_needs_a_valid_lam_and_a_known_pairing():
    base = zoo.recipe("mnist-ddpm-ar-completion-1")
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        replace(base, ar={**base.ar, "lam": -1.0})
    with pytest.raises(ValueError, match="pairing must be one of"):
        replace(base, ar={**base.ar, "pairing": "nearest"})
    with pytest.raises(ValueError, match="lam must be > 0"):
        replace(base, ar={**base.ar, "lam": 0.0})


def test_consistency_weight():
    sched = NoiseSchedule.linear(1000)
    snr = sched.alphas_cumprod / (1 - sched.alphas_cumprod)
    w = consistency_weight(sched, float(snr[300]))
    assert w[300].item() == pytest.approx(0.5, abs=1e-5)           # lam = SNR_t: half data, half partner
    assert torch.all(w[1:] >= w[:-1]) and w[0] < 1e-3 and w[-1] > 0.999
    assert torch.equal(consistency_weight(sched, 0.0), torch.zeros(1000))


def test_blend_init_by_hand():
    x_ar, noise = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.5])
    assert torch.allclose(blend_init(x_ar, 0.25, noise), torch.tensor([0.625, 0.125]))
    assert torch.equal(blend_init(x_ar, 0.0, noise), noise) and torch.equal(blend_init(x_ar, 1, noise), x_ar)


@pytest.mark.parametrize("alpha", [-0.01, 1.01, float("nan"), True, None])
def test_blend_alpha_is_validated(alpha):
    with pytest.raises(ValueError, match="alpha"):
        blend_init(torch.zeros(2), alpha, torch.zeros(2))


def test_blend_noise_shape_is_checked():
    with pytest.raises(ValueError, match="noise"):
        blend_init(torch.zeros(2), 0.5, torch.zeros(3))


def test_truncated_init_and_the_shortest_run_by_hand():
    sched = NoiseSchedule.linear(10)
    x_ar, noise = torch.rand(3, 1, 4, 4) * 2 - 1, torch.randn(3, 1, 4, 4)
    ab = sched.alphas_cumprod
    assert torch.allclose(truncated_init(x_ar, 5, sched, noise), ab[5].sqrt() * x_ar + (1 - ab[5]).sqrt() * noise)

    class Zero(torch.nn.Module):  # eps_theta = 0: one DDIM step from t = 0 returns x_t / sqrt(abar_0)
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, t):
            return torch.zeros_like(x) + 0 * self.w
    out = sample_from_ar(Zero(), sched, x_ar, t_start=0, steps=1, noise=noise)
    assert torch.allclose(out, x_ar + ((1 - ab[0]) / ab[0]).sqrt() * noise, atol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        sample_from_ar(Zero(), sched, x_ar, t_start=3, steps=5, noise=noise)
    with pytest.raises(ValueError, match="t"):
        sample_from_ar(Zero(), sched, x_ar, t_start=10, steps=1, noise=noise)


def test_ar_partners():
    torch.manual_seed(0)
    pcnn = PixelCNN(8, (1,))
    x0 = torch.rand(5, 1, 6, 6) * 2 - 1
    comp = ar_partners(pcnn, x0, "completion", keep_rows=3, seed=1, batch_size=2, progress=False)
    assert comp.shape == x0.shape and comp.min() >= -1 and comp.max() <= 1
    assert torch.equal(to_pixels(comp)[:, :, :3], to_pixels(x0)[:, :, :3])        # kept rows are x0's
    assert not torch.equal(to_pixels(comp)[:, :, 3:], to_pixels(x0)[:, :, 3:])    # the rest is sampled
    again = ar_partners(pcnn, x0, "completion", keep_rows=3, seed=1, batch_size=2, progress=False)
    assert torch.equal(comp, again)
    samp = ar_partners(pcnn, x0, "sample", seed=1, progress=False)
    assert samp.shape == x0.shape and not torch.equal(to_pixels(samp)[:, :, :3], to_pixels(x0)[:, :, :3])
    pooled = ar_partners(pcnn, x0, "sample", seed=1, pool=2, progress=False)
    assert torch.equal(pooled[:2], samp[:2]) and torch.equal(pooled[2:4], pooled[:2]) and torch.equal(pooled[4], pooled[0])
    with pytest.raises(ValueError, match="pool"):
        ar_partners(pcnn, x0, "completion", keep_rows=3, pool=2)
    with pytest.raises(ValueError, match="pairing"):
        ar_partners(pcnn, x0, "nearest")
    with pytest.raises(ValueError, match="keep_rows"):
        ar_partners(pcnn, x0, "completion", keep_rows=7)
    with pytest.raises(ValueError, match="x0"):
        ar_partners(pcnn, x0[:, 0], "sample")


def test_sharpness_and_diversity_by_hand():
    checker = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])
    assert sharpness(checker) == pytest.approx(math.sqrt(8))
    assert sharpness(torch.full((2, 1, 5, 5), 0.3)) == 0.0
    sharp = torch.zeros(1, 1, 8, 8)
    sharp[..., 2:6, 2:6] = 1
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1)
    assert sharpness(blurred) < sharpness(sharp)
    both = torch.cat([sharp, blurred, checker.expand(1, 1, 2, 2).repeat(1, 1, 4, 4)])
    per = sharpness(both, per_image=True)
    assert per.shape == (3,) and per[0] == pytest.approx(sharpness(sharp)) and per[1] == pytest.approx(sharpness(blurred))
    assert per.mean() == pytest.approx(sharpness(both))
    assert diversity([[0.0, 0.0], [3.0, 4.0]]) == pytest.approx(5.0)
    assert diversity([[1.0, 2.0]] * 3) == 0.0
    with pytest.raises(ValueError, match="images"):
        sharpness(torch.zeros(1, 1, 1, 5))
    with pytest.raises(ValueError, match="feats"):
        diversity([[1.0, 2.0]])


def test_ink_counts_the_strokes():
    from ardiff.metrics import ink
    blank = -torch.ones(2, 1, 6, 6)
    assert ink(blank) == 0.0 and ink(torch.ones(2, 1, 6, 6)) == 1.0
    thin, thick = blank.clone(), blank.clone()
    thin[..., 2, :] = 1.0
    thick[..., 2, :] = thick[..., 4, :] = 1.0                      # two crisp strokes: no blur, twice the edges
    assert ink(thick) == pytest.approx(2 * ink(thin)) and sharpness(thick) == pytest.approx(2 * sharpness(thin))
    assert ink(blank - 5) == 0.0, "ink reads images clipped to [-1, 1]"
    assert ink(torch.stack([thin[0], thick[0]]), per_image=True).tolist() == pytest.approx([1 / 6, 2 / 6])
    with pytest.raises(ValueError, match="B, C, H, W"):
        ink(torch.zeros(6, 6))
