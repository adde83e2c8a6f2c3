"""Training throughput of zoo recipes on this machine: images per second of the library's own training loop.

    python benchmarks/zoo_train_speed.py cats-ddpm cats-pixelcnn [--steps 20] [--device cpu]

For each recipe: its model and objective (``zoo.recipe(NAME)``), its batch size, its optimiser settings, on random
data of the recipe's image shape (throughput does not depend on the pixel values). A few untimed steps first,
then ``--steps`` timed ones. Divide a recipe's ``steps x batch_size`` by the figure to predict its training time;
run nothing else on the machine meanwhile.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from ardiff import zoo
from ardiff.zoo_train import objective as recipe_objective
from ardiff.train import device_name, pick_device, train


def images(r: zoo.Recipe, n: int = 512):
    """Random data shaped like the recipe's: float images in [-1, 1], integer pixels for a PixelCNN, labels."""
    config = r.config
    c, s = config.get("in_channels", 1), config.get("image_size", 32 if "cifar" in r.data["dataset"] else 28)
    g = torch.Generator().manual_seed(0)
    if r.objective == "nll":
        return (torch.randint(0, 256, (n, c, s, s), generator=g),)
    x = torch.rand(n, c, s, s, generator=g) * 2 - 1
    return (x, torch.randint(0, 10, (n,), generator=g)) if r.objective.startswith("cross-entropy") else (x,)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="+", choices=zoo.names())
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default=None)
    args = p.parse_args()
    device = pick_device(args.device)
    print(f"{device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'recipe':<20} {'parameters':>11} {'batch':>6} {'img/s':>8} {'recipe steps':>13} {'predicted min':>14}")
    for name in args.names:
        r = zoo.recipe(name)
        if r.objective not in ("eps-mse", "nll", "cross-entropy", "cross-entropy+hflip"):
            raise SystemExit(f"{name}: objective {r.objective!r} needs more than images; not measured here")
        torch.manual_seed(0)
        model, data, objective = r.build().to(device), images(r), recipe_objective(r)
        quiet = dataclasses.replace(r.train, checkpoint_every=None, progress=False, device=None)
        train(model, data, objective, dataclasses.replace(quiet, steps=3), device=device)          # warm-up
        start = time.perf_counter()
        train(model, data, objective, dataclasses.replace(quiet, steps=args.steps), device=device)
        rate = args.steps * r.train.batch_size / (time.perf_counter() - start)
        print(f"{name:<20} {sum(q.numel() for q in model.parameters()):>11,} {r.train.batch_size:>6} {rate:>8.1f} "
              f"{r.train.steps:>13,} {r.train.steps * r.train.batch_size / rate / 60:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
