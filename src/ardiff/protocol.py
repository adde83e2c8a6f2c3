"""The metric protocol of the model cards: how each card's headline number is measured.

- 'accuracy': test accuracy on the recipe's test set (10,000 MNIST digits, or the CIFAR-10 test set);
- 'bpd': exact test bits/dim of the PixelCNN on the test images (10,000 digits, or 1,000 cats);
- 'bpd-bound': the absorbing model's order-agnostic bound in bits/dim (:func:`ardiff.absorbing.nll_bound`) on
  the first n test images (None: all), ``draws`` random (order, step) pairs each, seeded; with its standard error;
- 'fid': FID-MNIST (or FID-CIFAR, for cats) of n samples (the recipe's sampler and steps) against n test
  images, beside the real floor (n training images) and the FID of N(0, I) noise at the same n.

:func:`ardiff.zoo.evaluate` is the reader's call: it loads the feature network (:data:`FEATURE_NET`) and
runs :func:`measure` on the recipe's protocol.
"""
from __future__ import annotations

import torch

from .recipes import Recipe, images

__all__ = ["FEATURE_NET", "measure"]

FEATURE_NET = {"mnist": "mnist-classifier", "cifar10-cats": "cifar-classifier"}  # the FID of each dataset


def measure(r: Recipe, m: dict, model, classifier, dev, progress: bool) -> dict:
    """Measure the metric ``m`` (a recipe's ``metric``, perhaps with changes) of ``model``; call under ``no_grad``.

    Args:
        r: the recipe (its dataset and schedule are used).
        m: the protocol: ``kind`` ('accuracy', 'bpd', 'bpd-bound' or 'fid') and its settings (split; n, draws,
            method, steps, seed, ``clip_x0`` or ``block_rows``).
        model: the model to measure, on ``dev``.
        classifier: the feature network of the FID (:data:`FEATURE_NET`); unused for the other kinds.
        dev: the device of ``model``.
        progress: show the samplers' progress bars.
    Returns:
        the card's ``metric`` dict: kind, n, value, and for FID the floor, the noise FID and the sampler.
    """
    from .metrics import accuracy

    if m["kind"] == "accuracy":
        x, y = images(r.data["dataset"], m["split"])
        return {"kind": "accuracy", "split": m["split"], "n": len(y), "value": accuracy(model, x, y)}
    if m["kind"] == "bpd":
        from .pixelcnn import to_pixels
        x = to_pixels(images(r.data["dataset"], m["split"])[0])
        bpd = torch.cat([model.bits_per_dim(x[i:i + 100].to(dev)).cpu() for i in range(0, len(x), 100)])
        return {"kind": "bpd", "split": m["split"], "n": len(x), "value": bpd.mean().item(),
                "sem": (bpd.std() / len(bpd) ** 0.5).item()}
    if m["kind"] == "bpd-bound":
        from .absorbing import nll_bound
        from .pixelcnn import to_pixels
        x = to_pixels(images(r.data["dataset"], m["split"], m.get("n"))[0])
        value, sem = nll_bound(model, x, draws=m["draws"], generator=torch.Generator(dev).manual_seed(m["seed"]),
                               progress=progress)
        return {"kind": "bpd-bound", "split": m["split"], "n": len(x), "draws": m["draws"], "value": value, "sem": sem}
    if m["kind"] == "fid":
        from .metrics import FidCifar, FidMnist
        from .samplers import sample
        fm = (FidMnist if r.data["dataset"] == "mnist" else FidCifar)(classifier, n=m["n"])
        shape = tuple(fm.classifier.input_shape)                  # (C, H, W) of the images
        g = torch.Generator(dev).manual_seed(m["seed"])
        # The shipped cards were measured with linspace spacing (the library's default until trailing replaced it);
        # a protocol that names no spacing keeps it, so a card's number reproduces. evaluate(..., spacing=...) overrides.
        spacing = m.get("spacing", "linspace")
        if "block_rows" in m:  # block-wise diffusion: m["steps"] per block
            from . import blockwise
            chunks = [blockwise.sample(model, r.schedule, min(250, m["n"] - i), m["block_rows"], m["steps"], generator=g,
                                       method=m["method"], progress=progress, spacing=spacing) for i in range(0, m["n"], 250)]
            extra = {"block_rows": m["block_rows"]}
        else:
            clip = bool(m.get("clip_x0", False))   # x0_hat clipped to [-1, 1] in every step (only when the recipe says)
            chunks = [sample(model, r.schedule, (min(250, m["n"] - i), *shape), steps=m["steps"], method=m["method"],
                             generator=g, clip_x0=clip, progress=progress, spacing=spacing) for i in range(0, m["n"], 250)]
            extra = {"clip_x0": True} if clip else {}
        noise = torch.randn((m["n"], *shape), generator=torch.Generator().manual_seed(m["seed"] + 1))
        extra = {**extra, "spacing": spacing} if "spacing" in m else extra   # the cards' entries stay as they were
        return {"kind": "fid", "n": m["n"], "method": m["method"], "steps": m["steps"], "value": fm(torch.cat(chunks)),
                "floor": fm.floor, "noise": fm(noise), **extra}
    raise ValueError(f"unknown metric kind {m['kind']!r}")
