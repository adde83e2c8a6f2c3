r"""Training-stability sweeps: a zoo recipe retrained at a short budget over seeds and learning rates.

"Is this family of models sensitive to its training settings?" is a question about a *spread*: how far the
final metric moves when only the seed changes, and over how wide a range of learning rates training still
converges. A sweep answers it for one recipe:

- ``seeds`` runs at the recipe's learning rate, differing only in the seed (initialisation and data order);
- one run per factor in ``lr_factors``, at seed 0, with the learning rate multiplied by that factor.

Every run keeps the recipe's model, data, objective, schedule and warm-up, and gets ``steps`` training steps
(the cosine decay squeezed into them). The budget is chosen per family so that each gets a comparable share of
the way from its untrained score to its converged one (the shipped model's): a sweep that compares a model still
on its first plateau with one nearly done measures the budget, not the family. A run whose loss becomes NaN or
infinite is recorded as *diverged*, with the step, not dropped. Each finished run is scored on held-out images by
:func:`heldout`: the ε-loss of a DDPM (fixed draws of t and ε, so every run sees the same ones), or the bits/dim
of a PixelCNN.

The results ship as ``ardiff/weights/sweeps.json`` (no weights: the runs are small and many); the command that
reproduces a sweep is ``python -m ardiff sweep NAME``. Each finished run is written to the file at once (under
``partial:NAME`` until the sweep is complete), so an interrupted sweep resumes at its next run, even in another
session; a run itself resumes from its checkpoint through :func:`ardiff.zoo.train_recipe`.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoints import atomic_path

__all__ = ["SWEEPS", "runs", "heldout", "run_sweep", "load", "summarise", "spread_test", "verdict"]

# name -> seeds, lr factors, steps. Five seeds and two raised learning rates per family; each family's budget takes
# it past its warm-up and at least 70% of the way to its converged score (DDPM ~5 min a run, PixelCNN ~10-13 on the
# 2-core CPU: about 1 h 50 min for both).
SWEEPS = {
    "cats-ddpm": {"seeds": (0, 1, 2, 3, 4), "lr_factors": (4.0, 16.0), "steps": 300},
    "cats-pixelcnn": {"seeds": (0, 1, 2, 3, 4), "lr_factors": (4.0, 16.0), "steps": 500},
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
    if r.train.warmup_steps >= steps:
        raise ValueError(f"steps must exceed the recipe's warm-up of {r.train.warmup_steps} steps, got {steps}")
    short = dict(steps=steps, checkpoint_every=max(10, steps // 10), log_every=10)
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
    ``sweeps.json`` (atomically, after every run). ``settings`` override :data:`SWEEPS` (seeds, lr_factors, steps).

    The entry also holds ``untrained`` (the score of the recipe's model at initialisation) and ``converged`` (the
    shipped model's score, where one is shipped): the two ends of the way a run's *progress* is measured on."""
    from .train import TrainingDiverged, device_name, pick_device
    from .zoo import recipe, train_recipe

    base = recipe(name)
    settings = {**SWEEPS.get(name, {}), **settings}
    plan = runs(name, **settings)
    path = _path(root)
    results = _read(path)
    meta = {"name": name, "recipe_hash": base.hash, **{k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in settings.items()}}
    old = results.get(f"partial:{name}", {})
    if old and all(old.get(k) == v for k, v in meta.items()):
        entry = old                                      # resume: keep the runs already scored
    else:
        dev = pick_device(device)
        torch.manual_seed(base.train.seed)               # the untrained model: where progress starts (summarise)
        entry = {**meta, "device": device_name(dev), "torch": torch.__version__,
                 "date": time.strftime("%Y-%m-%d", time.gmtime()), "command": f"python -m ardiff sweep {name}",
                 "untrained": heldout(base, base.build().to(dev)), "converged": _converged(base, dev), "runs": []}
    done = {r["run"] for r in entry["runs"]}

    def write(complete):                                 # re-read: another sweep may have written meanwhile
        results = _read(path)
        results.pop(f"partial:{name}", None)
        results[name if complete else f"partial:{name}"] = {**entry, "complete": complete}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(dict(sorted(results.items())), indent=1) + "\n")

    for r in plan:
        if r.name in done:
            continue
        row = {"run": r.name, "seed": r.train.seed, "lr": r.train.lr, "steps": r.train.steps}
        try:
            model, info = train_recipe(r, device=device, progress=progress, cache=cache)
        except TrainingDiverged as e:
            row.update(diverged=True, message=str(e).split(";")[0], heldout=None)
        else:
            row.update(diverged=False, seconds=round(info["seconds"], 1), final_loss=info["final_loss"],
                       history=[list(h) for h in info["history"]], heldout=heldout(r, model))
        entry["runs"].append(row)
        write(complete=len(entry["runs"]) == len(plan))
        if progress:
            print(f"{r.name}: " + ("diverged" if row["diverged"] else f"held-out {row['heldout']:.4f}"), flush=True)
    if f"partial:{name}" in _read(path):                 # every run was already scored: finish the entry
        write(complete=True)
    return {**entry, "complete": True}


