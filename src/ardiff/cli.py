"""Command line: ``python -m ardiff {train NAME, models, run-lessons, colab}``.

``train NAME`` trains a zoo recipe (progress bar, checkpoints to the cache, resumes after an
interruption), measures its headline metric and writes the weights file and its card.
``models`` prints the zoo's table: every recipe, its shipped weights and their metrics.

``run-lessons`` executes lesson notebooks top to bottom in a fresh kernel (nbclient), stores the
outputs and widget state, and records in the notebook's metadata the profile and device it ran with
(``metadata.ardiff``), so every stored figure says where it came from.

``colab`` writes ``colab/NN_*.ipynb``, the lessons with their prose as plain markdown (``ardiff.colab``).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

__all__ = ["execute_notebook", "has_outputs", "strip_progress_bars", "main"]

_BAR = re.compile(r"\d+%\|")   # tqdm's text: ' 37%|███▋      | 11/30 [...]'


def strip_progress_bars(nb) -> int:
    """Drop the progress bars (tqdm widgets) from a notebook's stored outputs; returns how many were dropped.

    A live bar is useful while a lesson runs; stored, it is a widget the static book cannot update, and its text
    fallback is frozen at the state the widget was created in ("0%"). Warnings and prints are kept."""
    dropped = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        keep = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if "application/vnd.jupyter.widget-view+json" in data and _BAR.search(text):
                dropped += 1
            else:
                keep.append(out)
        cell.outputs = keep
    return dropped


def has_outputs(nb) -> bool:
    """True when any code cell of the notebook holds a stored output."""
    return any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def _shipped_sha256() -> dict:
    """{name: sha256} of the zoo's shipped weights: which trained models a run's outputs came from."""
    from . import zoo
    out = {}
    for name in zoo.names():
        try:
            out[name] = zoo.card(name)["sha256"]
        except ValueError:
            continue
    return out


def execute_notebook(path, out_path=None, timeout: int = 1800, kernel: str = "python3") -> dict:
    """Execute one notebook in its own folder and write it (in place unless ``out_path``).

    Returns ``{"path", "seconds", "profile", "device"}``. Raises ``nbclient``'s
    ``CellExecutionError`` (with the failing cell and its traceback) when a cell fails: a lesson's
    assertion that no longer holds fails the run.
    """
    import nbformat
    from nbclient import NotebookClient

    import torch

    from .profiles import get_profile
    from .train import device_name, pick_device

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
    strip_progress_bars(nb)
    from . import __version__

    info = {"profile": get_profile().name, "device": device_name(pick_device()), "ardiff": __version__,
            "torch": torch.__version__, "seconds": round(seconds, 1), "weights": _shipped_sha256(),
            "executed": time.strftime("%Y-%m-%d", time.gmtime())}
    nb.metadata["ardiff"] = info
    out_path = Path(out_path) if out_path else path
    from .checkpoints import atomic_path

    with atomic_path(out_path) as tmp:  # an interrupted run never leaves half a notebook
        nbformat.write(nb, tmp)
    return {"path": str(out_path), **info}


def _metric_words(metric: dict | None, dataset: str = "mnist") -> str:
    if not metric:
        return "-"
    if metric["kind"] == "fid":
        per_block = f" per block of {metric['block_rows']} rows" if "block_rows" in metric else ""
        name = "FID-MNIST" if dataset == "mnist" else "FID-CIFAR"
        clip = ", x0 clipped" if metric.get("clip_x0") else ""
        return (f"{name} {metric['value']:.1f} at n={metric['n']} ({metric['method']}-{metric['steps']}{per_block}{clip}; "
                f"floor {metric['floor']:.1f}, noise {metric['noise']:.0f})")
    if metric["kind"] == "bpd":
        return f"{metric['value']:.4f} bits/dim on {metric['n']} test images"
    if metric["kind"] == "bpd-bound":
        return (f"<= {metric['value']:.4f} ± {metric['sem']:.4f} bits/dim (bound) on {metric['n']} test images, "
                f"{metric['draws']} order(s) each")
    return f"test accuracy {100 * metric['value']:.2f}% (n={metric['n']})"


def models_table() -> str:
    """One line per recipe: name, recipe hash, shipped or not, training time, size, metric."""
    from . import zoo

    rows = [("name", "recipe", "weights", "trained", "size", "metric")]
    for name in zoo.names():
        r = zoo.recipe(name)
        try:
            c = zoo.card(name)
        except ValueError:
            c = None
        shipped = zoo.weights_path(name).is_file() and c is not None
        if c is None:
            rows.append((name, r.hash, "not shipped", f"~{r.minutes:.0f} min (estimate)", "-", "-"))
            continue
        stale = "" if c["recipe_hash"] == r.hash else " (STALE: recipe changed)"
        rows.append((name, r.hash, ("shipped" if shipped else "missing file") + stale,
                     f"{c['seconds'] / 60:.0f} min, {c['device']}", f"{c['bytes'] / 1e6:.1f} MB",
                     _metric_words(c.get("metric"), r.data["dataset"])))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


def models_page(folder) -> Path:
    """Write the book's Models page, ``folder/models.md``, and a loss curve per shipped model
    (``folder/models/NAME-loss.png``), all from the manifest. Returns the page's path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import zoo

    folder = Path(folder)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    lines = ["# The trained models", "",
             "Every model the lessons measure was trained once, by a recipe in `ardiff.zoo`, on the project's "
             "2-core CPU, and ships inside the package with its SHA-256. `zoo.load(name)` checks the checksum "
             "and the recipe hash before it uses a file. This page is generated from "
             "`src/ardiff/weights/manifest.json` by `python -m ardiff models --book book`.", ""]
    for name in zoo.names():
        r = zoo.recipe(name)
        try:
            c = zoo.card(name)
        except ValueError:
            lines += [f"## `{name}`", "", f"{r.summary}. Not shipped yet: "
                      f"`python -m ardiff train {name}` trains it (about {r.minutes:.0f} minutes on 2 CPU cores).", ""]
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3))
        steps, losses = zip(*c["history"])
        ax.plot(steps, losses, color="C0")
        ax.set(xlabel="training step", ylabel="mean loss per log interval", yscale="log", title=name)
        fig.tight_layout()
        fig.savefig(folder / "models" / f"{name}-loss.png", dpi=80, metadata={"Software": None})
        plt.close(fig)
        t = c["recipe"]["train"]
        lines += [f"## `{name}`", "", f"{r.summary}.", "",
                  "| | |", "|---|---|",
                  f"| headline metric | {_metric_words(c['metric'], c['recipe']['data']['dataset'])} |",
                  f"| parameters | {c['parameters']:,} |",
                  f"| training | {c['steps']:,} steps of batch {t['batch_size']}, lr {t['lr']:g} ({t['lr_schedule']}, "
                  f"{t['warmup_steps']} warm-up steps), EMA {t['ema_decay']:g}, seed {t['seed']} |",
                  f"| data | {c['recipe']['data']['dataset']} {c['recipe']['data']['split']}"
                  f"{'' if c['recipe']['data']['limit'] is None else ' (first ' + str(c['recipe']['data']['limit']) + ')'}; "
                  f"{c['recipe']['data']['source']} |",
                  *([f"| starts from | the shipped `{c['recipe']['init']['name']}` "
                     f"(sha256 `{c['recipe']['init']['sha256'][:16]}…`) |"] if c["recipe"].get("init") else []),
                  *([f"| method 1 | λ = {c['recipe']['ar']['lam']:g}, {c['recipe']['ar']['pairing']} partners from "
                     f"`{c['recipe']['ar']['prior']}`, drawn in {c.get('partner_seconds', 0) / 60:.1f} min |"]
                    if c["recipe"].get("ar") else []),
                  f"| training time | {c['seconds'] / 60:.1f} min on {c['device']}, torch {c['torch']}, {c['date']} |",
                  f"| final loss | {c['final_loss']:.4f} |",
                  f"| file | `ardiff/weights/{c['file']}`, {c['bytes'] / 1e6:.2f} MB, fp32{' EMA' if t['ema_decay'] > 0 else ''} weights |",
                  f"| sha256 | `{c['sha256']}` |",
                  f"| recipe hash | `{c['recipe_hash']}` |",
                  f"| retrain | `{c['command']}` |", "",
                  f"![loss curve of {name}](models/{name}-loss.png)", ""]
    page = folder / "models.md"
    page.write_text("\n".join(lines))
    return page


