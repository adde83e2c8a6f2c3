"""Block-wise autoregressive diffusion: causality, kept blocks, evaluation counts, the masked loss, arguments."""
import numpy as np
import pytest
import torch

from ardiff import NoiseSchedule, blockwise
from ardiff.samplers import timestep_sequence
from ardiff.unet import UNet

SCHED = NoiseSchedule.linear(1000)


def tiny():
    torch.manual_seed(0)
    m = UNet(in_channels=3, out_channels=1, base_channels=8, channel_mults=(1, 2, 2), num_res_blocks=1,
             attention=False, groups=4, num_classes=len(blockwise.BLOCK_ROWS))
    for p in m.conv_out.parameters():  # not the zero predictor: outputs must depend on the input
        torch.nn.init.normal_(p, std=0.1)
    return m.eval()


class Counter(torch.nn.Module):
    """eps = 0; counts calls and remembers their inputs."""

    def __init__(self):
        super().__init__()
        self.w, self.calls, self.inputs = torch.nn.Parameter(torch.zeros(())), 0, []

    def forward(self, inp, t, y):
        self.calls += 1
        self.inputs.append(inp.clone())
        return torch.zeros_like(inp[:, :1])


def digits(n=4, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("h,k", [(1, 0), (4, 3), (7, 2), (14, 0)])
def test_the_output_for_block_k_ignores_every_pixel_below_it(h, k):
    model, x, noisy = tiny(), digits(), digits(seed=1)
    later = x.clone()
    later[:, :, (k + 1) * h:] = digits(seed=2)[:, :, (k + 1) * h:]     # change everything below block k
    ctx, cur = blockwise.block_masks(torch.full((4,), k), torch.full((4,), h), 28)
    t, y = torch.full((4,), 500), torch.full((4,), blockwise.BLOCK_ROWS.index(h))
    with torch.no_grad():
        a = model(blockwise.denoiser_input(x, noisy, ctx, cur), t, y)
        b = model(blockwise.denoiser_input(later, noisy, ctx, cur), t, y)
        c = model(blockwise.denoiser_input(digits(seed=3), noisy, ctx, cur), t, y)  # the context changed
        leak = noisy.clone()
        leak[:, :, :k * h], leak[:, :, (k + 1) * h:] = 5.0, -5.0        # noisy pixels outside the block
        d = model(blockwise.denoiser_input(x, leak, ctx, cur), t, y)
    assert torch.equal(a, b) and torch.equal(a, d)
    if k > 0:
        assert not torch.allclose(a, c), "the model does not see its context"


def test_masks_mark_the_context_and_the_current_block():
    ctx, cur = blockwise.block_masks(torch.tensor([0, 2]), torch.tensor([7, 4]), 28)
    assert ctx[0].sum() == 0 and cur[0, 0, :7].eq(1).all() and cur[0, 0, 7:].eq(0).all()
    assert ctx[1, 0, :8].eq(1).all() and ctx[1, 0, 8:].eq(0).all()
    assert cur[1, 0, 8:12].eq(1).all() and cur[1].sum() == 4 * 28


def test_sampling_is_causal_and_keeps_the_kept_blocks_exactly():
    model, x = tiny(), digits()
    g = lambda: torch.Generator().manual_seed(5)
    a = blockwise.sample(model, SCHED, 4, 7, 2, generator=g(), context=x, keep_blocks=2)
    assert torch.equal(a[:, :, :14], x[:, :, :14])
    changed = x.clone()
    changed[:, :, 14:] = digits(seed=9)[:, :, 14:]                      # rows the completion must not read
    b = blockwise.sample(model, SCHED, 4, 7, 2, generator=g(), context=changed, keep_blocks=2)
    assert torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


@pytest.mark.parametrize("h,S,keep", [(28, 1, 0), (28, 5, 0), (7, 3, 0), (7, 3, 2), (1, 2, 0), (2, 1, 13)])
def test_evaluations_match_nfe(h, S, keep):
    m = Counter()
    ctx = digits() if keep else None
    blockwise.sample(m, SCHED, 4, h, S, context=ctx, keep_blocks=keep)
    assert m.calls == blockwise.nfe(h, S, keep) == (28 // h - keep) * S
    if h == 28:
        assert m.calls == S


def test_the_loss_counts_only_the_current_block():
    """A model that predicts the true eps on the current block and garbage elsewhere has zero loss."""
    x0 = digits(8)

    class Oracle(torch.nn.Module):
        def forward(self, inp, t, y):
            abar = SCHED.alphas_cumprod[t].view(-1, 1, 1, 1)
            cur = inp[:, 2:3]
            eps = (inp[:, :1] - abar.sqrt() * x0) / (1 - abar).sqrt()      # exact on the current block
            return eps * cur + 1e3 * (1 - cur)

    assert blockwise.loss(Oracle(), x0, SCHED, torch.Generator().manual_seed(0)) < 1e-6
    # and the zero predictor pays E[eps^2] = 1 per current pixel, whatever the block size
    assert abs(blockwise.loss(Counter(), x0.repeat(64, 1, 1, 1), SCHED, torch.Generator().manual_seed(0)) - 1) < 0.05


def test_the_loss_draws_every_block_size_and_position():
    m = Counter()
    for s in range(40):
        blockwise.loss(m, digits(16), SCHED, torch.Generator().manual_seed(s))
    cur = torch.cat([i[:, 2] for i in m.inputs])                        # (N, 28, 28) current-block masks
    heights = cur[:, :, 0].sum(1).long()
    first_rows = cur[:, :, 0].argmax(1)
    assert set(heights.tolist()) == set(blockwise.BLOCK_ROWS)
    assert (first_rows % heights == 0).all() and (first_rows + heights <= 28).all()   # whole blocks, in the image
    for h in (4, 7, 14):                                                # every block index is drawn
        assert set((first_rows[heights == h] // h).tolist()) == set(range(28 // h))


def test_bad_arguments_raise():
    m = Counter()
    with pytest.raises(ValueError, match="block_rows must be one of"):
        blockwise.sample(m, SCHED, 2, 5, 1)
    with pytest.raises(ValueError, match="steps_per_block must be an int >= 1"):
        blockwise.sample(m, SCHED, 2, 7, 0)
    with pytest.raises(ValueError, match="keep_blocks must be in \\[0, 4\\]"):
        blockwise.sample(m, SCHED, 2, 7, 1, context=digits(2), keep_blocks=5)
    with pytest.raises(ValueError, match="context must be given exactly when keep_blocks > 0"):
        blockwise.sample(m, SCHED, 2, 7, 1, keep_blocks=1)
    with pytest.raises(ValueError, match="context must have shape"):
        blockwise.sample(m, SCHED, 2, 7, 1, context=digits(3), keep_blocks=1)
    with pytest.raises(ValueError, match="method must be"):
        blockwise.sample(m, SCHED, 2, 7, 1, method="euler")
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        blockwise.sample(m, SCHED, 0, 7, 1)
    with pytest.raises(ValueError, match="block_rows must be one of"):
        blockwise.loss(m, digits(2), SCHED, block_rows=(3,))


def test_the_zoo_recipe_embeds_every_block_height_and_reads_two_masks():
    from ardiff import zoo
    r = zoo.recipe("mnist-blockwise")
    assert r.config["num_classes"] == len(blockwise.BLOCK_ROWS)
    assert (r.config["in_channels"], r.config["out_channels"]) == (3, 1)
    assert r.train == zoo.recipe("mnist-ddpm").train, "the block-wise model should get the plain DDPM's budget"


def test_seams_find_a_jump_at_a_block_boundary():
    x = torch.zeros(2, 1, 28, 28)
    x[1, :, 14:] = 1.0                                                   # image 1 jumps between rows 13 and 14
    b7, i7 = blockwise.seams(x, 7)
    assert torch.allclose(b7, torch.tensor([0.0, 1 / 3])) and i7.tolist() == [0.0, 0.0]  # rows 7, 14, 21 start blocks
    b4, i4 = blockwise.seams(x, 4)                                       # row 14 is inside a block of 4 rows
    assert b4[1] == 0 and i4[1] > 0
    assert torch.isnan(blockwise.seams(x, 28)[0]).all()


def test_block_frechet_is_zero_for_the_same_set_and_grows_where_blocks_differ():
    x = digits(400)
    y = x.clone()
    y[:, :, 21:] = digits(400, seed=7)[:, :, 21:] * 0.2                 # only the last block of 7 rows differs
    same, diff = blockwise.block_frechet(x, x, 7), blockwise.block_frechet(y, x, 7)
    assert max(abs(v) for v in same) < 1e-6
    assert max(diff[:3]) < 1e-6 < diff[3]


def test_unet_out_channels():
    from ardiff.unet import UNetConfig
    with pytest.raises(ValueError, match="out_channels must be None or an int >= 1"):
        UNetConfig(out_channels=0)
    m = UNet(in_channels=3, out_channels=1, base_channels=8, channel_mults=(1,), num_res_blocks=1, attention=False,
             groups=4)
    assert m(torch.zeros(2, 3, 28, 28), torch.zeros(2, dtype=torch.long)).shape == (2, 1, 28, 28)
    assert "out_channels" not in UNet(base_channels=8, groups=4).config_dict()  # old recipes keep their hash


def test_seam_ratio_is_one_for_real_images_and_large_for_seams():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 1, 28, 28, generator=g).cumsum(-2) / 5           # smooth along the rows
    ratio, sd = blockwise.seam_ratio(real, real, 7)
    assert ratio == pytest.approx(1.0) and sd == pytest.approx(0.0, abs=1e-12)
    seamed = real.clone()
    for r in (7, 14, 21):
        seamed[..., r:, :] += 2 * torch.randn(200, 1, 1, 28, generator=g)   # a jump at each block boundary
    ratio, sd = blockwise.seam_ratio(seamed, real, 7)
    assert ratio > 1 + 5 * sd and sd > 0
    for bad in (1, 28):
        with pytest.raises(ValueError, match="block_rows"):
            blockwise.seam_ratio(real, real, bad)
    with pytest.raises(ValueError, match="same number"):
        blockwise.seam_ratio(real, real[:100], 7)


def test_block_frechet_ratio_finds_errors_that_grow_down_the_image_and_none_where_there_are_none():
    real, base = digits(300, seed=1), digits(300, seed=2)
    grows = digits(300, seed=3)
    for k in range(14):                                               # h = 2: block k is scaled by 1 + k / 10
        grows[:, :, 2 * k:2 * k + 2] *= 1 + k / 10
    r = blockwise.block_frechet_ratio(grows, base, real, 2, draws=20)
    assert r["blocks"] == list(range(14)) and r["ratio"].shape == r["ratio_sd"].shape == (14,)
    assert r["slope"] > 5 * r["slope_sd"] > 0 and r["rise"] > 5 * r["rise_sd"] > 0
    fs, fb = blockwise.block_frechet(grows, real, 2), blockwise.block_frechet(base, real, 2)
    assert r["pooled"] == pytest.approx(sum(fs) / sum(fb)) and r["ratio"][3] == pytest.approx(fs[3] / fb[3])
    sub = blockwise.block_frechet_ratio(grows, base, real, 2, blocks=[3, 5, 8], draws=2)    # rows of blocks 3, 5, 8 only
    assert sub["blocks"] == [3, 5, 8] and sub["ratio"] == pytest.approx([fs[k] / fb[k] for k in (3, 5, 8)])
    null = blockwise.block_frechet_ratio(digits(300, seed=4), base, real, 2, draws=20)   # same distribution: no trend
    assert not (null["slope"] > 2 * null["slope_sd"] and null["rise"] > 2 * null["rise_sd"])
    assert abs(null["pooled"] - 1) < 3 * null["pooled_sd"] and null["pooled_sd"] > 0


@pytest.mark.parametrize("fn", [blockwise.block_frechet_ratio, blockwise.compounding])
def test_block_frechet_bootstraps_reject_bad_arguments(fn):
    x = digits(100)
    with pytest.raises(ValueError, match="blocks must be"):
        fn(x, x, x, 7, blocks=[4])
    with pytest.raises(ValueError, match="increasing"):
        fn(x, x, x, 1, blocks=[5, 3])
    with pytest.raises(ValueError, match="draws must be at least 2"):
        fn(x, x, x, 1, draws=1)
    with pytest.raises(ValueError, match="block_rows = 4 gives 112 pixels per block, too many for 100 images"):
        fn(x, x, x, 4)
    with pytest.raises(ValueError, match="block_rows must be one of"):
        fn(x, x, x, 5)


# ---------------------------------------------------------------- block models fine-tuned from mnist-ddpm (issue 28)
@pytest.fixture(scope="module")
def ddpm():
    from ardiff import zoo
    return zoo.load("mnist-ddpm", device="cpu")


def _eps_at(model, x_t, t, h, k=0):
    n = len(x_t)
    ctx, cur = blockwise.block_masks(torch.full((n,), k), torch.full((n,), h), 28)
    y = torch.full((n,), blockwise.BLOCK_ROWS.index(h))
    return model(blockwise.denoiser_input(x_t, x_t, ctx, cur), t, y), ctx, cur


def test_a_block_model_from_the_ddpm_is_the_ddpm_at_h28_before_fine_tuning(ddpm):
    """Zero weights on the two mask channels and a zero embedding of h: the DDPM's eps at h = 28 (to ~1e-5)."""
    block = blockwise.from_ddpm(ddpm)
    assert block.conv_in.weight[:, 1:].abs().max() == 0 and block.label_emb.weight.abs().max() == 0
    x_t = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 100, 300, 600, 900, 999])
    with torch.no_grad():
        ref = ddpm(x_t, t)
        at28, _, _ = _eps_at(block, x_t, t, 28)
        at7, ctx, cur = _eps_at(block, x_t, t, 7, k=2)                 # the masks are read with zero weight
        ref7 = ddpm(x_t * (ctx + cur), t)                               # channel 0 only: context + block, zeros below
    torch.testing.assert_close(at28, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(at7, ref7, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="block_model must be the DDPM's UNet"):
        blockwise.init_from_ddpm(UNet(in_channels=3, out_channels=1, base_channels=16, groups=4), ddpm)
    with pytest.raises(ValueError, match="ddpm must be a 1-channel unconditional UNet"):
        blockwise.init_from_ddpm(block, block)


def test_the_per_height_recipes_start_from_the_ddpm_and_train_their_height_only(ddpm):
    from ardiff import zoo, zoo_train
    base = zoo.recipe("mnist-blockwise")
    for h in (2, 4, 7, 14):
        r = zoo.recipe(f"mnist-blockwise-h{h}")
        assert r.init == "mnist-ddpm" and r.block_rows == h and r.metric["block_rows"] == h
        assert r.config == base.config and r.objective == base.objective and r.metric["steps"] == base.metric["steps"]
        assert (r.train.steps, r.train.batch_size, r.train.lr) == (1500, 64, 2e-4) and r.train.ema_decay > 0
        assert r.to_dict()["block_rows"] == h and r.to_dict()["init"]["sha256"] == zoo.card("mnist-ddpm")["sha256"]
    assert "block_rows" not in base.to_dict() and base.hash == zoo.card("mnist-blockwise")["recipe_hash"]
    model = zoo_train.initial_model(zoo.recipe("mnist-blockwise-h7"))   # the channel-expanding load of the recipe
    x_t, t = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1)), torch.tensor([50, 700])
    with torch.no_grad():
        torch.testing.assert_close(_eps_at(model.eval(), x_t, t, 28)[0], ddpm(x_t, t), rtol=0, atol=1e-5)

    class Spy(torch.nn.Module):                                          # the loss draws h = 7 blocks only
        def __init__(self):
            super().__init__()
            self.heights = set()

        def forward(self, inp, t, y):
            self.heights |= set(inp[:, 2, :, 0].sum(1).long().tolist())
            return torch.zeros_like(inp[:, :1])

    spy = Spy()
    zoo_train.objective(zoo.recipe("mnist-blockwise-h7"))(spy, (digits(32),), torch.Generator().manual_seed(0))
    assert spy.heights == {7}
    with pytest.raises(ValueError, match="block_rows goes with objective 'blockwise-eps-mse'"):
        zoo.recipe("mnist-ddpm").variant("x", block_rows=7)
    with pytest.raises(ValueError, match="must be one of"):
        base.variant("x", block_rows=5)


