"""DDPM training speed and quality against wall-clock time: the library loop vs a plain loop.

    python benchmarks/ddpm_train.py [--profile quick|full] [--seconds S] [--evals K] [--n N]

Both loops train the U-Net of the shipped recipe ``mnist-ddpm`` from scratch on MNIST with the same loss:
- library: ardiff.train.train with the recipe's settings (batch, lr, warm-up, EMA with warm-up; on CUDA
  also GPU-resident data, bf16 autocast and torch.compile);
- plain: fp32, batch 128, data on the CPU moved per batch, torch.optim.AdamW, raw weights.
Every S/K seconds of training each loop is paused and scored with FID-MNIST (DDIM-50, n samples vs
n test digits, the shipped classifier; the library loop with its EMA weights), beside the real floor at the same n.
The profile sets only the defaults of S and n.
Prints one table; evaluation time is excluded from the training clock.
"""
from __future__ import annotations

import argparse
import time

import torch

from ardiff import ddpm, samplers, zoo
from ardiff.data import load_mnist
from ardiff.metrics import FidMnist
from ardiff.profiles import get_profile
from ardiff.train import pick_device, train


def score(model, schedule, fid, device):
    g = torch.Generator(device).manual_seed(0)
    return fid(samplers.sample(model, schedule, (fid.n, 1, 28, 28), steps=50, method="ddim", generator=g))


def library_loop(x, schedule, recipe, seconds, evals, fid, device):
    model = recipe.build()
    rows, clock = [], {"train": 0.0, "last": None, "next": seconds / evals}

    def callback(step, m, ema):
        now = time.perf_counter()
        clock["train"] += now - clock["last"]
        if clock["train"] >= clock["next"]:
            rows.append((clock["train"], step, step * recipe.train.batch_size / clock["train"], score(ema, schedule, fid, device)))
            clock["next"] += seconds / evals
        clock["last"] = time.perf_counter()
        return clock["train"] >= seconds  # True stops the loop

    clock["last"] = time.perf_counter()
    train(model, x, lambda m, b, g: ddpm.loss(m, b[0], schedule, generator=g), steps=10**9,
          batch_size=recipe.train.batch_size, lr=recipe.train.lr, warmup_steps=recipe.train.warmup_steps,
          ema_decay=recipe.train.ema_decay, log_every=20, compile=device.type == "cuda",
          callback=callback, progress=False)
    return rows


def plain_loop(x, schedule, recipe, seconds, evals, fid, device, batch=128, lr=2e-4):
    model = recipe.build().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    rows, elapsed, step, nxt = [], 0.0, 0, seconds / evals
    while elapsed < seconds:
        t0 = time.perf_counter()
        for _ in range(20):
            idx = torch.randint(0, len(x), (batch,), generator=g)
            loss = ddpm.loss(model, x[idx].to(device), schedule)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - t0
        if elapsed >= nxt:
            rows.append((elapsed, step, step * batch / elapsed, score(model, schedule, fid, device)))
            model.train()
            nxt += seconds / evals
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", default=None, help="quick or full (default: full with CUDA, else quick)")
    p.add_argument("--seconds", type=float, default=None, help="training seconds per loop (default 180 full, 60 quick)")
    p.add_argument("--evals", type=int, default=3, help="FID evaluations per loop")
    p.add_argument("--n", type=int, default=None, help="samples per FID (default: the profile's fid_n)")
    args = p.parse_args()
    prof, device, recipe = get_profile(args.profile), pick_device(), zoo.recipe("mnist-ddpm")
    seconds = args.seconds or (180.0 if prof.name == "full" else 60.0)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"{device.type} ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}, profile {prof.name}, "
          f"U-Net {recipe.build().num_parameters():,} parameters (recipe mnist-ddpm)")
    schedule = recipe.schedule
    fid = FidMnist(zoo.load("mnist-classifier", device=device), n=args.n or prof.fid_n)
    x, _ = load_mnist("train")
    print(f"FID-MNIST: DDIM-50, n = {fid.n}, real floor {fid.floor:.2f} (shipped classifier)")
    print(f"{'loop':<34} {'train s':>8} {'steps':>7} {'images/s':>10} {'FID':>9} {'FID/floor':>10}")
    for label, fn in ((f"library (batch {recipe.train.batch_size}, EMA)", library_loop), ("plain fp32 (batch 128, CPU data)", plain_loop)):
        for sec, step, ips, f in fn(x, schedule, recipe, seconds, args.evals, fid, device):
            print(f"{label:<34} {sec:>8.1f} {step:>7} {ips:>10,.0f} {f:>9.2f} {f / fid.floor:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
