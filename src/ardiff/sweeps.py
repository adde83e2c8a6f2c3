r"""Training-stability sweeps: a zoo recipe retrained at a short budget over seeds and learning rates.

"Is this family of models sensitive to its training settings?" is a question about a *spread*: how far the
final metric moves when only the seed changes, and over how wide a range of learning rates training still
converges. A sweep answers it for one recipe:

- ``seeds`` runs at the recipe's learning rate, differing only in the seed (initialisation and data order);
- one run per factor in ``lr_factors``, at seed 0, with the learning rate multiplied by that factor.

Every run keeps the recipe's model, data, objective and schedule, and gets ``steps`` training steps (the
warm-up shortened to a tenth of them). A run whose loss becomes NaN or infinite is recorded as *diverged*, with
the step, not dropped. Each finished run is scored on held-out images by :func:`heldout`: the ε-loss of a
DDPM (fixed draws of t and ε, so every run sees the same ones), or the bits/dim of a PixelCNN.

The results ship as ``ardiff/weights/sweeps.json`` (no weights: the runs are small and many); the command that
reproduces a sweep is ``python -m ardiff sweep NAME``. Runs train through :func:`ardiff.zoo.train_recipe`, so an
interrupted sweep resumes where it stopped.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoints import atomic_path

__all__ = ["SWEEPS", "runs", "heldout", "run_sweep", "load", "summarise"]

# name -> seeds, lr factors, steps: 10-12 minutes per family on the 2-core CPU (six runs of 1.5-2 minutes)
SWEEPS = {
    "cats-ddpm": {"seeds": (0, 1, 2), "lr_factors": (0.25, 4.0, 16.0), "steps": 100},
    "cats-pixelcnn": {"seeds": (0, 1, 2), "lr_factors": (0.25, 4.0, 16.0), "steps": 100},
}


def _path(root=None) -> Path:
    from .shipped import WEIGHTS
    return Path(root or WEIGHTS) / "sweeps.json"


def runs(name: str, seeds=(0, 1, 2), lr_factors=(0.25, 4.0, 16.0), steps: int = 300) -> list:
    """The recipes of a sweep of recipe ``name``: seeds at its lr, then each lr factor at seed 0."""
    from .zoo import recipe

    r = recipe(name)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 10:
        raise ValueError(f"steps must be an int >= 10, got {steps!r}")
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints, at least one, got {seeds!r}")
    if any(not f > 0 for f in lr_factors):
        raise ValueError(f"lr_factors must be > 0, got {lr_factors!r}")
    short = dict(steps=steps, warmup_steps=min(r.train.warmup_steps, steps // 10),
                 checkpoint_every=max(10, steps // 4), log_every=10)
    out = [r.variant(f"{name}-sweep-seed{s}", train={**short, "seed": s}) for s in seeds]
    out += [r.variant(f"{name}-sweep-lr{f:g}x", train={**short, "seed": 0, "lr": r.train.lr * f}) for f in lr_factors]
    return out


@torch.no_grad()
def heldout(r, model, n: int = 500, seed: int = 0) -> float:
    """The held-out loss of a trained run on the first ``n`` test images: ε-MSE (DDPM; the same t and ε
    draws for every model) or bits/dim (PixelCNN)."""
    from .pixelcnn import to_pixels
    from .recipes import images

    x = images(r.data["dataset"], "test", limit=n)[0]
    dev = next(model.parameters()).device
    model.eval()
    if r.objective == "eps-mse":
        from .ddpm import loss
        g = torch.Generator(dev).manual_seed(seed)
        total = sum(loss(model, x[i:i + 100].to(dev), r.schedule, generator=g).item() * len(x[i:i + 100])
                    for i in range(0, len(x), 100))
        return total / len(x)
    if r.objective == "nll":
        px = to_pixels(x)
        nats = sum(F.cross_entropy(model(px[i:i + 50].to(dev)).float(), px[i:i + 50].to(dev).long(),
                                   reduction="sum").item() for i in range(0, len(px), 50))
        return nats / (px.numel() * math.log(2))
    raise ValueError(f"a sweep scores objectives 'eps-mse' and 'nll', not {r.objective!r}")


def run_sweep(name: str, device=None, progress: bool = True, root=None, cache=None, **settings) -> dict:
    """Train every run of the sweep of ``name`` (resuming), score it, and write the results into
    ``sweeps.json`` (atomically). ``settings`` override :data:`SWEEPS` (seeds, lr_factors, steps)."""
    from .train import TrainingDiverged, device_name, pick_device
    from .zoo import recipe, train_recipe

    base = recipe(name)
    settings = {**SWEEPS.get(name, {}), **settings}
    entry = {"name": name, "recipe_hash": base.hash, **{k: list(v) if isinstance(v, tuple) else v
                                                        for k, v in settings.items()},
             "device": device_name(pick_device(device)), "torch": torch.__version__,
             "date": time.strftime("%Y-%m-%d", time.gmtime()), "command": f"python -m ardiff sweep {name}", "runs": []}
    torch.manual_seed(base.train.seed)                  # the untrained model: where "progress" starts (summarise)
    entry["untrained"] = heldout(base, base.build().to(pick_device(device)))
    for r in runs(name, **settings):
        row = {"run": r.name, "seed": r.train.seed, "lr": r.train.lr, "steps": r.train.steps}
        try:
            model, info = train_recipe(r, device=device, progress=progress, cache=cache)
        except TrainingDiverged as e:
            row.update(diverged=True, message=str(e).split(";")[0], heldout=None)
        else:
            row.update(diverged=False, seconds=round(info["seconds"], 1), final_loss=info["final_loss"],
                       history=[list(h) for h in info["history"]], heldout=heldout(r, model))
        entry["runs"].append(row)
        if progress:
            print(f"{r.name}: " + ("diverged" if row["diverged"] else f"held-out {row['heldout']:.4f}"), flush=True)
    path = _path(root)
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[name] = entry
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(dict(sorted(results.items())), indent=1) + "\n")
    return entry


def load(name: str, root=None) -> dict:
    """The shipped results of the sweep of ``name``; raises if missing or made with another recipe."""
    from .zoo import recipe

    path = _path(root)
    results = json.loads(path.read_text()) if path.is_file() else {}
    if name not in results:
        raise ValueError(f"no shipped sweep of {name!r}; run `python -m ardiff sweep {name}`")
    if results[name]["recipe_hash"] != recipe(name).hash:
        raise ValueError(f"the sweep of {name!r} was made with recipe {results[name]['recipe_hash']}, but the recipe "
                         f"now hashes to {recipe(name).hash}; re-run `python -m ardiff sweep {name}`")
    return results[name]


def summarise(entry: dict) -> dict:
    r"""A sweep's seed spread and learning-rate sensitivity, in units that compare across model families.

    The *progress* of a run is :math:`(u - s) / (u - \bar s_\text{seeds})`, with u the held-out score of the
    untrained model and s the run's: 1 is as far as the recipe's learning rate gets on average over seeds, 0 is
    no better than untrained, and it does not depend on the score's unit (ε-MSE or bits/dim).

    Returns:
        ``seed_mean``, ``seed_sd`` (held-out score over the seed runs), ``seed_progress_sd`` (sd of the seeds'
        progress), ``lr`` (``{factor: progress, or None when diverged}``) and ``diverged`` (run names).
    """
    seeds = [r for r in entry["runs"] if r["run"].rsplit("-", 1)[-1].startswith("seed")]
    scores = [r["heldout"] for r in seeds if not r["diverged"]]
    if len(scores) < 2:
        raise ValueError(f"the sweep of {entry['name']!r} has {len(scores)} finished seed runs; need >= 2")
    base_lr, u = seeds[0]["lr"], entry["untrained"]
    mean = sum(scores) / len(scores)
    if not u > mean:
        raise ValueError(f"the seed runs of {entry['name']!r} score {mean:.4g} on average, no better than the untrained "
                         f"model's {u:.4g}: there is no progress to compare")
    sd = (sum((v - mean) ** 2 for v in scores) / (len(scores) - 1)) ** 0.5

    def progress(v):
        return (u - v) / (u - mean)

    lr = {round(r["lr"] / base_lr, 6): None if r["diverged"] else progress(r["heldout"])
          for r in entry["runs"] if r not in seeds}
    sd_progress = sd / abs(u - mean)
    return {"seed_mean": mean, "seed_sd": sd, "seed_progress_sd": sd_progress, "seeds": len(scores), "lr": lr,
            "diverged": [r["run"] for r in entry["runs"] if r["diverged"]]}


def spread_test(a: dict, b: dict) -> tuple[float, float]:
    r"""Is one family's seed-to-seed spread really larger than the other's? The F test on two summaries.

    With :math:`s_a, s_b` the sds of progress over :math:`n_a, n_b` seeds (``summarise``), equal spreads make
    :math:`F = s_a^2 / s_b^2` follow :math:`F(n_a - 1, n_b - 1)` (normal scores). Three seeds each give a ratio
    :math:`s_a / s_b` of 2 or more, either way, 40% of the time, so only a far larger ratio is evidence.

    Returns:
        ``(s_a / s_b, p)``, p two-sided.
    """
    from scipy.stats import f as f_dist

    for name, s in (("a", a), ("b", b)):
        if not s["seed_progress_sd"] > 0 or s["seeds"] < 2:
            raise ValueError(f"summary {name} needs >= 2 seeds with a spread > 0; got {s['seeds']} seeds, "
                             f"sd {s['seed_progress_sd']}")
    ratio = a["seed_progress_sd"] / b["seed_progress_sd"]
    dist = f_dist(a["seeds"] - 1, b["seeds"] - 1)
    return ratio, min(1.0, 2 * min(dist.sf(ratio ** 2), dist.cdf(ratio ** 2)))
