"""A model cache keyed by configuration, for models trained outside the zoo (benchmarks, experiments).

``load_or_train(name, config, build, fit)`` returns the model for ``config``: loaded from
``<cache>/models/<name>-<hash>.pt`` when a *complete* checkpoint for exactly this configuration is
there, else trained with ``fit`` (which resumes an interrupted run from the same file). The hash
covers the whole configuration (and a format version), so a changed configuration never loads a
stale model. Checkpoints are loaded with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch

from .data import cache_dir
from .train import load_checkpoint

__all__ = ["config_hash", "checkpoint_path", "load_or_train"]

FORMAT_VERSION = 1  # bump when a model's code changes in a way that invalidates cached weights


def config_hash(config: dict) -> str:
    """16 hex digits of the SHA-256 of the configuration as canonical JSON."""
    try:
        text = json.dumps({"config": config, "format": FORMAT_VERSION}, sort_keys=True, default=_jsonable)
    except TypeError as e:
        raise TypeError(f"config must hold JSON-serialisable values: {e}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(obj):
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def checkpoint_path(name: str, config: dict, root=None) -> Path:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"name must be non-empty letters, digits, '-' or '_', got {name!r}")
    root = Path(root) if root is not None else cache_dir() / "models"
    return root / f"{name}-{config_hash(config)}.pt"


def load_or_train(name: str, config: dict, build: Callable[[], torch.nn.Module],
                  fit: Callable[[torch.nn.Module, Path], dict | None], root=None, verbose: bool = True):
    """The cached model for ``config``, training it first when the cache has none.

    Args:
        name: a short model name, e.g. ``"ddpm-mnist"``.
        config: everything that determines the trained weights (architecture, data, steps, seed).
        build: ``() -> nn.Module``, a freshly initialised model.
        fit: ``(model, path) -> extra`` trains ``model`` in place, writing its checkpoint to ``path``
            (with ``train(..., checkpoint_path=path, resume=True)``), and may return a dict of
            extras (e.g. the loss history) to store beside the weights.
    Returns:
        ``(model, info)``: the model with EMA weights when the checkpoint has them, in eval mode;
        ``info`` holds ``path``, ``cached`` (True when loaded), ``history`` and the stored extras.
    """
    path = checkpoint_path(name, config, root)
    cached = False
    state = load_checkpoint(path) if path.is_file() else None
    if state is None or not state.get("complete"):
        if verbose:
            print(f"{name}: training ({'resuming ' + str(path) if state else 'no cached model'})")
        model = build()
        extra = fit(model, path) or {}
        state = load_checkpoint(path)
        if not state.get("complete"):
            raise RuntimeError(f"fit() did not leave a complete checkpoint at {path}")
        if extra:
            state["extra"] = extra
            from .train import save_checkpoint
            save_checkpoint(state, path)
    else:
        cached = True
        if verbose:
            print(f"{name}: loaded from the cache, {path}")
    model = build()
    model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    model.eval()
    info = {"path": str(path), "cached": cached, "history": state.get("history", []),
            "config": config, **(state.get("extra") or {})}
    return model, info