def _read(path) -> dict:
    """The results in ``sweeps.json`` at ``path`` ({} when there is none yet)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def _converged(r, device) -> float | None:
    """The held-out score of the shipped model of recipe ``r`` (its converged score), or None if none is shipped."""
    from .shipped import manifest
    from .zoo import pretrained

    if manifest().get(r.name, {}).get("recipe_hash") != r.hash:
        return None
    return heldout(r, pretrained(r.name, device=device).model)


def load(name: str, root=None) -> dict:
    """The shipped results of the sweep of ``name``; raises if missing or made with another recipe."""
    from .zoo import recipe

    results = _read(_path(root))
    if name not in results:
        raise ValueError(f"no shipped sweep of {name!r}; run `python -m ardiff sweep {name}`")
    if results[name]["recipe_hash"] != recipe(name).hash:
        raise ValueError(f"the sweep of {name!r} was made with recipe {results[name]['recipe_hash']}, but the recipe "
                         f"now hashes to {recipe(name).hash}; re-run `python -m ardiff sweep {name}`")
    return results[name]


def summarise(entry: dict) -> dict:
    r"""A sweep's seed spread and learning-rate sensitivity, in units that compare across model families.

    With u the held-out score of the untrained model, c the converged one (the shipped model's) and s a run's:

    - the *progress* of a run is :math:`(u - s) / (u - c)`: 0 is no better than untrained, 1 is as good as the
      shipped model, whatever the score's unit (ε-MSE or bits/dim). A sweep compares families fairly only if
      both get a comparable share of the way (the gate of :func:`verdict`);
    - the *relative seed spread* is :math:`\operatorname{sd}(s) / (\bar s - c)`: the seed-to-seed sd as a share of
      the distance the seeds still have to go. A model far from converged has a large distance left, and a spread
      should be read against it, not against how far the model has come.

    Returns:
        ``seed_mean``, ``seed_sd`` (held-out score over the seed runs that finished), ``seeds`` (how many),
        ``seeds_diverged`` (how many seed runs diverged), ``diverged`` (run names),
        ``lr`` (``{factor: (u - s) / (u - seed_mean), or None when diverged}``) and ``seed_progress_sd``
        (``seed_sd / (u - seed_mean)``); with a converged score also ``converged``, ``progress`` (the seeds'
        mean progress), ``seed_progresses``, ``lr_progress`` (``{factor: progress or None}``) and ``seed_rel_sd``.
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
    others = [r for r in entry["runs"] if r not in seeds]
    out = {"seed_mean": mean, "seed_sd": sd, "seed_progress_sd": sd / abs(u - mean), "seeds": len(scores),
           "seeds_diverged": sum(r["diverged"] for r in seeds),
           "lr": {round(r["lr"] / base_lr, 6): None if r["diverged"] else (u - r["heldout"]) / (u - mean) for r in others},
           "diverged": [r["run"] for r in entry["runs"] if r["diverged"]]}
    c = entry.get("converged")
    if c is not None:
        if not u > c:
            raise ValueError(f"the converged score {c:.4g} of {entry['name']!r} is no better than the untrained {u:.4g}")
        out.update(converged=c, progress=(u - mean) / (u - c), seed_progresses=[(u - v) / (u - c) for v in scores],
                   lr_progress={round(r["lr"] / base_lr, 6): None if r["diverged"] else (u - r["heldout"]) / (u - c)
                                for r in others},
                   seed_rel_sd=sd / (mean - c) if mean > c else float("inf"))
    return out


def spread_test(a: dict, b: dict, key: str = "seed_progress_sd") -> tuple[float, float]:
    r"""Is one family's seed-to-seed spread really larger than the other's? The F test on two summaries.

    With :math:`s_a, s_b` the spreads ``key`` of two summaries (``summarise``: ``seed_progress_sd`` or
    ``seed_rel_sd``, each a seed sd over a fixed scale) over :math:`n_a, n_b` seeds, equal spreads make
    :math:`F = s_a^2 / s_b^2` follow :math:`F(n_a - 1, n_b - 1)` (normal scores). Three seeds each give a ratio
    :math:`s_a / s_b` of 2 or more, either way, 40% of the time, so only a far larger ratio is evidence.

    Returns:
        ``(s_a / s_b, p)``, p two-sided.
    """
    from scipy.stats import f as f_dist

    for name, s in (("a", a), ("b", b)):
        if key not in s:
            raise ValueError(f"key must be a spread in both summaries, e.g. 'seed_progress_sd'; summary {name} has no {key!r}")
        if not 0 < s[key] < float("inf") or s["seeds"] < 2:
            raise ValueError(f"summary {name} needs >= 2 seeds with a spread > 0; got {s['seeds']} seeds, "
                             f"{key} {s[key]}")
    ratio = a[key] / b[key]
    dist = f_dist(a["seeds"] - 1, b["seeds"] - 1)
    return ratio, min(1.0, 2 * min(dist.sf(ratio ** 2), dist.cdf(ratio ** 2)))


def verdict(ar: dict, dm: dict, alpha: float = 0.05, gate: float = 0.7, fail_share: float = 0.5) -> dict:
    """The study's stability claim ("autoregressive training is sensitive, diffusion training very stable") judged
    on two sweep summaries (:func:`summarise`, each with a converged score).

    - **Gate:** both families' seeds must average at least ``gate`` of the way from untrained to converged, and
      still have some way to go (a spread is read against that distance); otherwise the budget, not the family,
      would decide, and the verdict is "not judged".
    - **Seeds, the test:** the F test of the relative seed spreads (``spread_test(..., key="seed_rel_sd")``) at
      ``alpha``: "supported" when the PixelCNN's is the larger, "contradicted" when the DDPM's is, "not supported"
      when the test finds no difference.
    - **Learning rates, described:** a raised learning rate *fails* when its run diverges (NaN or infinite loss) or
      keeps less than ``fail_share`` of the seeds' progress (a run stuck near the untrained loss has failed as surely
      as one that overflowed). With one run per rate this is reported, not tested; so are diverged seed runs.

    Returns ``verdict`` (that word), ``words`` (a sentence), ``ratio``, ``p``, ``failed`` (``{"ar": [factors],
    "dm": [factors]}``), ``diverged`` (``{"ar": n, "dm": n}`` raised rates that diverged) and ``seeds_diverged``.
    """
    if not 0 < fail_share < 1:
        raise ValueError(f"fail_share must be in (0, 1), got {fail_share!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not 0 < gate <= 1:
        raise ValueError(f"gate must be in (0, 1], got {gate!r}")
    for name, s in (("ar", ar), ("dm", dm)):
        if "progress" not in s:
            raise ValueError(f"{name} must be a summary with a converged score (summarise of a sweep with 'converged')")
    pair = (("ar", ar), ("dm", dm))
    failed = {k: [f for f, v in s["lr_progress"].items() if v is None or v < fail_share * s["progress"]] for k, s in pair}
    out = {"failed": failed, "ratio": None, "p": None,
           "diverged": {k: sum(v is None for v in s["lr_progress"].values()) for k, s in pair},
           "seeds_diverged": {k: s.get("seeds_diverged", 0) for k, s in pair}}
    label = {"ar": "the PixelCNN", "dm": "the DDPM"}
    rates = lambda k: ", ".join(f"{f:g}x" for f in failed[k]) or "none"
    lr_words = (f"raised learning rates that failed (one run each, described, not tested): PixelCNN {rates('ar')}, "
                f"DDPM {rates('dm')}")
    if any(out["seeds_diverged"].values()):
        lr_words += "; diverged seed runs: " + ", ".join(f"{label[k]} {v}" for k, v in out["seeds_diverged"].items())
    short = [f"{label[k]} reaches {s['progress']:.0%}" for k, s in pair if s["progress"] < gate]
    if short:
        return {**out, "verdict": "not judged",
                "words": f"not judged: at this budget {' and '.join(short)} of the way to its converged score "
                         f"(the gate asks {gate:.0%} of each); {lr_words}"}
    done = [label[k] for k, s in pair if not s["seed_rel_sd"] < float("inf")]
    if done:
        return {**out, "verdict": "not judged",
                "words": f"not judged: the seeds of {' and '.join(done)} reach the converged score, so there is no "
                         f"distance left to read a spread against; {lr_words}"}
    ratio, p = spread_test(ar, dm, key="seed_rel_sd")
    test = f"relative seed spread {ar['seed_rel_sd']:.3f} (PixelCNN) vs {dm['seed_rel_sd']:.3f} (DDPM), F test p = {p:.3g}"
    if p >= alpha:
        word, words = "not supported", f"not supported: neither family varies more from seed to seed ({test})"
    elif ratio > 1:
        word, words = "supported", f"supported: the PixelCNN varies {ratio:.1f}x more from seed to seed ({test})"
    else:
        word, words = "contradicted", f"contradicted: the DDPM varies {1 / ratio:.1f}x more from seed to seed ({test})"
    return {**out, "verdict": word, "words": f"{words}; {lr_words}", "ratio": ratio, "p": p}
