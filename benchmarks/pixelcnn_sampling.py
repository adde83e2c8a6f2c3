"""Sampling speed of the shipped PixelCNN (`mnist-pixelcnn`): naive vs fast sampler, one image and in batches.

    python benchmarks/pixelcnn_sampling.py [--batch 256] [--device cpu]

The naive sampler runs the whole network on the whole image for every pixel; the fast one runs the vertical
stacks once per row and only the horizontal stacks per pixel (``PixelCNN.sample(fast=True)``). Both draw the
same images from the same uniforms, which this script checks. It times one 28x28 digit with each sampler,
then the fast sampler on a batch: unconditional samples, and completions of test digits from their top 14
rows (lesson 04's AR partners).
"""
from __future__ import annotations

import argparse

import torch

from ardiff import zoo
from ardiff.data import load_mnist
from ardiff.metrics import timer
from ardiff.pixelcnn import to_pixels
from ardiff.train import device_name, pick_device


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default=None)
    args = p.parse_args()
    device = pick_device(args.device)
    model = zoo.load("mnist-pixelcnn", device=device)
    print(f"mnist-pixelcnn ({sum(q.numel() for q in model.parameters()):,} parameters, reach {model.reach}) "
          f"on {device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")

    rows = []
    one = {}
    for fast in (False, True):
        with timer(device) as t:
            one[fast] = model.sample(1, (1, 28, 28), generator=torch.Generator(device).manual_seed(0), fast=fast)
        rows.append((f"one digit, {'fast' if fast else 'naive'}", 1, t["seconds"]))
    assert torch.equal(one[False], one[True]), "the fast and naive samplers disagree"

    with timer(device) as t:
        model.sample(args.batch, (1, 28, 28), generator=torch.Generator(device).manual_seed(1))
    rows.append((f"{args.batch} digits, fast", args.batch, t["seconds"]))
    x = to_pixels(load_mnist("test", limit=args.batch)[0]).to(device)
    keep = torch.zeros_like(x, dtype=torch.bool)
    keep[:, :, :14] = True
    with timer(device) as t:
        model.sample(x_init=x, mask=keep, generator=torch.Generator(device).manual_seed(2))
    rows.append((f"{args.batch} completions (top 14 rows kept), fast", args.batch, t["seconds"]))

    print(f"{'what':<44} {'seconds':>8} {'ms / image':>11}")
    for what, n, s in rows:
        print(f"{what:<44} {s:>8.2f} {1000 * s / n:>11.1f}")
    print(f"\none digit: fast is {rows[0][2] / rows[1][2]:.1f}x faster than naive")


if __name__ == "__main__":
    main()