def test_a_per_height_run_starts_from_the_ddpm_and_trains_its_height(ddpm, tmp_path):
    """train_recipe end to end on a tiny variant (2 steps of 8 images, lr ~ 0): the channel-expanding init is used."""
    from ardiff import zoo
    r = zoo.recipe("mnist-blockwise-h14")
    tiny_run = r.variant("mnist-blockwise-h14", data={**r.data, "limit": 16},
                         train=dict(steps=2, batch_size=8, lr=1e-12, warmup_steps=1, checkpoint_every=None, log_every=1,
                                    progress=False))
    model, info = zoo.train_recipe(tiny_run, device="cpu", progress=False, cache=tmp_path)
    assert info["steps"] == 2 and info["final_loss"] > 0
    x_t, t = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2)), torch.tensor([10, 500])
    with torch.no_grad():
        torch.testing.assert_close(_eps_at(model, x_t, t, 28)[0], ddpm(x_t, t), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- samplers per block
@pytest.mark.parametrize("method", ["ddim", "ddpm", "dpm-solver++"])
@pytest.mark.parametrize("h,S", [(7, 1), (7, 2), (14, 5), (4, 3)])
def test_each_block_makes_exactly_S_evaluations_at_the_trailing_steps(method, h, S):
    """Counted with a forward hook on the network: block k gets S calls, at trailing spacing's S timesteps."""
    model, calls = tiny(), []
    hook = model.register_forward_hook(lambda mod, args, out: calls.append(
        (int(args[0][0, 2, :, 0].argmax()) // h, int(args[1][0]))))   # (block index from the current mask, t)
    for clip in (False, True):
        calls.clear()
        blockwise.sample(model, SCHED, 3, h, S, method=method, clip_x0=clip, generator=torch.Generator().manual_seed(0))
        seq = timestep_sequence(999, S, "trailing")
        assert calls == [(k, t) for k in range(28 // h) for t in seq]
    calls.clear()
    blockwise.teacher_forced(model, SCHED, digits(3), h, S, method=method)
    assert len(calls) == blockwise.nfe(h, S)
    hook.remove()


def test_clip_x0_is_explicit_and_reaches_every_block_step():
    model = tiny()
    with torch.no_grad():                                                  # a large eps: x0_hat leaves [-1, 1]
        model.conv_out.bias.fill_(3.0)
    a, b = (blockwise.sample(model, SCHED, 2, 7, 4, method="dpm-solver++", clip_x0=c,
                             generator=torch.Generator().manual_seed(0)) for c in (False, True))
    assert not torch.allclose(a, b)


# ---------------------------------------------------------------- teacher forcing and compounding
def test_teacher_forcing_reads_the_real_rows_above_and_nothing_below():
    model, real = tiny(), digits(4)
    g = lambda: torch.Generator().manual_seed(3)
    forced = blockwise.teacher_forced(model, SCHED, real, 7, 2, generator=g())
    free = blockwise.sample(model, SCHED, 4, 7, 2, generator=g())
    assert forced.shape == real.shape and forced.abs().max() <= 1
    assert torch.equal(forced[:, :, :7], free[:, :, :7])                 # block 0 has no context: the same draw
    assert not torch.allclose(forced[:, :, 7:], free[:, :, 7:])          # later blocks see real rows, not their own
    changed = real.clone()
    changed[:, :, 21:] = digits(4, seed=8)[:, :, 21:]                    # the last block's real rows are never read
    assert torch.equal(blockwise.teacher_forced(model, SCHED, changed, 7, 2, generator=g()), forced)
    changed[:, :, 14:21] = digits(4, seed=9)[:, :, 14:21]                # block 2's rows: only block 3 changes
    other = blockwise.teacher_forced(model, SCHED, changed, 7, 2, generator=g())
    assert torch.equal(other[:, :, :21], forced[:, :, :21]) and not torch.equal(other[:, :, 21:], forced[:, :, 21:])
    with pytest.raises(ValueError, match="x_real must be"):
        blockwise.teacher_forced(model, SCHED, real[:, :, :, :20], 7, 2)
    with pytest.raises(ValueError, match="block_rows must be one of"):
        blockwise.teacher_forced(model, SCHED, real, 5, 2)
    with pytest.raises(ValueError, match="method must be"):
        blockwise.teacher_forced(model, SCHED, real, 7, 2, method="euler")


def _stripes(n, seed, scale=None):
    """(n, 1, 28, 4) toy images: 7 blocks of 4 rows x 4 columns (16 pixels), block k scaled by scale(k)."""
    x = torch.randn(n, 1, 28, 4, generator=torch.Generator().manual_seed(seed))
    if scale is not None:
        for k in range(7):
            x[:, :, 4 * k:4 * k + 4] *= scale(k)
    return x


def test_compounding_finds_free_blocks_that_fall_behind_and_nothing_in_a_null():
    real, forced = _stripes(300, 1), _stripes(300, 2)
    free = forced.clone()
    for k in range(1, 7):                                                 # free block k drifts by 8% per block
        free[:, :, 4 * k:4 * k + 4] *= 1 + 0.08 * k
    r = blockwise.compounding(free, forced, real, 4, draws=200)
    assert r["blocks"] == list(range(7)) and r["diff"].shape == r["sd"].shape == r["p"].shape == (7,)
    assert r["diff"][0] == 0 and r["sd"][0] == 0 and r["p"][0] == 1     # block 0: the same pixels in both
    assert (r["z"][3:] > 3).all() and (np.diff(r["diff"]) > 0).all()
    fs, ff = blockwise.block_frechet(free, real, 4), blockwise.block_frechet(forced, real, 4)
    assert r["free"] == pytest.approx(fs) and r["forced"] == pytest.approx(ff)
    assert r["differences"][5].value == pytest.approx(fs[5] - ff[5]) and r["draws"] == 200
    from ardiff.claims import holm
    assert holm(r["p"])[6] and not holm(r["p"])[0]
    trend = r["trend"]                                                    # one test per height: the slope of d_k
    assert trend.value == pytest.approx(np.polyfit(np.arange(7), r["diff"], 1)[0]) and trend.z > 3
    null = blockwise.compounding(_stripes(300, 3), forced, real, 4, blocks=[1, 3, 5], draws=200)
    assert null["blocks"] == [1, 3, 5] and not any(holm(null["p"]))      # the same distribution: no block differs
    assert (null["sd"] > 0).all() and abs(null["trend"].z) < 2 and null["trend"].sd > 0
    level = forced.clone()                                                # behind by the same amount at every block
    level[:, :, 4:] *= 1.3
    flat = blockwise.compounding(level, forced, real, 4, blocks=[1, 2, 3, 4, 5, 6], draws=200)
    assert (flat["z"] > 3).all() and abs(flat["trend"].z) < 2            # behind everywhere, but no trend
    assert blockwise.compounding(free, forced, real, 4, blocks=[3], draws=20)["trend"] is None


def test_compounding_needs_paired_sample_sets():
    x = _stripes(100, 0)                                                  # the other checks: test_block_frechet_bootstraps...
    with pytest.raises(ValueError, match="same shape"):
        blockwise.compounding(x, x[:50], x, 4)
    with pytest.raises(ValueError, match="same shape"):
        blockwise.compounding(x, x, digits(100), 4)


# ---------------------------------------------------------------- cost models
@pytest.mark.parametrize("h,S", [(1, 4), (2, 8), (7, 1), (7, 16), (14, 2), (28, 10)])
def test_unet_cost_is_K_times_S_full_passes(h, S):
    assert blockwise.passes(h, S) == (28 // h) * S == blockwise.nfe(h, S)


def test_kv_cache_cost_is_about_S_passes_whatever_the_block_height():
    for S in (1, 4, 16):
        assert blockwise.passes(28, S, model="kv-cache") == pytest.approx(S)   # one block: the DDPM
        for h in (1, 2, 4, 7, 14):
            K = 28 // h
            no_writes = blockwise.passes(h, S, model="kv-cache", cache_writes=False)
            assert no_writes == pytest.approx(S * (0.75 + 0.25 * (K + 1) / (2 * K)))   # f = 0.25
            writes = sum((0.75 / K + 0.25 * (k + 1) / K ** 2) for k in range(K - 1))  # one clean pass per block but the last
            assert blockwise.passes(h, S, model="kv-cache") == pytest.approx(no_writes + writes)
            assert S / 2 < no_writes <= S < blockwise.passes(h, S)                   # far below the U-Net's K S
    # h = 7, S = 8: blocks of 0.25 of a pass, attention to 1..4 quarters of the image
    assert blockwise.passes(7, 8, model="kv-cache", attention_share=0.0, cache_writes=False) == pytest.approx(8)
    assert blockwise.passes(7, 8, model="kv-cache", attention_share=1.0, cache_writes=False) == pytest.approx(8 * 10 / 16)
    with pytest.raises(ValueError, match="model must be one of"):
        blockwise.passes(7, 8, model="transformer")
    with pytest.raises(ValueError, match="attention_share must be a number in \\[0, 1\\]"):
        blockwise.passes(7, 8, model="kv-cache", attention_share=1.5)
    with pytest.raises(ValueError, match="steps_per_block must be an int >= 1"):
        blockwise.passes(7, 0)
    with pytest.raises(ValueError, match="block_rows must be one of"):
        blockwise.passes(5, 2)


def test_plateau_steps_stops_at_the_first_setting_that_is_not_within_the_margin():
    from ardiff.claims import Difference

    d = {1: Difference(30.0, 2.0), 2: Difference(4.0, 1.0), 4: Difference(0.5, 1.0), 8: Difference(-0.2, 0.5),
         16: Difference(0.1, 0.5)}
    assert blockwise.plateau_steps(d, margin=3.0) == (4, [16, 8, 4])       # 2: 4 + 1.64 > 3 fails; 1 is not tested
    assert blockwise.plateau_steps(d, margin=10.0) == (2, [16, 8, 4, 2])
    d[8] = Difference(5.0, 0.5)                                             # a failure above: no plateau below it
    assert blockwise.plateau_steps(d, margin=3.0) == (16, [16])
    assert blockwise.plateau_steps({16: Difference(5.0, 0.5)}, margin=3.0) == (None, [])
    assert blockwise.plateau_steps({}, margin=3.0) == (None, [])
    with pytest.raises(ValueError, match="margin"):
        blockwise.plateau_steps(d, margin=0)
    with pytest.raises(ValueError, match="differences must map"):
        blockwise.plateau_steps({0.5: Difference(0.0, 1.0)}, margin=1.0)


def test_split_by_cost_keeps_order_and_balances_the_parts():
    costs = [1, 1, 1, 1, 4, 1, 1, 2]                                       # total 12, 3 parts: mean 4
    parts = blockwise.split_by_cost(costs, 3)
    assert [i for p in parts for i in p] == list(range(len(costs)))       # every item once, in order
    assert [sum(costs[i] for i in p) for p in parts] == [4, 4, 4]
    assert blockwise.split_by_cost([5, 1], 3) == [[], [0], [1]]            # part 0's share lies inside item 0
    assert blockwise.split_by_cost([], 2) == [[], []]
    assert blockwise.split_by_cost([0, 0], 2) == [[0, 1], []]
    with pytest.raises(ValueError, match="parts"):
        blockwise.split_by_cost([1], 0)
    with pytest.raises(ValueError, match="costs"):
        blockwise.split_by_cost([1, -1], 2)


def test_split_by_cost_leaves_no_remainder_to_the_last_part():
    """Boundaries by cumulative cost: every part within the mean plus the largest item. Closing a part before it
    overfills (the old greedy split) left every shortfall to the last: 16 of 40 in 4 parts of mean 10 here, and
    38 of lesson 07's 86 minutes in its grid."""
    costs = [4] * 10
    parts = blockwise.split_by_cost(costs, 4)
    assert [sum(costs[i] for i in p) for p in parts] == [8, 12, 8, 12]
    n, n_c, cap, corner = 500, 200, 128, 896                               # lesson 07's grid in its first budget
    nfe = [blockwise.nfe(h, S) if h < 28 else S for h in (2, 4, 7, 14, 28) for S in (1, 2, 4, 8, 16, 32, 64)]
    grid = [v * (n_c if v > cap else n) for v in nfe if v <= corner]
    for costs, k in ((grid, 5), (grid, 6), ([9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9], 3), (list(range(20)), 4),
                     (list(range(20))[::-1], 4)):
        parts = blockwise.split_by_cost(costs, k)
        assert [i for p in parts for i in p] == list(range(len(costs)))
        assert max(sum(costs[i] for i in p) for p in parts) <= sum(costs) / k + max(costs)
    grid_parts = [sum(grid[i] for i in p) for p in blockwise.split_by_cost(grid, 5)]
    assert grid_parts[-1] < 0.3 * sum(grid)                               # the old split's last part: 44%
