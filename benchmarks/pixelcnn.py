"""PixelCNN on MNIST: test bits/dim against training time, and sampling speed (naive vs fast).

    python benchmarks/pixelcnn.py [--profile quick|full] [--seconds S] [--evals K] [--sizes 8 16 28]

Trains the gated PixelCNN of the shipped recipe ``mnist-pixelcnn`` with its settings for S seconds, pausing K times to measure
bits/dim on 1,000 test digits (EMA weights); then times one-image sampling, naive and fast, at each
side length (and checks that both give the same image). Evaluation time is excluded from the clock.
"""
from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from ardiff.data import load_mnist
from ardiff.metrics import timer
from ardiff import zoo
from ardiff.pixelcnn import to_pixels
from ardiff.profiles import get_profile
from ardiff.train import pick_device, train


@torch.no_grad()
def test_bpd(model, x, device):
    return torch.cat([model.bits_per_dim(x[k:k + 250].to(device)).cpu() for k in range(0, len(x), 250)]).mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", default=None)
    p.add_argument("--seconds", type=float, default=None, help="training seconds (default 240 full, 40 quick)")
    p.add_argument("--evals", type=int, default=4)
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="image sides for the sampling timings")
    args = p.parse_args()
    prof, device = get_profile(args.profile), pick_device()
    seconds = args.seconds or (240.0 if prof.name == "full" else 40.0)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"{device.type} ({torch.get_num_threads()} threads)"
    recipe = zoo.recipe("mnist-pixelcnn")
    model, batch = recipe.build(), recipe.train.batch_size
    print(f"device: {name}, torch {torch.__version__}, profile {prof.name}, "
          f"PixelCNN {sum(q.numel() for q in model.parameters()):,} parameters, batch {batch}")
    x = to_pixels(load_mnist("train")[0])
    x_test = to_pixels(load_mnist("test", limit=1000)[0])
    clock = {"train": 0.0, "last": None, "next": seconds / args.evals}
    print(f"{'train s':>8} {'steps':>7} {'images/s':>9} {'test bpd':>9}")

    def callback(step, m, ema):
        clock["train"] += time.perf_counter() - clock["last"]
        if clock["train"] >= clock["next"]:
            print(f"{clock['train']:>8.1f} {step:>7} {step * batch / clock['train']:>9,.0f} "
                  f"{test_bpd(ema, x_test, device):>9.3f}", flush=True)
            clock["next"] += seconds / args.evals
        clock["last"] = time.perf_counter()
        return clock["train"] >= seconds

    clock["last"] = time.perf_counter()
    r = train(model, x, lambda m, b, g: F.cross_entropy(m(b[0]).float(), b[0].long()), steps=10**9,
              batch_size=batch, lr=recipe.train.lr, warmup_steps=recipe.train.warmup_steps,
              ema_decay=recipe.train.ema_decay, log_every=20,
              compile=device.type == "cuda", callback=callback, progress=False)
    ema = r.ema.to(device)
    print(f"\n{'side':>5} {'naive s/image':>14} {'fast s/image':>13} {'speed-up':>9}")
    for side in args.sizes or prof.pcnn_sizes:
        with timer(device) as tn:
            a = ema.sample(1, (1, side, side), generator=torch.Generator(device).manual_seed(0), fast=False)
        with timer(device) as tf:
            b = ema.sample(1, (1, side, side), generator=torch.Generator(device).manual_seed(0), fast=True)
        assert torch.equal(a, b), "fast and naive samples differ"
        print(f"{side:>5} {tn['seconds']:>14.3f} {tf['seconds']:>13.3f} {tn['seconds'] / tf['seconds']:>8.1f}x", flush=True)


if __name__ == "__main__":
    main()
