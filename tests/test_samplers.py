"""ardiff.samplers: timestep spacing and DPM-Solver++(2M), against diffusers and against the exact ODE solution for
Gaussian data (where the ideal noise predictor is known in closed form)."""
import math

import pytest
import torch

from ardiff import blockwise
from ardiff.arprior import sample_from_ar
from ardiff.samplers import SPACINGS, dpm_solver_pp_step, sample, timestep_sequence
from ardiff.schedules import NoiseSchedule

from test_unet_ddpm import GaussianEpsilon

SCHED = NoiseSchedule.linear(1000)
MU, S = 0.3, 0.5


def test_trailing_spacing_makes_every_step_a_real_jump():
    assert timestep_sequence(999, 2) == [999, 499]
    assert timestep_sequence(999, 5) == [999, 799, 599, 399, 199]
    assert timestep_sequence(999, 2, "linspace") == [999, 0]        # the wasted step: S = 2 samples like S = 1
    assert timestep_sequence(999, 5, "leading") == [800, 600, 400, 200, 0]
    for steps in (1, 2, 3, 7, 10, 16, 50, 666, 999):
        seq = timestep_sequence(999, steps)
        assert len(seq) == steps and seq[0] == 999 and seq == sorted(seq, reverse=True)
        assert seq[-1] == round(1000 / steps) - 1     # one stride above 0: no evaluation at t = 0 while S <= 2T/3
    assert timestep_sequence(999, 1000) == list(range(999, -1, -1))
    assert timestep_sequence(599, 3) == [599, 399, 199]              # from an intermediate start (AR priors)
    for spacing in SPACINGS:                                         # S = t_start + 1: every step, distinct
        assert timestep_sequence(9, 10, spacing) == list(range(9, -1, -1))
        assert timestep_sequence(999, 1, spacing) == [999]           # one jump from the start, for every spacing


@pytest.mark.parametrize("t_start", [999, 599, 99])
def test_every_step_count_gives_that_many_distinct_steps_in_range(t_start):
    """For every S: S distinct descending steps in [0, t_start]. (A float arange can hold S + 1 values, the last
    ~1e-13 and so step -1: diffusers' trailing spacing has that bug, e.g. T = 1000, S = 61.)"""
    for spacing in SPACINGS:
        for steps in range(1, t_start + 2):
            seq = timestep_sequence(t_start, steps, spacing)
            assert len(seq) == steps and min(seq) >= 0 and max(seq) <= t_start, (spacing, steps, seq[-3:])
            assert seq == sorted(set(seq), reverse=True)
    assert timestep_sequence(999, 61)[-1] == 15


@pytest.mark.parametrize("spacing", SPACINGS)
def test_spacing_equals_diffusers(spacing):
    diffusers = pytest.importorskip("diffusers")
    for steps in (2, 3, 5, 7, 10, 20, 25, 50, 64, 100, 333, 1000):     # S = 1: diffusers' [0] is not a sampler
        ref = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
        ref.set_timesteps(steps)
        assert timestep_sequence(999, steps, spacing) == ref.timesteps.tolist(), (spacing, steps)


def test_timestep_sequence_bad_arguments():
    with pytest.raises(ValueError, match="spacing must be one of"):
        timestep_sequence(999, 5, "uniform")
    for steps in (0, 1001, 2.0, True):
        with pytest.raises(ValueError, match="steps must be an int"):
            timestep_sequence(999, steps)


def _reference_dpm_solver(model, x_T, steps):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, trained_betas=SCHED.betas.double().numpy(), algorithm_type="dpmsolver++",
        solver_order=2, timestep_spacing="trailing", lower_order_final=True, final_sigmas_type="zero")
    ref.set_timesteps(steps)
    x = x_T.clone()
    for t in ref.timesteps:
        x = ref.step(model(x, torch.full((len(x),), int(t))), t, x).prev_sample
    return x


