"""Command line: ``python -m ardiff run-lessons [NOTEBOOK ...] [--missing-only] [--out DIR]``.

``run-lessons`` executes lesson notebooks top to bottom in a fresh kernel (nbclient), stores the
outputs and widget state, and records in the notebook's metadata the profile and device it ran with
(``metadata.ardiff``), so every stored figure says where it came from.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["execute_notebook", "has_outputs", "main"]


def has_outputs(nb) -> bool:
    """True when any code cell of the notebook holds a stored output."""
    return any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def execute_notebook(path, out_path=None, timeout: int = 1800, kernel: str = "python3") -> dict:
    """Execute one notebook in its own folder and write it (in place unless ``out_path``).

    Returns ``{"path", "seconds", "profile", "device"}``. Raises ``nbclient``'s
    ``CellExecutionError`` (with the failing cell and its traceback) when a cell fails: a lesson's
    assertion that no longer holds fails the run.
    """
    import nbformat
    from nbclient import NotebookClient

    import torch

    from .profiles import get_profile, pick_device

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, store_widget_state=True,
                            shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    try:
        client.execute()
    except Exception:
        failed = Path(out_path or path).with_suffix(".failed.ipynb")  # keep what ran, for a look at the error
        nbformat.write(nb, failed)
        print(f"{path}: failed; the partly executed notebook is in {failed}", file=sys.stderr)
        raise
    seconds = time.perf_counter() - start
    device = pick_device()
    info = {"profile": get_profile().name,
            "device": torch.cuda.get_device_name(0) if device.type == "cuda" else device.type,
            "torch": torch.__version__, "seconds": round(seconds, 1),
            "executed": time.strftime("%Y-%m-%d", time.gmtime())}
    nb.metadata["ardiff"] = info
    out_path = Path(out_path) if out_path else path
    tmp = out_path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out_path)  # atomic: an interrupted run never leaves half a notebook
    return {"path": str(out_path), **info}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ardiff")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run-lessons", help="execute lesson notebooks and store their outputs")
    run.add_argument("notebooks", nargs="*", type=Path, help="default: lessons/*.ipynb")
    run.add_argument("--missing-only", action="store_true", help="only notebooks with no stored outputs")
    run.add_argument("--out", type=Path, help="write executed copies to this folder instead of in place")
    run.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)

    import nbformat

    notebooks = args.notebooks or sorted(Path("lessons").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        parser.error("no notebooks given and none found in lessons/")
    for nb_path in notebooks:
        if not nb_path.is_file():
            parser.error(f"notebook not found: {nb_path}")
        if args.missing_only and has_outputs(nbformat.read(nb_path, as_version=4)):
            print(f"{nb_path}: has stored outputs, kept")
            continue
        out = args.out / nb_path.name if args.out else None
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
        print(f"{nb_path}: executing ...", flush=True)
        info = execute_notebook(nb_path, out, timeout=args.timeout)
        print(f"{nb_path}: done in {info['seconds']} s ({info['profile']} profile, {info['device']}) -> {info['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
