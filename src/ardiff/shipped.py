"""The shipped weights: a folder inside the package, its manifest of model cards, checked reads, atomic writes.

``ardiff/weights/NAME.pt`` holds a model's weights (a state dict, fp32; EMA weights when the recipe
keeps an EMA) and ``ardiff/weights/manifest.json`` its card: SHA-256, size, recipe hash, training time
and device, loss curve, the headline metric. :func:`read` checks the recipe hash and the SHA-256 before
a byte is parsed; :func:`write` replaces a weights file and its card only once both are complete.

This module knows files and cards, not the catalogue (:mod:`ardiff.recipes`) or the reader's names
(:mod:`ardiff.zoo`, the door to it). Tests point it elsewhere by setting ``shipped.WEIGHTS``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoints import ChecksumError, atomic_path, file_sha256, load_checkpoint

__all__ = ["WEIGHTS", "ShippedWeightsError", "manifest", "sha256", "path", "read", "load", "write"]

WEIGHTS = Path(__file__).with_name("weights")


class ShippedWeightsError(RuntimeError):
    """A shipped weights file does not match its manifest or its recipe."""


def manifest(root=None) -> dict:
    """``{name: card}`` of every shipped model in ``root`` (default :data:`WEIGHTS`); {} without a manifest."""
    file = Path(root or WEIGHTS) / "manifest.json"
    return json.loads(file.read_text()) if file.is_file() else {}


def sha256(name: str, root=None) -> str | None:
    """The SHA-256 of the shipped weights of ``name`` as the manifest records it (None when not shipped).

    A recipe that starts from, or learns against, another shipped model puts this into its hash.
    """
    return manifest(root).get(name, {}).get("sha256")


def path(name: str, root=None) -> Path:
    """Where the weights of ``name`` live: ``root/NAME.pt`` (default :data:`WEIGHTS`)."""
    return Path(root or WEIGHTS) / f"{name}.pt"


def read(recipe, root=None) -> dict:
    """The shipped state dict of a recipe, checked against its card first.

    Args:
        recipe: a :class:`~ardiff.recipes.Recipe` (its ``name``, ``hash`` and ``minutes`` are used).
        root: the weights folder (default :data:`WEIGHTS`).
    Returns:
        the state dict, loaded with ``weights_only=True`` from the bytes that were hashed.
    Raises:
        ValueError: no card for ``recipe.name`` in the manifest.
        ShippedWeightsError: the card's recipe hash is not ``recipe.hash`` (a setting changed), or the file's
            SHA-256 is not the card's; the message names the file, both values and the command that retrains it.
    """
    name, file = recipe.name, path(recipe.name, root)
    entry = manifest(root).get(name)
    if entry is None:
        raise ValueError(f"no shipped model card for {name!r}; train it with `python -m ardiff train {name}`")
    hint = f"retrain it with `python -m ardiff train {name}` (about {recipe.minutes:.0f} CPU-minutes)"
    if entry["recipe_hash"] != recipe.hash:
        raise ShippedWeightsError(f"{file}: trained by recipe {entry['recipe_hash']}, but the recipe in this code "
                                  f"hashes to {recipe.hash} (a setting changed); {hint}")
    try:
        return load_checkpoint(file, sha256=entry["sha256"])
    except ChecksumError as e:
        raise ShippedWeightsError(f"{e} (the manifest's); the file is damaged or was replaced; {hint}") from None


def load(recipe, device="cpu", root=None) -> torch.nn.Module:
    """The shipped model of a recipe: ``recipe.build()`` with the weights of :func:`read`, in eval mode."""
    model = recipe.build()
    model.load_state_dict(read(recipe, root))
    return model.eval().to(device)


def write(name: str, state: dict, card: dict, root=None) -> dict:
    """Write ``NAME.pt`` (``state``) and its card into the manifest, each atomically.

    Both files are complete before either replaces the shipped one.

    Args:
        name: the model's name (the file is ``NAME.pt``).
        state: the state dict to ship (tensors on the CPU).
        card: the card's fields; ``name``, ``file``, ``sha256`` and ``bytes`` are put first.
        root: the weights folder (default :data:`WEIGHTS`).
    Returns:
        the card as written to the manifest.
    """
    root = Path(root or WEIGHTS)
    file = path(name, root)
    with atomic_path(file) as tmp_weights, atomic_path(root / "manifest.json") as tmp_manifest:
        torch.save(state, tmp_weights)
        entry = {"name": name, "file": file.name, "sha256": file_sha256(tmp_weights),
                 "bytes": tmp_weights.stat().st_size, **card}
        cards = manifest(root)
        cards[name] = entry
        tmp_manifest.write_text(json.dumps(dict(sorted(cards.items())), indent=1) + "\n")
    return entry
