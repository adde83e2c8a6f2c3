"""Training a zoo recipe: its data, its objective, its checkpoints in the cache, resuming a run.

:func:`train_recipe` runs :func:`ardiff.train.train` on a :class:`~ardiff.recipes.Recipe`, with checkpoints
in ``<cache>/zoo/NAME-HASH.pt`` (the recipe hash in the name: a changed setting starts afresh), and
returns the finished run from there when it is complete. A fine-tuned recipe starts from the checked
shipped weights of its ``init``; a method-1 recipe first draws its AR partners from the shipped prior
(cached, and their cost kept with the run). ``python -m ardiff train NAME`` calls it, then ships the
result (:func:`ardiff.zoo.ship`).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import shipped
from .checkpoints import load_checkpoint, save_checkpoint
from .recipes import FORMAT_VERSION, RECIPES, Recipe, images, recipe
from .train import pick_device, train

__all__ = ["train_recipe", "cache_path", "training_data", "initial_model", "objective", "OBJECTIVES"]

OBJECTIVES = ("eps-mse", "blockwise-eps-mse", "nll", "cross-entropy", "cross-entropy+hflip", "eps-mse+ar",
              "absorbing-nll")
_PARTNER_BATCH = 256


def cache_path(r: Recipe, root=None) -> Path:
    """Where the run of a recipe is checkpointed: ``root/NAME-HASH.pt`` (default ``<cache>/zoo``)."""
    from .data import cache_dir
    return Path(root or cache_dir() / "zoo") / f"{r.name}-{r.hash}.pt"


def training_data(r: Recipe, device=None, progress: bool = True, cache=None):
    """The training data of a recipe, and the seconds spent drawing method 1's AR partners (else None)."""
    from .pixelcnn import to_pixels

    x, y = images(r.data["dataset"], r.data["split"], r.data["limit"])
    if r.objective == "eps-mse+ar":
        partners, seconds = _partners(r, x, device, progress, cache)
        return (x, partners), seconds
    return {"eps-mse": x, "blockwise-eps-mse": x, "nll": to_pixels(x), "absorbing-nll": to_pixels(x),
            "cross-entropy": (x, y), "cross-entropy+hflip": (x, y)}[r.objective], None


def _partners_path(r: Recipe, device=None, cache=None) -> Path:
    """Where a method-1 recipe's partners are cached: keyed by everything that decides them (the prior's
    SHA-256, pairing, seed, data, sampler batch, device type and code format), not by lam."""
    key = {k: v for k, v in r.to_dict()["ar"].items() if k != "lam"} | {
        "data": r.data, "batch": _PARTNER_BATCH, "device": pick_device(device).type, "format": FORMAT_VERSION}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_path(r, cache).with_name(f"partners-{digest}.pt")


def _shipped_input(name: str, why: str) -> torch.nn.Module:
    """A shipped model that another recipe is built on: never retrained on the fly, since the recipe's hash
    records the shipped file's SHA-256."""
    if name not in RECIPES or not shipped.path(name).is_file() or name not in shipped.manifest():
        raise ValueError(f"{why} needs the shipped weights of {name!r}; ship them first "
                         f"(`python -m ardiff train {name}`)")
    return shipped.load(RECIPES[name], device="cpu")


def _partners(r: Recipe, x: torch.Tensor, device=None, progress: bool = True, cache=None):
    """Method 1's AR partners of the training images (:func:`ardiff.arprior.ar_partners`), drawn once from
    the shipped prior and cached (they cost PixelCNN sampling time, which the card reports)."""
    from .arprior import ar_partners

    path = _partners_path(r, device, cache)
    if path.is_file():
        state = load_checkpoint(path)
        return state["partners"], state["seconds"]
    a = r.ar
    prior = _shipped_input(a["prior"], f"{r.name} (its AR partners)").to(pick_device(device))
    start = time.perf_counter()
    partners = ar_partners(prior, x.to(next(prior.parameters()).device), a["pairing"], keep_rows=a["keep_rows"],
                           seed=a["seed"], batch_size=_PARTNER_BATCH, pool=a["pool"], progress=progress)
    seconds = time.perf_counter() - start
    save_checkpoint({"partners": partners, "seconds": seconds}, path)
    return partners, seconds


