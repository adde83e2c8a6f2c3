"""Order-agnostic autoregression as absorbing diffusion (ardiff.absorbing): the identity, the exact likelihood,
no leaks, parallel decoding, orders, and the mnist-absorbing recipe."""
import itertools
import math

import pytest
import torch
import torch.nn as nn

from ardiff import absorbing
from ardiff.absorbing import AbsorbingNet, model_input

TINY_NET = dict(image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention=True, groups=4)


class Toy(nn.Module):
    """A small random conv net with the absorbing contract, counting its calls and keeping the masks it saw.
    On a 2 x 2 (or 3 x 3) image every output reads every input, and its conditionals disagree between orders."""

    def __init__(self, seed=0, scale=1.5):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, 16, 3, padding=1), nn.Tanh(), nn.Conv2d(16, 256, 3, padding=1))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * scale)
        self.masks = []

    def forward(self, inp):
        self.masks.append(inp[:, 1:].bool().clone())     # (B, 1, H, W) the visibility it was given
        return self.net(inp)[:, :, None]                  # (B, 256, 1, H, W)


def pixels(shape, seed=0):
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def by_hand(model, x, mask):
    """D / #hidden * sum over hidden pixels of -log p(x_k | visible), nats, (B,): the formula, written here again."""
    logp = torch.log_softmax(model(model_input(x, mask)).float(), dim=1)           # (B, 256, 1, H, W)
    nll = -logp.gather(1, x.long()[:, None]).squeeze(1)                             # (B, 1, H, W)
    D = x[0].numel()
    return D / (~mask).flatten(1).sum(1) * (nll * ~mask).flatten(1).sum(1)


def first_k(perm, k, shape):
    """Visibility of the first k pixels of the permutation ``perm`` (a tuple), built without the library."""
    m = torch.zeros(shape[-2] * shape[-1], dtype=torch.bool)
    m[list(perm[:k])] = True
    return m.view(1, 1, *shape[-2:]).expand(shape).clone()


# ---------------------------------------------------------------- the identity (D = 4, every order enumerable)
@torch.no_grad()
def test_loss_expectation_is_the_order_averaged_exact_nll():
    model, x = Toy(), pixels((3, 1, 2, 2))
    D, perms = 4, list(itertools.permutations(range(4)))
    exact = torch.stack([absorbing.exact_nll(model, x, torch.tensor(p)) for p in perms])  # (24, 3)
    assert exact.std(0).min() > 0.1, "a toy whose orders agree would make the identity trivial"
    terms = torch.stack([by_hand(model, x, first_k(p, t - 1, x.shape)) for p in perms for t in range(1, D + 1)])
    torch.testing.assert_close(terms.mean(0), exact.mean(0), rtol=1e-5, atol=1e-4)   # E_sigma E_t L = E_sigma NLL
    unweighted = torch.stack([t * (~first_k(p, s - 1, x.shape)).flatten(1).sum(1) / D
                              for t, (p, s) in zip(terms, itertools.product(perms, range(1, D + 1)))])
    assert (unweighted.mean(0) - exact.mean(0)).abs().min() > 0.1, "without D/(D-t+1) it must not match"


@torch.no_grad()
def test_bound_terms_apply_the_formula_to_the_masks_they_draw_and_draw_them_uniformly():
    model, x = Toy(), pixels((1, 1, 2, 2)).expand(4000, 1, 2, 2).contiguous()
    values = absorbing.bound_terms(model, x, torch.Generator().manual_seed(0))
    mask = model.masks[-1]
    torch.testing.assert_close(values, by_hand(model, x, mask), rtol=1e-5, atol=1e-4)
    counts = torch.bincount(mask.flatten(1).sum(1), minlength=5)                  # visible pixels: t - 1
    assert counts[4] == 0 and (counts[:4] - 1000).abs().max() < 4 * math.sqrt(1000 * 0.75)   # t ~ U{1..4}
    singles = torch.bincount(mask[mask.flatten(1).sum(1) == 1].flatten(1).float().argmax(1), minlength=4)
    assert (singles - singles.float().mean()).abs().max() < 5 * math.sqrt(singles.float().mean())  # any pixel first