@pytest.mark.parametrize("steps", [1, 2, 5, 10, 20])
def test_dpm_solver_equals_diffusers_on_the_exact_eps_model(steps):
    model = GaussianEpsilon(SCHED, MU, S)
    x_T = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    ref = _reference_dpm_solver(model, x_T, steps)
    ours = sample(model, SCHED, x_T.shape, steps=steps, method="dpm-solver++", x_T=x_T)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_dpm_solver_is_closer_to_the_exact_ode_solution_than_ddim():
    """For N(mu, s^2) data the probability-flow ODE keeps z = (x_t - a mu) / sqrt(a^2 s^2 + b^2) fixed (a monotone map
    between Gaussians). Both samplers end with the same step, x0_hat at their last timestep t_S; so the exact answer
    to compare with is x0_hat of the exact ODE state at t_S. At 10 steps DPM-Solver++(2M) lands far closer to it."""
    model = GaussianEpsilon(SCHED, MU, S)
    x_T = torch.randn(256, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    abar = SCHED.alphas_cumprod.double()

    def exact(steps):
        t_last, a_T = timestep_sequence(999, steps)[-1], abar[-1]
        z = (x_T.double() - a_T.sqrt() * MU) / (a_T * S ** 2 + 1 - a_T).sqrt()
        a = abar[t_last]
        x_last = a.sqrt() * MU + (a * S ** 2 + 1 - a).sqrt() * z                   # the ODE's state at t_S
        eps = model(x_last.float(), torch.full((len(x_T),), t_last)).double()
        return ((x_last - (1 - a).sqrt() * eps) / a.sqrt()).float()               # its x0_hat

    err = {m: (sample(model, SCHED, x_T.shape, steps=10, method=m, x_T=x_T) - exact(10)).abs().max().item()
           for m in ("ddim", "dpm-solver++")}
    assert err["dpm-solver++"] < err["ddim"] / 3, err
    many = sample(model, SCHED, x_T.shape, steps=200, method="dpm-solver++", x_T=x_T)
    assert (many - exact(200)).abs().max().item() < min(0.01, err["dpm-solver++"] / 10)  # it converges


def test_dpm_solver_step_by_hand():
    """The first-order step is DDIM (eta = 0) written in lambda; the second-order one adds D1 / 2."""
    x, x0, x0_prev = (torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(i)) for i in range(3))
    abar = SCHED.alphas_cumprod.double()
    a, s = abar.sqrt(), (1 - abar).sqrt()
    lam = (a / s).log()
    t, tn, tp = 500, 300, 700
    h = lam[tn] - lam[t]
    ddim = a[tn] * x0 + s[tn] * (x - a[t] * x0) / s[t]                   # eq. 12 of Song et al. with eps from x0
    torch.testing.assert_close(dpm_solver_pp_step(x, x0, t, tn, SCHED), ddim.float(), atol=1e-5, rtol=0)
    r = (lam[t] - lam[tp]) / h
    D = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_prev
    want = s[tn] / s[t] * x - a[tn] * torch.expm1(-h) * D
    torch.testing.assert_close(dpm_solver_pp_step(x, x0, t, tn, SCHED, x0_prev, tp), want.float(), atol=1e-5, rtol=0)
    assert torch.equal(dpm_solver_pp_step(x, x0, t, -1, SCHED), x0)      # to sigma = 0: the data prediction
    with pytest.raises(ValueError, match="first order"):
        dpm_solver_pp_step(x, x0, t, -1, SCHED, x0_prev, tp)
    with pytest.raises(ValueError, match="t_next"):
        dpm_solver_pp_step(x, x0, t, t, SCHED)
    with pytest.raises(ValueError, match="go together"):
        dpm_solver_pp_step(x, x0, t, tn, SCHED, x0_prev)
    with pytest.raises(ValueError, match="t_prev must be > t"):
        dpm_solver_pp_step(x, x0, t, tn, SCHED, x0_prev, 100)


@pytest.mark.parametrize("method", ["ddpm", "ddim", "dpm-solver++"])
def test_clip_x0_is_explicit_and_the_same_for_every_method(method):
    """Data far outside [-1, 1]: unclipped samples leave the range, clipped ones (x0_hat in [-1, 1]) stay in it."""
    model = GaussianEpsilon(SCHED, 0.0, 3.0)
    kw = dict(steps=10, method=method, generator=torch.Generator().manual_seed(0))
    free = sample(model, SCHED, (64, 1, 4, 4), **kw)
    kw["generator"] = torch.Generator().manual_seed(0)
    clipped = sample(model, SCHED, (64, 1, 4, 4), clip_x0=True, **kw)
    assert free.abs().max() > 2
    assert clipped.abs().max() <= 1 + 1e-5