def initial_model(r: Recipe) -> torch.nn.Module:
    """The model a fresh run of ``r`` starts from: ``r.build()``, or for a fine-tuned recipe the checked shipped
    weights of its ``init``. A block-wise recipe (objective 'blockwise-eps-mse') reads two mask channels more than the
    DDPM it starts from: its first convolution is the DDPM's widened with zero weights, and its embedding of h starts
    at zero (:func:`ardiff.blockwise.init_from_ddpm`), so it starts as the DDPM."""
    model = r.build()
    if r.init is None:
        return model
    source = _shipped_input(r.init, f"{r.name} (fine-tuned from it)")
    if r.objective == "blockwise-eps-mse":
        from .blockwise import init_from_ddpm
        return init_from_ddpm(model, source)
    model.load_state_dict(source.state_dict())
    return model


def objective(r: Recipe):
    """The loss of a recipe's objective, as ``(model, batch, generator) -> scalar`` for :func:`ardiff.train.train`."""
    if r.objective == "eps-mse":
        from .ddpm import loss
        schedule = r.schedule
        return lambda m, batch, g: loss(m, batch[0], schedule, generator=g)
    if r.objective == "blockwise-eps-mse":  # one network for every block height, or for r.block_rows only
        from .blockwise import BLOCK_ROWS, loss
        schedule, heights = r.schedule, BLOCK_ROWS if r.block_rows is None else (r.block_rows,)
        return lambda m, batch, g: loss(m, batch[0], schedule, generator=g, block_rows=heights)
    if r.objective == "nll":  # mean NLL per pixel in nats; / ln 2 = bits/dim
        return lambda m, batch, g: F.cross_entropy(m(batch[0]).float(), batch[0].long())
    if r.objective == "absorbing-nll":  # ARDM's bound, nats/dim: the hidden pixels' mean NLL (ardiff.absorbing)
        from . import absorbing
        return lambda m, batch, g: absorbing.loss(m, batch[0], generator=g)
    if r.objective == "cross-entropy":
        return lambda m, batch, g: F.cross_entropy(m(batch[0]), batch[1])
    if r.objective == "cross-entropy+hflip":  # each image mirrored left-right with probability 1/2
        def flipped(m, batch, g):
            x = batch[0]
            flip = torch.rand(len(x), generator=g, device=x.device) < 0.5
            return F.cross_entropy(m(torch.where(flip[:, None, None, None], x.flip(-1), x)), batch[1])
        return flipped
    if r.objective == "eps-mse+ar":  # method 1: L_diff + lam * ||x0_hat - x0_AR||^2
        from .arprior import consistency_loss
        schedule, lam = r.schedule, r.ar["lam"]
        return lambda m, batch, g: consistency_loss(m, batch[0], batch[1], schedule, lam, generator=g)[0]
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {r.objective!r}")


def train_recipe(r: Recipe | str, device=None, progress: bool = True, cache=None):
    """Train a recipe (or load its finished run from the cache), resuming an interrupted run.

    Args:
        r: a recipe or its name.
        device: the torch device (default: CUDA, then MPS, then CPU).
        progress: show progress bars.
        cache: the folder of the checkpoints (default ``<cache>/zoo``, see :func:`cache_path`).
    Returns:
        ``(model, info)``: the EMA weights (raw when the recipe has no EMA) in eval mode on ``device``, and
        ``info`` with ``history``, ``seconds`` (all sessions together), ``steps``, ``device``, ``path``,
        ``final_loss`` (and ``partner_seconds`` for method 1).
    """
    r = recipe(r) if isinstance(r, str) else r
    path = cache_path(r, cache)
    state = load_checkpoint(path) if path.is_file() else None
    if state is None or not state.get("complete"):
        model = initial_model(r) if state is None else r.build()   # a resumed run loads its checkpoint
        data, partner_seconds = training_data(r, device, progress, cache)
        train(model, data, objective(r), r.train, checkpoint_path=path, resume=True, device=device,
              progress=progress)
        state = load_checkpoint(path)
        if partner_seconds is not None:  # the partners' cost stays with the finished run
            state["partner_seconds"] = partner_seconds
            save_checkpoint(state, path)
    partner_seconds = state.get("partner_seconds")
    model = r.build()
    model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    info = {"history": [tuple(h) for h in state["history"]], "seconds": state.get("seconds"),
            "steps": state["step"], "device": state.get("device"), "path": str(path),
            "final_loss": state["history"][-1][1] if state["history"] else None}
    if partner_seconds is not None:
        info["partner_seconds"] = partner_seconds
    return model.eval().to(pick_device(device)), info
