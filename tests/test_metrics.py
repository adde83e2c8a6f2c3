import math

import numpy as np
import pytest
import torch

from ardiff.metrics import bits_per_dim, fid, frechet_distance, timer


def test_frechet_distance_closed_forms():
    mu, sig = np.zeros(3), np.eye(3)
    assert frechet_distance(mu, sig, mu, sig) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(mu, sig, mu + 2, sig) == pytest.approx(12)
    # 1-d: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [0.0], [[9.0]]) == pytest.approx(1 + 1)
    # commuting diagonals: sum (sqrt a - sqrt b)^2
    a, b = np.diag([1.0, 4.0]), np.diag([9.0, 16.0])
    assert frechet_distance(mu[:2], a, mu[:2], b) == pytest.approx((1 - 3) ** 2 + (2 - 4) ** 2)


def test_frechet_distance_singular_covariance_is_stable():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(20, 50))  # n < d: singular covariance
    d = fid(f, f + 0.01)  # same covariance, means 0.01 apart in each of 50 dimensions: d^2 = 50 * 0.01^2
    assert d == pytest.approx(50 * 0.01 ** 2, rel=1e-2)


def test_fid_grows_with_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
    assert fid(a, b) < fid(a, b + 1) < fid(a, b + 2)
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2) * 8, 784) == pytest.approx(8)
    with pytest.raises(ValueError, match="dims must be >= 1"):
        bits_per_dim(1.0, 0)


def test_timer():
    with timer() as t:
        sum(range(1000))
    assert t["seconds"] >= 0


def test_fid_mnist_floor_and_noise(shared_data):
    """With the shipped classifier, real digits score far below noise, and n is enforced."""
    from ardiff import zoo
    from ardiff.metrics import FidMnist

    fm = FidMnist(zoo.load("mnist-classifier"), n=300)
    noise = torch.randn(300, 1, 28, 28, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    assert fm.floor < 0.05 * fm(noise)
    with pytest.raises(ValueError, match="samples must number n = 300"):
        fm(noise[:10])


def test_fid_bootstrap_spread_of_a_difference():
    """Bootstrap FIDs centre near the FIDs; a set against itself differs by ~0 within the spread, and
    two different sets differ by more than the spread of their difference."""
    from ardiff.metrics import FidMnist

    class Identity(torch.nn.Module):  # features = the flattened 2x2 image
        def features(self, x):
            return x.flatten(1)

        def forward(self, x):
            return x.flatten(1)

    fm = FidMnist.__new__(FidMnist)
    g = torch.Generator().manual_seed(0)
    fm.classifier, fm.n = Identity(), 400
    fm.test_features = torch.randn(400, 4, generator=g).double().numpy()
    fm.features = lambda s: s.flatten(1).double().numpy()
    near, far = torch.randn(400, 4, generator=g), torch.randn(400, 4, generator=g) + 1.0
    boot = fm.bootstrap(near, near, far, draws=50)
    assert boot.shape == (50, 3)
    same = boot[:, 1] - boot[:, 0]
    assert same.std() > 0 and abs(same.mean()) < 3 * same.std()
    diff = boot[:, 2] - boot[:, 0]
    assert diff.mean() > 5 * diff.std() > 0
    assert np.median(boot[:, 2]) == pytest.approx(fid(fm.features(far), fm.test_features), rel=0.2)
    with pytest.raises(ValueError, match="draws"):
        fm.bootstrap(near, draws=1)
    # paired sets (sample i of each from the same input): shared noise cancels in the difference
    shifted = near + 0.1 * torch.randn(400, 4, generator=g)
    paired, unpaired = fm.bootstrap(near, near, shifted, draws=50, paired=True), fm.bootstrap(near, near, shifted, draws=50)
    assert np.array_equal(paired[:, 0], paired[:, 1])                  # a set against itself: exactly 0
    assert (paired[:, 2] - paired[:, 0]).std() < 0.5 * (unpaired[:, 2] - unpaired[:, 0]).std()


def test_flops_counts_a_convolution_exactly():
    from ardiff.metrics import flops

    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.zeros(2, 3, 16, 16)
    assert flops(conv, x) == 2 * 2 * 8 * 16 * 16 * 3 * 9          # 2 per multiply-add, batch 2
    assert flops(torch.nn.Linear(10, 5), torch.zeros(4, 10)) == 2 * 4 * 10 * 5
