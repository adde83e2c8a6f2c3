"""Training FLOPs of every zoo recipe, and what they predict for a full retrain on a GPU.

    python benchmarks/retrain_flops.py [--tflops 8.1] [--utilisation 0.1 0.3]

For each recipe: the floating-point operations of one training step on one example (forward and backward of its
own objective, counted by ``torch.utils.flop_counter``; a multiply-add counts as 2), times its steps and batch size.
Dividing by a GPU's peak rate times a utilisation gives a retrain time. The defaults are a Colab T4: 8.1 TFLOP/s
peak in fp32 (NVIDIA's data sheet; the library trains in fp32 there, since the T4 has no native bf16), at 10-30%
utilisation, a range typical of small convolutional networks whose layers cannot fill the GPU. The result is an
estimate, not a measurement: run a recipe on the GPU to know. Method 1's PixelCNN partners (lesson 04) are sampled
before training and are not counted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ardiff import zoo
from ardiff.zoo_train import objective as recipe_objective

sys.path.insert(0, str(Path(__file__).parent))
from zoo_train_speed import images  # noqa: E402  (random data shaped like a recipe's)


def example(r: zoo.Recipe):
    """One training example of the recipe: images (and labels, or an AR partner for method 1)."""
    if r.objective in ("blockwise-eps-mse", "eps-mse+ar"):
        x = images(zoo.recipe("mnist-ddpm"), n=1)[0]
        return (x, x.clone()) if r.objective == "eps-mse+ar" else (x,)
    return tuple(t[:1] for t in images(r, n=1))


def step_flops(r: zoo.Recipe) -> int:
    """FLOPs of one training step (forward + backward) on one example."""
    torch.manual_seed(0)
    model = r.build()
    objective = recipe_objective(r)
    batch = example(r)
    with FlopCounterMode(display=False) as counter:
        objective(model, batch, torch.Generator().manual_seed(0)).backward()
    return int(counter.get_total_flops())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tflops", type=float, default=8.1, help="the GPU's peak fp32 TFLOP/s (T4: 8.1)")
    p.add_argument("--utilisation", type=float, nargs=2, default=(0.1, 0.3), help="the range of utilisation assumed")
    args = p.parse_args()
    lo, hi = sorted(args.utilisation)
    print(f"estimate for a GPU of {args.tflops} TFLOP/s at {lo:.0%}-{hi:.0%} utilisation")
    print(f"{'recipe':<30} {'GFLOP/example':>14} {'steps x batch':>14} {'total PFLOP':>12} {'GPU minutes':>12}")
    for name in zoo.names():
        r = zoo.recipe(name)
        f = step_flops(r)
        total = f * r.train.steps * r.train.batch_size
        fast, slow = (total / (args.tflops * 1e12 * u) / 60 for u in (hi, lo))
        print(f"{name:<30} {f / 1e9:>14.3f} {r.train.steps:>7} x {r.train.batch_size:<4} {total / 1e15:>12.2f}"
              f" {fast:>5.1f} - {slow:<5.1f}")


if __name__ == "__main__":
    main()
