import math

import pytest
import torch

from ardiff.metrics import bits_per_dim
from ardiff.pixelcnn import MaskedConv2d, PixelCNN, PlainPixelCNN, from_pixels, receptive_field, to_pixels


def test_pixel_conversions_are_inverse():
    px = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = from_pixels(px)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(to_pixels(x), px)
    model = PixelCNN(8, (1,))
    assert torch.allclose(model.bits_per_dim(px), bits_per_dim(model.nll(px), 256))
    assert torch.allclose(model.bits_per_dim(px), torch.tensor([8.0]))  # untrained: uniform over 256 values


def randomised(model, seed=0):
    """Give the zero-initialised output layer random weights, so every dependency shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


@pytest.mark.parametrize("make", [lambda: PixelCNN(channels=8, dilations=(1, 2)), lambda: PlainPixelCNN(8, 2)])
def test_causality_over_the_whole_model(make):
    """The logits at pixel p do not change when p or any later pixel (raster order) changes."""
    torch.manual_seed(0)
    model = randomised(make())
    H = W = 7
    x = torch.randint(0, 256, (1, 1, H, W))
    base = model(x)
    for p in range(H * W):
        i, j = divmod(p, W)
        y = x.clone().flatten()
        y[p:] = torch.randint(0, 256, (H * W - p,))
        out = model(y.view(1, 1, H, W))
        for q in range(p + 1):  # every pixel up to and including p only sees pixels before it
            qi, qj = divmod(q, W)
            assert torch.allclose(out[..., qi, qj], base[..., qi, qj], atol=1e-5), (p, q)


def test_gated_model_has_no_blind_spot_but_plain_one_does():
    H = W = 9
    i, j = 8, 4
    reach = {}
    for name, model in (("gated", PixelCNN(channels=8, dilations=(1, 1, 1, 1, 1, 1, 1))), ("plain", PlainPixelCNN(8, 6))):
        reach[name] = receptive_field(randomised(model), (H, W), (i, j))
    # the row above, to the right of the pixel: seen by the gated model, missed by the plain one
    assert reach["gated"][i - 1, j + 4] and not reach["plain"][i - 1, j + 4]
    assert reach["plain"][i - 1, j + 3]  # the 7x7 type-A layer reaches three columns right, no further
    assert not reach["gated"][i, j] and not reach["gated"][i, j + 1]


def test_masks_are_applied_in_forward_not_to_weights():
    conv = MaskedConv2d(1, 1, 3, "A")
    w = conv.weight.detach().clone()
    conv(torch.randn(1, 1, 5, 5))
    assert torch.equal(conv.weight, w) and conv.weight[0, 0, 2, 2] != 0
    assert conv.mask[0, 0].tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert MaskedConv2d(1, 1, 3, "B").mask[0, 0].tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="mask must be 'A', 'B'"):
        MaskedConv2d(1, 1, 3, "C")


def test_untrained_model_is_uniform_8_bits():
    x = torch.randint(0, 256, (2, 1, 28, 28))
    bpd = PixelCNN().bits_per_dim(x)
    torch.testing.assert_close(bpd, torch.full((2,), 8.0))
    assert PixelCNN().nll(x)[0].item() == pytest.approx(784 * math.log(256), rel=1e-6)


def test_fast_and_naive_samples_are_equal_and_seeded():
    torch.manual_seed(0)
    model = randomised(PixelCNN(channels=8, dilations=(1, 2)), seed=1)
    for p in model.head[-1].parameters():
        p.data *= 0.05  # a spread-out distribution, so the samples vary
    g = lambda s: torch.Generator().manual_seed(s)
    naive = model.sample(3, (1, 10, 12), generator=g(0), fast=False)
    fast = model.sample(3, (1, 10, 12), generator=g(0), fast=True)
    assert torch.equal(naive, fast)
    assert torch.equal(fast, model.sample(3, (1, 10, 12), generator=g(0)))
    assert not torch.equal(fast, model.sample(3, (1, 10, 12), generator=g(1)))
    assert fast.dtype == torch.long and 0 <= fast.min() and fast.max() <= 255


def test_row_cached_sampler_matches_the_network_when_the_reach_exceeds_the_image():
    """The fast sampler's row context + horizontal stacks give the full network's logits, with the book's
    dilations (reach 13 rows and columns): near the edges and where rows and columns are cropped."""
    model = randomised(PixelCNN(channels=8, dilations=(1, 2, 1, 4, 1, 2, 1)), seed=2)
    x = torch.randint(0, 256, (2, 1, 30, 20))                         # rows beyond the reach get cropped
    full = model(x)[:, :, 0]                                          # (2, 256, 30, 20)
    inp = from_pixels(x)
    for i in (0, 4, 13, 14, 22, 29):
        context = model.row_context(inp[:, :, max(0, i - model.reach):i + 1])
        for j in (0, 5, 13, 19):
            c0 = max(0, j - model.reach)
            got = model.last_pixel_logits(inp[:, :, i:i + 1, c0:j + 1], [c[..., c0:j + 1] for c in context])
            torch.testing.assert_close(got[..., 0], full[:, :, i, j], rtol=1e-4, atol=1e-5)


def test_fast_and_naive_completions_are_equal():
    model = randomised(PixelCNN(channels=8, dilations=(1, 2, 1, 4)), seed=3)
    for p in model.head[-1].parameters():
        p.data *= 0.05
    x = torch.randint(0, 256, (3, 1, 12, 14))
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, :, :7] = True
    mask[1, :, 9:, :5] = True                           # image 1 also keeps a patch lower down
    a, b = (model.sample(x_init=x, mask=mask, generator=torch.Generator().manual_seed(4), fast=f) for f in (False, True))
    assert torch.equal(a, b) and torch.equal(a[mask], x[mask]) and not torch.equal(a, x)


def test_completion_keeps_the_given_pixels():
    model = randomised(PixelCNN(channels=8, dilations=(1,)))
    x = torch.randint(0, 256, (2, 1, 6, 6))
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, :, :3] = True  # keep the top half
    out = model.sample(x_init=x, mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, :3], x[:, :, :3])


def test_bad_arguments():
    m = PixelCNN(channels=8, dilations=(1,))
    with pytest.raises(ValueError, match=r"x must be a \(B, 1, H, W\) tensor"):
        m(torch.zeros(2, 3, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer pixel values"):
        m(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"pixel values in \[0, 255\]"):
        m(torch.full((1, 1, 4, 4), 256))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        m.sample(1, (1, 4, 4), temperature=0)
    with pytest.raises(ValueError, match="mask must be given with x_init"):
        m.sample(x_init=torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape must be \(1, H, W\)"):
        m.sample(1, (3, 4, 4))
    with pytest.raises(ValueError, match="n must be >= 1"):
        m.sample(0, (1, 4, 4))


def test_receptive_field_bad_pixel():
    with pytest.raises(ValueError, match="pixel must lie inside"):
        receptive_field(PixelCNN(channels=8, dilations=(1,)), (5, 5), (5, 0))


def test_likelihood_of_a_trained_looking_head_matches_an_independent_gather():
    """NLL and bits/dim with a non-uniform head agree with log-softmax picked out pixel by pixel."""
    torch.manual_seed(0)
    model = PixelCNN(8, (1, 2), zero_init_head=False).eval()
    x = torch.randint(0, 256, (3, 1, 6, 5), dtype=torch.uint8)
    with torch.no_grad():
        logits = model(x)                                        # (B, 256, 1, H, W)
        nll = model.nll(x)
        bpd = model.bits_per_dim(x)
    assert logits.std() > 0.01  # not the uniform head
    expected = torch.zeros(3, dtype=torch.float64)
    for b in range(3):
        for i in range(6):
            for j in range(5):
                logp = logits[b, :, 0, i, j].double().log_softmax(0)
                expected[b] -= logp[int(x[b, 0, i, j])]
    torch.testing.assert_close(nll.double(), expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(bpd.double(), expected / (30 * math.log(2)), rtol=1e-5, atol=1e-6)
    assert (bpd != 8).all()


# ---------------------------------------------------------------- RGB: sub-pixels in the order R, G, B
def test_rgb_causality_over_pixels_and_colours():
    """Perturbation: the logits of sub-pixel (i, j, c) change only when an *earlier* sub-pixel changes (raster
    order over pixels, then R, G, B within a pixel), and the earlier colours of the same pixel are really seen."""
    model = randomised(PixelCNN(channels=9, dilations=(1, 2), in_channels=3), seed=5)
    H = W = 5
    x = torch.randint(0, 256, (1, 3, H, W))
    with torch.no_grad():
        base = model(x)[0]                                      # (256, 3, H, W)
        order = lambda i, j, c: (i * W + j) * 3 + c            # noqa: E731 (position in the generation order)
        seen = torch.zeros(H * W * 3, H * W * 3, dtype=torch.bool)  # seen[p, q]: output p changes with input q
        for i in range(H):
            for j in range(W):
                for c in range(3):
                    y = x.clone()
                    y[0, c, i, j] = (y[0, c, i, j] + 128) % 256
                    changed = (model(y)[0] - base).abs().amax(0) > 1e-6   # (3, H, W)
                    for oc, oi, oj in changed.nonzero().tolist():
                        seen[order(oi, oj, oc), order(i, j, c)] = True
    assert not seen.diagonal().any() and not seen.triu().any(), "an output saw its own or a later sub-pixel"
    for i, j in ((0, 0), (2, 3), (4, 4)):
        assert seen[order(i, j, 1), order(i, j, 0)]                              # G sees R
        assert seen[order(i, j, 2), order(i, j, 0)] and seen[order(i, j, 2), order(i, j, 1)]  # B sees R, G
    assert seen[order(2, 3, 0), order(2, 2, 2)] and seen[order(2, 3, 0), order(1, 4, 1)]    # left, row above


def test_channel_ordered_masks():
    from ardiff.pixelcnn import GatedLayer, channel_mask

    assert channel_mask(3, 3, 3, same=False).tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]   # 'A': R<-none, G<-R
    assert channel_mask(3, 3, 3, same=True).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]    # 'B': also itself
    assert channel_mask(6, 3, 3, same=True)[4].tolist() == [1, 1, 0]    # channel 4 is green: reads R and G
    assert channel_mask(2, 2, 1, same=False).sum() == 0 and channel_mask(2, 2, 1, same=True).sum() == 4
    first = GatedLayer(6, 3, first=True, colours=3)
    centre = first.h_conv.mask[:, :, 0, 1]                                 # (12, 3): the current pixel's tap
    assert torch.equal(centre, channel_mask(12, 3, 3, same=False))
    assert first.h_conv.mask[:, :, 0, 0].eq(1).all() and first.h_conv.mask[:, :, 0, 2].eq(0).all()  # left; right
    # one colour keeps the MNIST layout: (1, 1, kh, kw) masks and plain 1x1 convs, so shipped weights still load
    mono = PixelCNN(channels=8, dilations=(1,))
    assert all(b.shape[:2] == (1, 1) for name, b in mono.named_buffers() if name.endswith("mask"))
    assert type(mono.layers[0].h_out) is torch.nn.Conv2d and type(mono.head[-1]) is torch.nn.Conv2d


def test_rgb_samplers_agree_and_likelihood_is_per_sub_pixel():
    model = randomised(PixelCNN(channels=6, dilations=(1, 2), in_channels=3), seed=6)
    for p in model.head[-1].parameters():
        p.data *= 0.05
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    naive, fast = (model.sample(2, (3, 4, 5), generator=g(0), fast=f) for f in (False, True))
    assert torch.equal(naive, fast) and naive.shape == (2, 3, 4, 5)
    x = torch.randint(0, 256, (2, 3, 4, 5))
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, 0] = True                                                       # keep every red value
    out = model.sample(x_init=x, mask=mask, generator=g(1))
    assert torch.equal(out[:, 0], x[:, 0]) and not torch.equal(out, x)
    assert PixelCNN(channels=6, in_channels=3).bits_per_dim(x).allclose(torch.tensor(8.0))   # untrained: uniform
    with torch.no_grad():
        logp = model(x).double().log_softmax(1)                            # (2, 256, 3, 4, 5)
    expected = -logp.gather(1, x[:, None]).sum((1, 2, 3, 4))
    torch.testing.assert_close(model.nll(x).double(), expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match=r"x must be a \(B, 3, H, W\)"):
        model(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="in_channels must be 1 or 3 and divide channels"):
        PixelCNN(channels=8, in_channels=3)