@torch.no_grad()
def test_monte_carlo_loss_and_bound_converge_to_the_exact_value():
    model, x1 = Toy(seed=1), pixels((1, 1, 2, 2), seed=1)
    perms = list(itertools.permutations(range(4)))
    exact = torch.stack([absorbing.exact_nll(model, x1, torch.tensor(p)) for p in perms]).mean()
    terms = torch.stack([by_hand(model, x1, first_k(p, t - 1, x1.shape)) for p in perms for t in range(1, 5)])
    N = 20_000
    se = terms.std(unbiased=False) / math.sqrt(N)
    x = x1.expand(N, 1, 2, 2).contiguous()
    mc = absorbing.loss(model, x, torch.Generator().manual_seed(3)) * 4                # nats/dim -> nats/image
    assert abs(mc - exact) < 4 * se and se < 0.05 * exact
    bpd, sem = absorbing.nll_bound(model, x, draws=2, generator=torch.Generator().manual_seed(4), batch_size=5000)
    to_bpd = 1 / (4 * math.log(2))
    assert abs(bpd - exact * to_bpd) < 4 * se * to_bpd / math.sqrt(2)
    assert sem == pytest.approx(float(se * to_bpd) / math.sqrt(2), rel=0.05)


@torch.no_grad()
def test_enumerate_identity_is_the_by_hand_enumeration_and_the_identity_holds():
    model, x = absorbing.ToyNet(), pixels((3, 1, 2, 2))
    got = absorbing.enumerate_identity(model, x)
    perms = list(itertools.permutations(range(4)))
    exact = torch.stack([absorbing.exact_nll(model, x, torch.tensor(p)) for p in perms]).double()   # (24, 3)
    terms = torch.stack([by_hand(model, x, first_k(p, t - 1, x.shape)) for p in perms for t in range(1, 5)])
    assert got["orders"] == 24 and got["per_order"].shape == (24, 3)
    torch.testing.assert_close(got["per_order"], exact)
    torch.testing.assert_close(got["exact"], exact.mean(0))
    torch.testing.assert_close(got["loss"], terms.mean(0).double(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got["loss"], got["exact"], rtol=1e-5, atol=1e-4)     # the identity
    assert got["per_order"].std(0).min() > 0.1, "ToyNet's orders must disagree, or the identity is trivial"
    with pytest.raises(ValueError, match=r"at most max_d = 6 pixels"):
        absorbing.enumerate_identity(model, pixels((1, 1, 3, 3)))


@torch.no_grad()
def test_toy_net_keeps_the_contract_and_sees_no_hidden_pixel():
    model, x = absorbing.ToyNet(seed=3), pixels((2, 1, 3, 3), seed=4)
    vis = torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(0)) < 0.5
    out = model(model_input(x, vis))
    assert out.shape == (2, 256, 1, 3, 3)
    torch.testing.assert_close(model(model_input(torch.where(vis, x, 255 - x), vis)), out, rtol=0, atol=0)
    assert not torch.equal(absorbing.ToyNet(seed=4)(model_input(x, vis)), out)      # the seed sets the weights


@torch.no_grad()
def test_bound_bits_are_the_draws_nll_bound_averages():
    model, x = Toy(seed=2), pixels((5, 1, 2, 2), seed=3)
    per = absorbing.bound_bits(model, x, draws=3, generator=torch.Generator().manual_seed(1), batch_size=2)
    assert per.shape == (5, 3) and per.dtype == torch.float32
    bpd, sem = absorbing.nll_bound(model, x, draws=3, generator=torch.Generator().manual_seed(1), batch_size=2)
    assert bpd == pytest.approx(per.mean().item(), rel=1e-6)
    assert sem == pytest.approx((per.flatten().std() / math.sqrt(15)).item(), rel=1e-5)
    g = torch.Generator().manual_seed(1)                       # draw d, chunk by chunk, as bound_terms draws them
    first = torch.cat([absorbing.bound_terms(model, x[i:i + 2], g) for i in range(0, 5, 2)]) / (4 * math.log(2))
    torch.testing.assert_close(per[:, 0], first)
    with pytest.raises(ValueError, match="draws must be an int >= 1"):
        absorbing.bound_bits(model, x, draws=0)