def train_command(name: str, device=None, out=None) -> dict:
    """Train a recipe (resuming), measure its metric, write its weights and card; returns the card."""
    from . import zoo
    from .zoo_train import cache_path

    r = zoo.recipe(name)
    dest = Path(out) if out else zoo.weights_path(name).parent
    dest.mkdir(parents=True, exist_ok=True)
    if not os.access(dest, os.W_OK):  # say so now, not after an hour of training
        raise PermissionError(f"cannot write the weights to {dest}; pass --out DIR (a writable folder)")
    print(f"{name}: recipe {r.hash}, {r.train.steps} steps of batch {r.train.batch_size} "
          f"(about {r.minutes:.0f} minutes on a 2-core CPU); checkpoints in {cache_path(r)}", flush=True)
    model, info = zoo.train_recipe(r, device=device)
    print(f"{name}: trained in {info['seconds'] / 60:.1f} min on {info['device']}, final loss {info['final_loss']:.4f}; "
          "measuring its metric ...", flush=True)
    metric = zoo.evaluate(r, model)
    entry = zoo.ship(name, model, info, metric, root=out)
    print(f"{name}: {_metric_words(metric, r.data['dataset'])}; wrote {entry['file']} ({entry['bytes'] / 1e6:.2f} MB, "
          f"sha256 {entry['sha256'][:16]}...) and its card", flush=True)
    return entry


