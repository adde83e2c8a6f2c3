r"""Measures of sample quality and likelihood: FID-MNIST, FID-CIFAR, bits per dimension, timers.

FID-MNIST is the Fréchet distance (Heusel et al. 2017) between Gaussians fitted to the penultimate
features of a small classifier (not Inception; one trained on MNIST, one on ten CIFAR-10 classes), for real
and generated images:

:math:`d^2 = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2})`.

Its value depends on the feature network and on n, so every FID the book reports is quoted at a
stated n and beside the *real floor*: the FID of n training images against n test images, with the
same network.
"""
from __future__ import annotations

import math
import time
import warnings
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ConvClassifier", "MnistClassifier", "accuracy", "features", "ink", "frechet_distance", "fid",
           "Fid", "FidMnist", "FidCifar", "bits_per_dim", "sharpness", "diversity", "timer", "flops"]


class ConvClassifier(nn.Module):
    """Three stages of conv + ReLU (``convs`` per stage, no normalisation: train and eval agree) and max-pooling,
    then a ``feature_dim`` penultimate layer: (B, C, S, S) in [-1, 1] -> (B, 10) logits.

    The feature network of FID-MNIST (``MnistClassifier()``: 1 channel, 28 px, one conv per stage) and of
    FID-CIFAR (3 channels, 32 px).
    """

    def __init__(self, width: int = 32, feature_dim: int = 128, in_channels: int = 1, image_size: int = 28,
                 convs: int = 1, dropout: float = 0.0):
        super().__init__()
        if min(width, feature_dim, in_channels, convs) < 1 or image_size < 8 or not 0 <= dropout < 1:
            raise ValueError(f"width, feature_dim, in_channels, convs must be >= 1, image_size >= 8 and dropout in "
                             f"[0, 1); got {width}, {feature_dim}, {in_channels}, {convs}, {image_size}, {dropout}")
        self.input_shape = (in_channels, image_size, image_size)
        layers, cin = [], in_channels
        for cout in (width, 2 * width, 4 * width):                # (B, cout, S/2^k, S/2^k) after stage k
            for i in range(convs):
                layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
            cin = cout
        side = image_size // 8
        layers += [nn.Flatten(), nn.Linear(4 * width * side * side, feature_dim), nn.ReLU()]  # (B, feature_dim)
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(feature_dim, 10)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


MnistClassifier = ConvClassifier  # the defaults are FID-MNIST's network


