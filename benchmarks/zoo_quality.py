"""Quality of the shipped models against the goals of the model zoo (issue 10).

    python benchmarks/zoo_quality.py [--n N] [--steps 10 20 50] [--bpd-limit M]

- mnist-classifier: test accuracy on the 10,000 test digits (goal >= 99%).
- mnist-ddpm: FID-MNIST of n DDIM samples at each step count against n test digits, beside the real floor
  (n training digits) and noise at the same n, by the card's protocol (``zoo.evaluate``); goal FID <= 1.5x the
  floor at n >= 1,000 with <= 50 steps (stretch 1.2x). Lesson 02 gives the bootstrap spreads.
- mnist-pixelcnn (when shipped): exact test bits/dim (goal <= 1.00, stretch 0.90).
Prints one line per measurement; sampling time is printed too (it is this machine's, not a target).
"""
from __future__ import annotations

import argparse
import time

import torch

from ardiff import zoo
from ardiff.data import load_mnist
from ardiff.metrics import accuracy
from ardiff.pixelcnn import to_pixels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="samples per FID (and test digits)")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50], help="DDIM step counts")
    ap.add_argument("--bpd-limit", type=int, default=10_000, help="test digits for the PixelCNN's bits/dim")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    clf = zoo.load("mnist-classifier", "cpu")
    x, y = load_mnist("test")
    print(f"mnist-classifier: test accuracy {100 * accuracy(clf, x, y):.2f}% on 10,000 digits (goal >= 99%)")

    if zoo.weights_path("mnist-ddpm").is_file():
        model = zoo.load("mnist-ddpm", "cpu")
        for steps in args.steps:  # the card's protocol (zoo.evaluate) at each step count: DDIM-50 reproduces the card
            start = time.perf_counter()
            m = zoo.evaluate("mnist-ddpm", model, clf, progress=False, steps=steps, n=args.n)
            ratio = m["value"] / m["floor"]
            print(f"mnist-ddpm: DDIM-{steps:<3} FID {m['value']:7.2f} at n = {m['n']} (real floor {m['floor']:.2f}, "
                  f"noise {m['noise']:.0f}) = {ratio:.2f}x floor, goal <= 1.5x {'met' if ratio <= 1.5 else 'missed'}; "
                  f"{time.perf_counter() - start:.0f} s", flush=True)

    if zoo.weights_path("mnist-pixelcnn").is_file():
        pcnn = zoo.load("mnist-pixelcnn", "cpu")
        px = to_pixels(load_mnist("test", limit=args.bpd_limit)[0])
        with torch.no_grad():
            bpd = torch.cat([pcnn.bits_per_dim(px[i:i + 250]) for i in range(0, len(px), 250)])
        print(f"mnist-pixelcnn: {bpd.mean():.4f} ± {bpd.std() / len(bpd) ** 0.5:.4f} bits/dim on {len(px)} test digits "
              f"(goal <= 1.00)")


if __name__ == "__main__":
    main()