def colab_command(check: bool = False, badges: bool = False, lessons="lessons", out="colab") -> int:
    """Write the lessons' Colab editions (after adding badges with ``badges``); with ``check``, write nothing
    and return 1 when an edition differs from its lesson, naming it."""
    from . import colab

    if badges:
        for path in colab.add_badges(lessons):
            print(f"{path}: added the Open-in-Colab badge")
    changed = colab.write_editions(lessons, out, check=check)
    for path in changed:
        print(f"{path}: {'out of date (run python -m ardiff colab)' if check else 'written'}")
    if not changed:
        print(f"{out}/: every Colab edition is up to date")
    return 1 if check and changed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ardiff")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a zoo recipe (resumable) and write its weights and model card")
    tr.add_argument("name", help="a recipe name (see `python -m ardiff models`)")
    tr.add_argument("--device", help="torch device (default: CUDA, then MPS, then CPU)")
    tr.add_argument("--out", type=Path, help="folder for the weights and manifest (default: the package's weights/)")
    sw = sub.add_parser("sweep", help="retrain a recipe at a short budget over seeds and learning rates "
                                      "(training stability; resumable) and write weights/sweeps.json")
    sw.add_argument("name", help="a recipe with a sweep: " + ", ".join(__import__("ardiff.sweeps").sweeps.SWEEPS))
    sw.add_argument("--device", help="torch device (default: CUDA, then MPS, then CPU)")
    mo = sub.add_parser("models", help="the zoo: recipes, shipped weights and their metrics")
    mo.add_argument("--book", type=Path, help="also write the book's Models page (models.md) into this folder")
    run = sub.add_parser("run-lessons", help="execute lesson notebooks and store their outputs")
    run.add_argument("notebooks", nargs="*", type=Path, help="default: lessons/*.ipynb")
    run.add_argument("--missing-only", action="store_true", help="only notebooks with no stored outputs")
    run.add_argument("--out", type=Path, help="write executed copies to this folder instead of in place")
    run.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    co = sub.add_parser("colab", help="write colab/NN_*.ipynb: each lesson's code with its prose as plain markdown")
    how = co.add_mutually_exclusive_group()
    how.add_argument("--check", action="store_true", help="write nothing; exit 1 listing the editions that drifted")
    how.add_argument("--badges", action="store_true", help="first put an 'Open in Colab' badge on each lesson")
    args = parser.parse_args(argv)
    if args.command == "colab":
        return colab_command(args.check, args.badges)
    if args.command == "train":
        from . import zoo
        if args.name not in zoo.names():
            parser.error(f"unknown model {args.name!r}; choose from {', '.join(zoo.names())}")
        train_command(args.name, args.device, args.out)
        return 0
    if args.command == "sweep":
        from . import sweeps
        if args.name not in sweeps.SWEEPS:
            parser.error(f"no sweep for {args.name!r}; choose from {', '.join(sweeps.SWEEPS)}")
        sweeps.run_sweep(args.name, device=args.device)
        return 0
    if args.command == "models":
        print(models_table())
        if args.book:
            print(f"wrote {models_page(args.book)}")
        return 0

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
