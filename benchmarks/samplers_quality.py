"""FID-MNIST of the shipped mnist-ddpm under each standard sampler: the instruments behind every few-step verdict.

    python benchmarks/samplers_quality.py [--n 1000]

Each row is the card's protocol (``zoo.evaluate``: n samples from seed 0 against the first n test digits, the
real floor from n training digits, noise at the same n) with the sampler, step count, spacing and x0_hat clipping
of the row: DPM-Solver++(2M) at 10 and 20 steps, clipped and not; DDIM at 50 steps, trailing and linspace;
ancestral at 50 steps (trailing). It also applies the design's sanity gate, "the DDPM's best sampler within 1.5x
the real floor" (``ardiff.gates.fid_within_floor``). The seconds are this machine's, printed, not a target.
"""
from __future__ import annotations

import argparse
import time

import torch

from ardiff import zoo
from ardiff.gates import fid_within_floor

ROWS = [  # (method, steps, spacing, clip_x0)
    ("dpm-solver++", 10, "trailing", False), ("dpm-solver++", 10, "trailing", True),
    ("dpm-solver++", 20, "trailing", False), ("dpm-solver++", 20, "trailing", True),
    ("ddim", 50, "trailing", False), ("ddim", 50, "linspace", False),
    ("ddpm", 50, "trailing", False),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="samples per FID (and test digits)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    m = zoo.pretrained("mnist-ddpm", device="cpu")
    clf = zoo.load("mnist-classifier", "cpu")
    results = []
    for method, steps, spacing, clip in ROWS:
        start = time.perf_counter()
        r = zoo.evaluate("mnist-ddpm", m.model, clf, progress=False, n=args.n, method=method, steps=steps,
                         spacing=spacing, clip_x0=clip)
        results.append(r)
        print(f"{method:<13} {steps:>3} steps, {spacing:<8} {'clipped' if clip else 'unclipped':<9}: FID {r['value']:6.1f} "
              f"at n = {r['n']} = {r['value'] / r['floor']:.2f}x the real floor {r['floor']:.1f} (noise {r['noise']:.0f}); "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    best = min(results, key=lambda r: r["value"])
    print(fid_within_floor("the DDPM's best sampler", best["value"], best["floor"]))


if __name__ == "__main__":
    main()