def test_clipping_acts_in_every_dpm_solver_step():
    """Three clipped DPM-Solver++ steps by hand: the clipped x0_hat enters the first-order step, the second-order
    step (as x0_hat and as the previous one) and the last; the sampler must give exactly that."""
    model = GaussianEpsilon(SCHED, 2.0, 1.0)                              # data far outside [-1, 1]
    x_T = torch.randn(16, 1, 2, 2, generator=torch.Generator().manual_seed(4))
    abar = SCHED.alphas_cumprod

    def x0(x, t, clip=True):
        eps = model(x, torch.full((len(x),), t))
        x0_hat = (x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
        return x0_hat.clamp(-1, 1) if clip else x0_hat

    def run(clip):
        t1, t2, t3 = timestep_sequence(999, 3)
        a = x0(x_T, t1, clip)
        x1 = dpm_solver_pp_step(x_T, a, t1, t2, SCHED)
        b = x0(x1, t2, clip)
        x2 = dpm_solver_pp_step(x1, b, t2, t3, SCHED, a, t1)
        return x0(x2, t3, clip), (a, b)

    want, _ = run(True)
    end_only, (a, b) = run(False)
    assert a.max() > 1.5 and b.max() > 1.5                               # clipping is active at every step here
    assert (want - end_only.clamp(-1, 1)).abs().max() > 1e-3             # so clipping only at the end would differ
    got = sample(model, SCHED, x_T.shape, steps=3, method="dpm-solver++", x_T=x_T, clip_x0=True)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["ddpm", "dpm-solver++"])
def test_batch_size_changes_nothing(method):
    """The network runs on chunks of batch_size images; the random draws are the whole batch's, so nothing changes
    but rounding, on a real convolutional network as on the per-pixel Gaussian one."""
    from ardiff.unet import UNet

    torch.manual_seed(0)
    net = UNet(in_channels=1, image_size=8, base_channels=8, channel_mults=[1, 2], num_res_blocks=1, attention=True,
               num_heads=2, groups=4)
    sched = NoiseSchedule.linear(50)
    for model, shape in ((GaussianEpsilon(SCHED, MU, S), (10, 1, 2, 2)), (net, (10, 1, 8, 8))):
        schedule = SCHED if shape[-1] == 2 else sched
        run = [sample(model, schedule, shape, steps=8, method=method, batch_size=b,
                      generator=torch.Generator().manual_seed(3)) for b in (3, 64)]
        torch.testing.assert_close(run[0], run[1], atol=1e-5, rtol=0)


def test_sample_argument_errors():
    model = GaussianEpsilon(SCHED, MU, S)
    for kw, msg in ((dict(method="euler"), "method must be one of"), (dict(spacing="even"), "spacing must be one of"),
                    (dict(method="dpm-solver++", eta=0.5), "eta applies"), (dict(batch_size=0), "batch_size"),
                    (dict(t_start=1000), "t_start"), (dict(steps=0), "steps")):
        with pytest.raises(ValueError, match=msg):
            sample(model, SCHED, (2, 1, 2, 2), **kw)


class BlockEps(torch.nn.Module):
    """A block denoiser stand-in: the Gaussian eps of the noisy channel (channel 0 of the block input)."""

    def __init__(self, schedule):
        super().__init__()
        self.inner = GaussianEpsilon(schedule, 0.0, 0.5)
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, inp, t, y):
        return self.inner(inp[:, :1], t)


def test_blockwise_and_ar_starts_take_spacing_and_dpm_solver():
    sched = NoiseSchedule.linear(100)
    model = BlockEps(sched)
    for method in ("ddim", "dpm-solver++"):
        for spacing in SPACINGS:
            x = blockwise.sample(model, sched, 3, 7, 4, method=method, spacing=spacing, size=28,
                                 generator=torch.Generator().manual_seed(0), clip_x0=True)
            assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1
    with pytest.raises(ValueError, match="spacing"):
        blockwise.sample(model, sched, 3, 7, 4, spacing="even")
    eps = GaussianEpsilon(sched, MU, S)
    x_ar, noise = torch.zeros(4, 1, 2, 2), torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    out = {sp: sample_from_ar(eps, sched, x_ar, 59, 3, noise, method="dpm-solver++", spacing=sp)
           for sp in ("trailing", "linspace")}
    assert not torch.allclose(out["trailing"], out["linspace"])         # the spacing reaches the sampler
    assert math.isfinite(out["trailing"].sum().item())