# ---------------------------------------------------------------- the exact likelihood in one order
@torch.no_grad()
@pytest.mark.parametrize("order", ["raster", (3, 0, 2, 1, 8, 5, 4, 7, 6)])
def test_exact_nll_is_the_sum_of_the_d_conditionals(order):
    model, x = Toy(), pixels((2, 1, 3, 3), seed=2)
    perm = tuple(range(9)) if order == "raster" else order
    expected = torch.zeros(2)
    for i, k in enumerate(perm):
        logp = torch.log_softmax(model(model_input(x, first_k(perm, i, x.shape))), dim=1)   # (2, 256, 1, 3, 3)
        expected -= logp[torch.arange(2), x[:, 0, k // 3, k % 3].long(), 0, k // 3, k % 3]
    model.masks.clear()
    got = absorbing.exact_nll(model, x, order if order == "raster" else torch.tensor(order))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    assert len(model.masks) == 9                                                       # D passes over the batch


@torch.no_grad()
@pytest.mark.parametrize("order", ["raster", "random"])
def test_exact_nll_in_batches_is_the_same_and_costs_d_passes_per_batch(order):
    model, x = Toy(), pixels((5, 1, 2, 3), seed=3)
    whole = absorbing.exact_nll(model, x, order, generator=torch.Generator().manual_seed(1), batch_size=5)
    model.masks.clear()
    parts = absorbing.exact_nll(model, x, order, generator=torch.Generator().manual_seed(1), batch_size=2)
    torch.testing.assert_close(parts, whole, rtol=1e-6, atol=1e-5)         # the orders do not depend on the batching
    assert [len(m) for m in model.masks] == [2] * 6 + [2] * 6 + [1] * 6     # D = 6 passes per batch of 2, 2, 1
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
            absorbing.exact_nll(model, x, batch_size=bad)


def test_untrained_net_is_uniform_8_bits_per_dim():
    from ardiff.metrics import bits_per_dim
    model, x = AbsorbingNet(**TINY_NET), pixels((2, 1, 8, 8))                          # zero-initialised head
    torch.testing.assert_close(bits_per_dim(absorbing.exact_nll(model, x[:, :, :4, :4], "coarse-to-fine"), 16),
                               torch.full((2,), 8.0))
    bpd, sem = absorbing.nll_bound(model, x, draws=2)
    assert bpd == pytest.approx(8.0) and sem == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- no leaks
def test_model_input_hides_hidden_pixels_and_carries_the_mask():
    x, vis = pixels((2, 1, 4, 4)), torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5
    inp = model_input(x, vis)
    assert inp.shape == (2, 2, 4, 4) and inp.dtype == torch.float32
    torch.testing.assert_close(inp[:, :1][vis], x[vis].float() / 127.5 - 1)
    assert (inp[:, :1][~vis] == 0).all() and torch.equal(inp[:, 1:].bool(), vis)
    with pytest.raises(ValueError, match="visible must be a bool tensor"):
        model_input(x, vis.float())
    with pytest.raises(TypeError, match="integer pixel values"):
        model_input(x.float(), vis)


@torch.no_grad()
def test_hidden_pixels_do_not_leak_through_the_unet():
    model = AbsorbingNet(**TINY_NET).eval()
    nn.init.normal_(model.conv_out.weight, std=0.5)                                   # undo the zero head
    x = pixels((2, 1, 8, 8), seed=5)
    vis = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.4
    base = model(model_input(x, vis))
    assert base.shape == (2, 256, 1, 8, 8)
    y = torch.where(vis, x, 255 - x)                                                  # every hidden pixel changed
    torch.testing.assert_close(model(model_input(y, vis)), base, rtol=0, atol=0)
    z = torch.where(vis & (torch.arange(64).view(1, 1, 8, 8) == vis[0, 0].flatten().nonzero()[0]), 255 - x, x)
    assert not torch.allclose(model(model_input(z, vis)), base)                      # a visible one is seen
    with pytest.raises(ValueError, match="in_channels=2, out_channels=256"):
        AbsorbingNet(**{**TINY_NET, "out_channels": 3})


# ---------------------------------------------------------------- orders
def test_orders_are_permutations_of_the_named_kinds():
    g = torch.Generator().manual_seed(0)
    r = absorbing.orders("random", 5, 4, 4, generator=g)
    assert r.shape == (5, 16) and torch.equal(r.sort(1).values, torch.arange(16).expand(5, 16))
    assert len({tuple(row.tolist()) for row in r}) == 5
    assert torch.equal(absorbing.orders("raster", 2, 3, 4), torch.arange(12).expand(2, 12))
    with pytest.raises(ValueError, match=r"order must be one of \('random', 'raster', 'coarse-to-fine'\)"):
        absorbing.orders("zigzag", 1, 4, 4)


@pytest.mark.parametrize("size", [8, 28])
def test_coarse_to_fine_reveals_the_stride_4_then_stride_2_grid_first(size):
    D = size * size
    s = absorbing.orders("coarse-to-fine", 2, size, size)
    assert torch.equal(s[0], s[1]) and torch.equal(s[0].sort().values, torch.arange(D))
    i, j = s[0] // size, s[0] % size
    on4, on2 = (i % 4 == 0) & (j % 4 == 0), (i % 2 == 0) & (j % 2 == 0)
    n4, n2 = ((size + 3) // 4) ** 2, ((size + 1) // 2) ** 2                             # D/16 and D/4 for 8 and 28
    assert n4 == D // 16 and n2 == D // 4
    assert on4[:n4].all() and not on4[n4:].any()
    assert on2[n4:n2].all() and not on2[n2:].any()
    assert (s[0][:n4].diff() > 0).all() and (s[0][n2:].diff() > 0).all()             # raster within a level
    vis = absorbing.reveal_mask(s, n4, size, size)
    assert vis[0, 0, ::4, ::4].all() and vis.sum() == 2 * n4


# ---------------------------------------------------------------- sampling
@torch.no_grad()
def test_sampling_with_d_steps_reveals_one_pixel_per_step_in_the_order():
    model = Toy()
    x = absorbing.sample(model, 3, steps=9, order="raster", shape=(1, 3, 3), generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 3, 3) and x.dtype == torch.int64 and 0 <= x.min() and x.max() <= 255
    assert len(model.masks) == 9
    for k, m in enumerate(model.masks):                                              # before pass k: the first k
        assert torch.equal(m, first_k(tuple(range(9)), k, (3, 1, 3, 3)))
    model.masks.clear()
    absorbing.sample(model, 4, steps=9, order="random", shape=(1, 3, 3), generator=torch.Generator().manual_seed(1))
    counts = torch.stack([m.flatten(1).sum(1) for m in model.masks])                 # (9, 4)
    assert torch.equal(counts, torch.arange(9)[:, None].expand(9, 4))
    assert all((a <= b).all() for a, b in zip(model.masks, model.masks[1:]))        # pixels are never hidden again


@torch.no_grad()
def test_exact_sampling_draws_the_first_pixel_from_its_predicted_categorical():
    model = Toy(scale=3.0)
    g = torch.Generator().manual_seed(2)
    x = absorbing.sample(model, 4000, steps=4, order="raster", shape=(1, 2, 2), generator=g)
    p = torch.softmax(model(model_input(torch.zeros(1, 1, 2, 2, dtype=torch.uint8),
                                        torch.zeros(1, 1, 2, 2, dtype=torch.bool)))[0, :, 0, 0, 0], 0)
    v = int(p.argmax())
    freq = (x[:, 0, 0, 0] == v).float().mean()
    assert p[v] > 0.05 and abs(freq - p[v]) < 4 * math.sqrt(p[v] * (1 - p[v]) / 4000)


@torch.no_grad()
def test_sampling_with_a_context_keeps_the_given_pixels_and_fills_the_rest():
    model = Toy()
    ctx = pixels((3, 1, 4, 4), seed=7)
    vis = (torch.arange(16) % 3 == 0).view(1, 1, 4, 4).expand(3, 1, 4, 4)             # 6 given, 10 hidden
    x = absorbing.sample(model, None, steps=16, visible=vis, x_context=ctx, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x[vis], ctx[vis].long()) and x.shape == (3, 1, 4, 4)
    assert len(model.masks) == 10                                                     # one pass per hidden pixel
    assert [int(m[0].sum()) for m in model.masks] == list(range(6, 16))
    assert all(torch.equal(m & vis, vis) for m in model.masks)
    model.masks.clear()                                                               # 10 hidden in 4 steps: 3, 3, 2, 2
    x = absorbing.sample(model, None, steps=4, visible=vis, x_context=ctx, generator=torch.Generator().manual_seed(1))
    seen = [int(m[0].sum()) for m in model.masks] + [16]
    assert torch.equal(x[vis], ctx[vis].long()) and sorted(b - a for a, b in zip(seen, seen[1:])) == [2, 2, 3, 3]


@torch.no_grad()
@pytest.mark.parametrize("steps, reveals", [(4, [4, 4, 4, 4]), (5, [4, 3, 3, 3, 3]), (1, [16])])
def test_fewer_steps_reveal_several_pixels_per_step_as_evenly_as_possible(steps, reveals):
    model = Toy()
    x = absorbing.sample(model, 2, steps=steps, shape=(1, 4, 4), generator=torch.Generator().manual_seed(0))
    assert len(model.masks) == steps and x.shape == (2, 1, 4, 4)
    seen = [int(m[0].sum()) for m in model.masks] + [16]
    assert sorted([b - a for a, b in zip(seen, seen[1:])], reverse=True) == reveals


def test_sample_refuses_bad_arguments_naming_them():
    model, g = Toy(), torch.Generator().manual_seed(0)
    vis, ctx = torch.ones(2, 1, 4, 4, dtype=torch.bool), pixels((2, 1, 4, 4))
    cases = [(dict(n=2, steps=0), r"steps must be an int in \[1, D = 16\], got 0"),
             (dict(n=2, steps=17), r"steps must be an int in \[1, D = 16\], got 17"),
             (dict(n=2, steps=2.5), "steps must be an int"),
             (dict(n=2, steps=4, order="zigzag"), "order must be one of"),
             (dict(n=2, steps=4, order=torch.tensor([0, 0] + list(range(2, 16)))), "permutation"),
             (dict(n=2, steps=4, shape=(3, 4, 4)), r"shape must be \(1, H, W\)"),
             (dict(n=0, steps=4), "n must be an int >= 1"),
             (dict(n=2, steps=4, visible=vis), "visible and x_context must be given together"),
             (dict(n=3, steps=4, visible=vis, x_context=ctx), "n must be None or len"),
             (dict(n=2, steps=4, visible=vis.long(), x_context=ctx), "visible must be a bool tensor")]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            absorbing.sample(model, shape=kwargs.pop("shape", (1, 4, 4)), generator=g, **kwargs)
    assert not model.masks                                                            # refused before any work
    with pytest.raises(ValueError, match="draws must be an int >= 1"):
        absorbing.nll_bound(model, ctx, draws=0)


# ---------------------------------------------------------------- the recipe
def test_recipe_builds_the_absorbing_unet():
    from ardiff import zoo
    r = zoo.recipe("mnist-absorbing")
    model = r.build()
    assert isinstance(model, AbsorbingNet) and model.config_dict() == r.config
    assert r.objective == "absorbing-nll" and r.metric["kind"] == "bpd-bound" and r.metric["split"] == "test"
    assert model.config.base_channels == zoo.recipe("mnist-ddpm").config["base_channels"]
    with torch.no_grad():
        assert model(torch.zeros(2, 2, 28, 28)).shape == (2, 256, 1, 28, 28)


def test_a_tiny_variant_trains_through_the_objective_and_is_measured(tmp_path, monkeypatch, shared_data):
    from ardiff import zoo, zoo_train
    from ardiff.protocol import measure
    monkeypatch.setenv("ARDIFF_CACHE", str(tmp_path / "cache"))
    r = zoo.recipe("mnist-absorbing")
    tiny = r.variant(r.name, config={**TINY_NET, "image_size": 28, "channel_mults": [1, 2]},
                     data={**r.data, "limit": 16},
                     train=dict(steps=3, batch_size=4, warmup_steps=1, checkpoint_every=None, log_every=1))
    calls = []
    real = absorbing.loss
    monkeypatch.setattr(absorbing, "loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    model, info = zoo_train.train_recipe(tiny, device="cpu", progress=False)
    assert len(calls) == 3 and info["steps"] == 3
    assert all(math.isfinite(loss) and 0 < loss < 8 * math.log(2) * 1.5 for _, loss in info["history"])
    m = measure(tiny, {**tiny.metric, "n": 8, "draws": 2}, model, None, torch.device("cpu"), False)
    assert m["kind"] == "bpd-bound" and m["n"] == 8 and m["draws"] == 2 and 0 < m["value"] < 9 and m["sem"] >= 0


def test_the_palette_has_a_colour_for_the_absorbing_model():
    from ardiff.plot import PALETTE, color
    assert color("mnist-absorbing, 49 steps") == PALETTE["absorbing"] != PALETTE["PixelCNN"]
    assert len(set(PALETTE.values())) == len(PALETTE)
