"""Files that are never half written and never parsed unchecked: atomic writes and safe loads.

Every file the library writes (training checkpoints, the shipped weights and their manifest, sweep
results, executed notebooks) goes through :func:`atomic_path`: the bytes go to ``NAME.tmp`` in the
same folder, which then replaces ``NAME`` in one ``os.replace``. An interrupted write leaves the old
file as it was. Checkpoints load with ``torch.load(..., weights_only=True)`` (tensors and plain
containers, never code), and with a SHA-256 the bytes are checked before they are parsed.

>>> save_checkpoint({"model": model.state_dict()}, "run.pt")
>>> state = load_checkpoint("run.pt", sha256="9f86d0...")  # ChecksumError before parsing on a mismatch
>>> with atomic_path("results.json") as tmp:
...     tmp.write_text(text)
"""
from __future__ import annotations

import hashlib
import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from .data import ChecksumError, _digest

__all__ = ["atomic_path", "save_checkpoint", "load_checkpoint", "file_sha256", "ChecksumError"]


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; on a clean exit it replaces ``path`` at once.

    The temporary file is ``NAME.tmp`` beside ``path`` (same file system, so the rename is atomic; a fixed
    name, so ``torch.save``'s archive name, which it takes from the file name, is the same on every run).
    When the block raises, the temporary file is removed and ``path`` is left untouched.

    Args:
        path: the file to write; its folder is created.
    Yields:
        the temporary ``Path`` to write to (the block must create it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def save_checkpoint(state: dict, path) -> None:
    """``torch.save(state)`` to ``path`` through :func:`atomic_path`: never half a checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path, map_location="cpu", sha256: str | None = None) -> dict:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only, no code.

    Args:
        path: a file path (or a binary file object when ``sha256`` is None).
        map_location: where tensors go (default the CPU).
        sha256: the expected SHA-256 (hex); the bytes read are hashed and checked before they are parsed.
    Returns:
        the saved object (a dict).
    Raises:
        ChecksumError: the file's SHA-256 is not ``sha256``; the message names the file and both values.
    """
    if sha256 is None:
        return torch.load(path, map_location=map_location, weights_only=True)
    data = Path(path).read_bytes()  # hash and parse the same bytes
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise ChecksumError(f"{path}: SHA-256 {found} does not match the expected {sha256}")
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)


def file_sha256(path) -> str:
    """The SHA-256 (hex) of a file, read in blocks (the same digest :mod:`ardiff.data` verifies downloads with)."""
    return _digest(Path(path), "sha256")