@torch.no_grad()
def accuracy(model, x, y, batch_size: int = 1000) -> float:
    model.eval()
    dev = next(model.parameters()).device
    correct = sum((model(x[i:i + batch_size].to(dev)).argmax(1).cpu() == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


@torch.no_grad()
def features(model, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """Penultimate features, (N, D) float64, of (N, C, S, S) images in [-1, 1] (the classifier's input shape)."""
    shape = tuple(getattr(model, "input_shape", (1, 28, 28)))
    if images.ndim != 4 or tuple(images.shape[1:]) != shape:
        raise ValueError(f"images must be (N, {', '.join(map(str, shape))}) tensors for this classifier, "
                         f"got {tuple(images.shape)}")
    model.eval()
    dev = next(model.parameters()).device
    out = [model.features(images[i:i + batch_size].to(dev).float()).double().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    r"""Fréchet distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and :math:`\mathcal N(\mu_2, \Sigma_2)`.

    The matrix square root is taken with ``scipy.linalg.sqrtm``; when the product is near singular
    a small multiple of the identity is added to both covariances (as pytorch-fid does), and the
    tiny imaginary part that round-off leaves is dropped after checking it is negligible.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if caught or not np.isfinite(covmean).all():  # near singular (n < D, or collapsed samples)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3 * max(1.0, np.abs(covmean).max())):
            raise ValueError(f"imaginary component {np.abs(covmean.imag).max():.3g} in the matrix square root")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _stats(f: np.ndarray):
    return f.mean(0), np.cov(f, rowvar=False)


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between two sets of features, (N, D) each."""
    if len(feats_a) < 2 or len(feats_b) < 2:
        raise ValueError("fid needs at least 2 samples on each side")
    return frechet_distance(*_stats(feats_a), *_stats(feats_b))


class Fid:
    """FID of samples against ``n`` real test images, with its real floor at the same n.

    >>> fm = FidMnist(classifier, n=1000)     # or FidCifar(cifar_classifier, n=1000) for cats
    >>> fm(samples)          # FID of n samples against the n test images
    >>> fm.floor             # FID of n training images against the same n test images
    """

    def __init__(self, classifier, test_images: torch.Tensor, train_images: torch.Tensor):
        self.classifier, self.n = classifier, len(test_images)
        self.test_features = features(classifier, test_images)
        self.floor = fid(features(classifier, train_images), self.test_features)

    def features(self, samples: torch.Tensor) -> np.ndarray:
        """Features of ``samples`` (clipped to [-1, 1], the valid pixel range, as saving them as images would)."""
        if len(samples) != self.n:
            raise ValueError(f"samples must number n = {self.n} (FID depends on n), got {len(samples)}")
        return features(self.classifier, samples.clamp(-1, 1))

    def __call__(self, samples: torch.Tensor) -> float:
        """FID of ``samples`` against the n test images."""
        return fid(self.features(samples), self.test_features)

    def bootstrap(self, *sample_sets: torch.Tensor, draws: int = 100, seed: int = 0, paired: bool = False) -> np.ndarray:
        """FIDs of each sample set on ``draws`` bootstrap resamples, (draws, len(sample_sets)).

        Each draw resamples every set and the test images with replacement (one test resample per draw,
        shared by all sets), so the column differences give the spread of a *difference* of FIDs.
        With ``paired=True`` every set is resampled with the *same* indices in a draw: right when sample i
        of every set comes from the same starting noise (the sets are paired), and then the spread of a
        difference leaves out the noise that the pairs share. Unpaired resampling is the safe default.
        """
        from .resampling import bootstrap_sets

        return bootstrap_sets(fid, [self.features(s) for s in sample_sets], self.test_features, draws, seed, paired)


class FidMnist(Fid):
    """FID-MNIST against the first ``n`` test digits; the floor uses the first ``n`` training digits."""

    def __init__(self, classifier, n: int = 10_000):
        from .data import load_mnist

        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 10_000:
            raise ValueError(f"n must be an int in [2, 10000], got {n!r}")
        super().__init__(classifier, load_mnist("test", limit=n)[0], load_mnist("train", limit=n)[0])


class FidCifar(Fid):
    """FID-CIFAR against the first ``n`` test cats (at most 1,000); the floor uses the first ``n`` training cats.

    ``classifier`` is the shipped ``cifar-classifier`` (a :class:`ConvClassifier` trained on all ten classes), so
    the features are not Inception's and the values are comparable only with each other, at the same n.
    """

    def __init__(self, classifier, n: int = 1000):
        from .data import load_cifar10_cats

        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 1000:
            raise ValueError(f"n must be an int in [2, 1000] (there are 1,000 test cats), got {n!r}")
        super().__init__(classifier, load_cifar10_cats("test", limit=n), load_cifar10_cats("train", limit=n))


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    r"""Negative log-likelihood in nats per image -> bits per dimension: :math:`\mathrm{nll} / (D \ln 2)`."""
    if dims < 1:
        raise ValueError(f"dims must be >= 1, got {dims}")
    return nll_nats / (dims * math.log(2))


def sharpness(images: torch.Tensor, per_image: bool = False):
    r"""Mean gradient magnitude :math:`\frac1N\sum\sqrt{(\partial_x x)^2 + (\partial_y x)^2}` (forward differences),
    of images clipped to [-1, 1]: blurred digits score lower, noisy ones higher. Compare with real digits.

    Args:
        images: (B, C, H, W) with H, W >= 2.
        per_image: return the (B,) array of each image's mean instead of the overall mean (for
            :func:`ardiff.resampling.bootstrap_means`).
    """
    if images.ndim != 4 or min(images.shape[-2:]) < 2:
        raise ValueError(f"images must have shape (B, C, H, W) with H, W >= 2, got {tuple(images.shape)}")
    x = images.detach().float().clamp(-1, 1)
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]  # (B, C, H-1, W-1)
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]  # (B, C, H-1, W-1)
    grad = (dx ** 2 + dy ** 2).sqrt()
    return grad.flatten(1).mean(1).cpu().numpy() if per_image else float(grad.mean())


def ink(images: torch.Tensor, per_image: bool = False):
    r"""Mean ink :math:`\frac1N\sum (x + 1)/2` of images clipped to [-1, 1] (0 = blank background, 1 = all ink).

    :func:`sharpness` grows with the amount of stroke as well as with crisp edges: two crisp strokes score twice
    one crisp stroke, and a faint or small digit scores low without being blurred. Read the two together. Args as :func:`sharpness` (any (B, C, H, W)).
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    x = (images.detach().float().clamp(-1, 1) + 1) / 2
    return x.flatten(1).mean(1).cpu().numpy() if per_image else float(x.mean())


def diversity(feats) -> float:
    """Mean Euclidean distance between all pairs of feature vectors (N, D), N >= 2: low when samples repeat."""
    f = torch.as_tensor(np.asarray(feats), dtype=torch.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feats must have shape (N, D) with N >= 2, got {tuple(f.shape)}")
    d = torch.cdist(f, f)  # (N, N), zero diagonal
    n = f.shape[0]
    return float(d.sum() / (n * (n - 1)))


@contextmanager
def timer(device=None):
    """``with timer() as t: ...`` then ``t["seconds"]``; synchronises CUDA so GPU work is counted."""
    out = {}
    sync = torch.cuda.synchronize if (device is not None and torch.device(device).type == "cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    try:
        yield out
    finally:
        sync()
        out["seconds"] = time.perf_counter() - start


def flops(fn, *args, **kwargs) -> int:
    """Floating-point operations of one call ``fn(*args, **kwargs)``, counted by ``torch.utils.flop_counter``
    (a multiply-add counts 2; matrix products and convolutions only): a device-independent cost."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())
