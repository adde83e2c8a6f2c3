"""Sampling speed of the shipped mnist-ddpm on this machine: milliseconds per image per network evaluation.

Part 1 times one forward pass (the cost of every sampler step) for each memory layout (contiguous, channels_last) and
batch size, and ``torch.compile`` at the sampler's chunk size. Part 2 times whole sampler runs the way the lessons
call them, before and after: ``samplers.sample(model, ..., (n, 1, 28, 28), steps)`` with ``batch_size=n`` (one
network call per step on all n images, as the library did until the chunked default) against the default
(``batch_size=samplers.EVAL_BATCH``), and checks that both give the same samples. Median of the repeats; GFLOP/s
from the forward pass's 0.543 GFLOP per image (``torch.utils.flop_counter``; a multiply-add counts as 2).

Run alone on the machine (nothing else using the cores):
    python benchmarks/sampling_speed.py [--n 1000] [--steps 10] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ardiff import samplers, zoo


def forward_ms(model, batch: int, channels_last: bool, repeats: int) -> float:
    x, t = torch.randn(batch, 1, 28, 28), torch.full((batch,), 500)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    model(x, t)                                                          # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x, t)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / batch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="images per sampler run (the full profile's FID n)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128, 256, 500, 1000])
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    m = zoo.pretrained("mnist-ddpm", device="cpu")
    model, schedule = m.model, m.schedule
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 1, 28, 28), torch.full((1,), 500))
    gflop = counter.get_total_flops() / 1e9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; forward pass {gflop:.3f} GFLOP per image")
    print("\n1. one forward pass, ms per image (median of", args.repeats, "repeats)")
    print(f"{'batch':>6} {'contiguous':>11} {'channels_last':>14}")
    for b in args.batches:
        row = [forward_ms(model, b, False, args.repeats)]
        model.to(memory_format=torch.channels_last)
        row.append(forward_ms(model, b, True, args.repeats))
        model.to(memory_format=torch.contiguous_format)
        print(f"{b:>6} {row[0]:>8.2f} ({gflop / row[0] * 1000:>4.0f} GFLOP/s) {row[1]:>7.2f} ({gflop / row[1] * 1000:>4.0f})")
    if args.compile:
        compiled = torch.compile(model)
        ms = forward_ms(compiled, samplers.EVAL_BATCH, False, args.repeats)
        print(f"compiled, batch {samplers.EVAL_BATCH}: {ms:.2f} ms/image ({gflop / ms * 1000:.0f} GFLOP/s)")

    print(f"\n2. DDIM, {args.steps} steps, n = {args.n} images in one sample() call")
    runs = {}
    for name, batch in ((f"before: one call on all n = {args.n}", args.n),
                        (f"after: the default, chunks of {samplers.EVAL_BATCH}", None)):
        times = []
        for _ in range(max(1, args.repeats // 2)):
            start = time.perf_counter()
            x = samplers.sample(model, schedule, (args.n, 1, 28, 28), steps=args.steps, method="ddim",
                                batch_size=batch, generator=torch.Generator().manual_seed(0))
            times.append(time.perf_counter() - start)
        runs[name] = (statistics.median(times), x)
        ms = 1000 * runs[name][0] / args.n / args.steps
        print(f"  {name:<48} {runs[name][0]:7.1f} s  {ms:5.2f} ms per image per evaluation "
              f"({gflop / ms * 1000:.0f} GFLOP/s)")
    (t0, x0), (t1, x1) = runs.values()
    print(f"  speed-up {t0 / t1:.2f}x; max |difference| of the samples {(x0 - x1).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
