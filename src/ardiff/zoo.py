"""The book's trained models by name: load one, or get it with its schedule, recipe and card.

Every model the lessons measure is a recipe (:mod:`ardiff.recipes`: model, data, objective, schedule,
every training setting and the seed, hashed), trained once and shipped inside the package
(:mod:`ardiff.shipped`: ``ardiff/weights/NAME.pt`` and a card in ``manifest.json`` with its SHA-256,
recipe hash, training time and device, loss curve and headline metric).

>>> m = zoo.pretrained("mnist-ddpm")        # everything about one model, in one call
>>> m.model, m.schedule, m.recipe, m.card   # eval-mode nn.Module (EMA weights), NoiseSchedule, Recipe, card dict
>>> m.card["metric"]                        # FID with its n, floor and noise
>>> model = zoo.load("mnist-ddpm")          # the bare nn.Module
>>> zoo.recipe("mnist-ddpm").schedule       # the NoiseSchedule it was trained with
>>> zoo.card("mnist-ddpm")["metric"]

:func:`load` checks the file's SHA-256 before parsing it and the recipe hash before using it; on a
mismatch it raises :class:`ShippedWeightsError` naming the file, the expected and found values and the
command that retrains it. It never retrains silently: only a missing file (or ``ARDIFF_RETRAIN=1``, or
``retrain=True``) trains the recipe (:mod:`ardiff.zoo_train`), and it says so first. Loading leaves the
caller's global random state alone.

Train one yourself: ``python -m ardiff train NAME`` (progress bar, checkpoints to the cache every few
minutes, resumes after an interruption, measures the card's metric (:mod:`ardiff.protocol`), writes the
weights file and its card at the end).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import shipped
from .protocol import FEATURE_NET, measure
from .recipes import RECIPES, Recipe, names, recipe
from .schedules import NoiseSchedule
from .shipped import WEIGHTS, ShippedWeightsError
from .zoo_train import train_recipe

__all__ = ["Pretrained", "pretrained", "load", "card", "weights_path", "evaluate", "ship", "train_recipe",
           "Recipe", "RECIPES", "names", "recipe", "ShippedWeightsError", "WEIGHTS"]


@dataclass(frozen=True, eq=False)
class Pretrained:
    """A trained model of the book with what it takes to use and to judge it."""
    model: torch.nn.Module          # eval mode, on the device asked for (EMA weights where the recipe keeps an EMA)
    schedule: NoiseSchedule | None  # the NoiseSchedule it was trained with (None for non-diffusion recipes)
    recipe: Recipe                  # how it was trained (recipe.hash matches card["recipe_hash"])
    card: dict                      # the manifest's card; for a retrained run, its own card with metric None


def weights_path(name: str, root=None) -> Path:
    """Where the shipped weights of ``name`` live (``ardiff/weights/NAME.pt`` unless ``root``)."""
    return shipped.path(recipe(name).name, root)


def card(name: str, root=None) -> dict:
    """The model card of a shipped model: sha256, bytes, recipe hash, steps, training seconds, device,
    torch version, date, final loss, loss history and the headline metric."""
    cards = shipped.manifest(root)
    if recipe(name).name not in cards:
        raise ValueError(f"no shipped model card for {name!r}; train it with `python -m ardiff train {name}`")
    return cards[name]


def _retrain(retrain: bool | None) -> bool:
    if retrain is None:
        return os.environ.get("ARDIFF_RETRAIN", "").strip().lower() not in ("", "0", "false", "no", "off")
    return bool(retrain)


def _load(name: str, device=None, retrain: bool | None = None, root=None):
    """``(model, card)``: the shipped model and its card, or a run trained now by the recipe and its card."""
    from .train import pick_device

    r = recipe(name)
    device = pick_device(device)
    retrain = _retrain(retrain)
    path = weights_path(name, root)
    if retrain or not path.is_file():
        why = "ARDIFF_RETRAIN is set" if retrain else f"no shipped weights at {path}"
        print(f"{name}: {why}; training it by its recipe (about {r.minutes:.0f} minutes on a 2-core CPU, "
              f"much less on a GPU; an interrupted run resumes)")
        model, info = train_recipe(r, device=device)
        return model, _card(r, model, info, metric=None)
    return shipped.load(r, device, root), card(name, root)


def load(name: str, device=None, retrain: bool | None = None, root=None) -> torch.nn.Module:
    """The shipped model ``name`` in eval mode, on ``device`` (default: CUDA, then MPS, then CPU).

    The file's SHA-256 is checked against the manifest before it is parsed (``weights_only=True``), and
    the manifest's recipe hash against the recipe in this code. ``retrain=True`` (or ``ARDIFF_RETRAIN=1``)
    trains the recipe instead (loading a finished run from the cache); so does a missing file, with a
    message saying so and how long it takes. The global random state is left as it was.
    """
    return _load(name, device, retrain, root)[0]


def pretrained(name: str, device=None, retrain: bool | None = None, root=None) -> Pretrained:
    """The model ``name`` with its schedule, recipe and card (:class:`Pretrained`); arguments as :func:`load`.

    >>> m = pretrained("mnist-ddpm")
    >>> x = samplers.sample(m.model, m.schedule, (16, 1, 28, 28), steps=20)
    """
    model, info = _load(name, device, retrain, root)
    r = recipe(name)
    return Pretrained(model=model, schedule=r.schedule, recipe=r, card=info)


def evaluate(r: Recipe | str, model, classifier=None, progress: bool = True, **protocol) -> dict:
    """Measure a recipe's headline metric on ``model`` by the protocol in ``recipe.metric`` (see
    :mod:`ardiff.protocol`); keyword arguments change it, e.g. ``steps=10``. For FID the feature network
    is loaded from the zoo unless ``classifier`` is given."""
    r = recipe(r) if isinstance(r, str) else r
    m = {**r.metric, **protocol}  # e.g. steps=10: the same protocol at another step count
    dev = next(model.parameters()).device
    if m["kind"] == "fid" and classifier is None:
        classifier = load(FEATURE_NET[r.data["dataset"]], dev)  # may train (outside no_grad)
    with torch.no_grad():
        return measure(r, m, model, classifier, dev, progress)


def _card(r: Recipe, model, info: dict, metric: dict | None) -> dict:
    """The card of a trained run (without the file's name, SHA-256 and size, which :func:`ship` adds)."""
    history = info["history"]
    stride = max(1, len(history) // 200)  # at most ~200 points of the loss curve in the card
    curve = [list(h) for h in history[::stride]] + ([list(history[-1])] if (len(history) - 1) % stride else [])
    entry = {"name": r.name, "recipe_hash": r.hash, "recipe": r.to_dict(), "summary": r.summary,
             "parameters": sum(p.numel() for p in model.parameters()), "steps": info["steps"],
             "seconds": round(info["seconds"], 1), "device": info["device"], "torch": torch.__version__,
             "date": time.strftime("%Y-%m-%d", time.gmtime()), "final_loss": info["final_loss"],
             "history": curve,
             "metric": metric, "command": f"python -m ardiff train {r.name}"}
    if "partner_seconds" in info:
        entry["partner_seconds"] = round(info["partner_seconds"], 1)
    return entry


def ship(name: str, model, info: dict, metric: dict, root=None) -> dict:
    """Write ``NAME.pt`` (the state dict, fp32, on the CPU) and its card into the manifest, both atomically.

    Args:
        name: a recipe name.
        model: the trained model (EMA weights).
        info: the ``info`` of :func:`train_recipe` (history, steps, seconds, device, final_loss).
        metric: the headline metric, from :func:`evaluate`.
        root: the weights folder (default the package's).
    Returns:
        the card as written.
    """
    r = recipe(name)
    state = {k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.cpu()
             for k, v in model.state_dict().items()}
    return shipped.write(r.name, state, _card(r, model, info, metric), root)
