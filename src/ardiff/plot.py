"""Plots shared by the lessons: image grids, noising strips and schedule curves.

Images are NCHW tensors in [-1, 1]; every function draws into a given matplotlib ``Axes`` (or makes
a figure) and returns the figure, so a lesson can show it or save it.
"""
from __future__ import annotations

import re

import numpy as np
import torch

__all__ = ["PALETTE", "color", "plain_log_axis", "to_display", "image_grid", "show_images", "noising_strip", "plot_schedules", "trajectory_animation",
           "band_grid"]


# One colour per schedule and per method, in every figure of the book (matplotlib's tab10 colours).
PALETTE = {
    # noise schedules
    "linear": "#1f77b4",     # DDPM's linear schedule, 1e-4 -> 0.02, T = 1000
    "study": "#9467bd",      # the CIFAR-10 study's linear schedule, 1e-4 -> 0.05, T = 100
    "cosine": "#2ca02c",
    "sigmoid": "#ff7f0e",
    # models and samplers
    "DDPM": "#d62728",       # ancestral sampling
    "DDIM": "#17becf",
    "DPM-Solver++": "#393b79",   # DPM-Solver++(2M), the few-step ODE solver
    "PixelCNN": "#8c564b",
    "AR prior": "#e377c2",   # lesson 04's methods
    "block-wise": "#bcbd22",  # lesson 07
    "absorbing": "#ff9896",   # lesson 08: order-agnostic AR as absorbing diffusion
    "Wiener": "#8c6d31",     # the linear-Gaussian (Wiener) denoiser: lesson 05's null model
    "data mean": "#637939",  # lesson 04's control: a truncated start from the mean training digit
    # reference lines
    "real": "#000000",       # the real data's floor
    "noise": "#7f7f7f",      # pure noise
}
SCHEDULE_KEYS = ("study", "cosine", "sigmoid", "linear")
_MATCH_ORDER = [*SCHEDULE_KEYS, "DPM-Solver++", "DDIM", "DDPM", "PixelCNN", "AR prior", "block-wise", "absorbing",
                "Wiener", "data mean", "real", "noise"]   # specific first
_ALIASES = {"ancestral": "DDPM"}   # words that name a key's method
_PATTERNS = {k: re.compile(r"(?<!\w)" + re.escape(k.lower()).replace("\\-", "-?") + r"(?!\w)") for k in [*_MATCH_ORDER, *_ALIASES]}


def color(name: str) -> str:
    """The book's colour for a schedule or method: ``name`` is a key of :data:`PALETTE`, or a label that contains
    one as a word (case-insensitive, the more specific first: 'CIFAR study linear ...' is 'study', 'DDIM-50' is
    'DDIM', 'blockwise' is 'block-wise'; 'denoiser' contains no key).

    Raises:
        ValueError: naming the keys, when ``name`` contains none of them.
    """
    low = str(name).lower()
    for key in [*_MATCH_ORDER, *_ALIASES]:
        if _PATTERNS[key].search(low):
            return PALETTE[_ALIASES.get(key, key)]
    raise ValueError(f"name must contain one of {[*_MATCH_ORDER, *_ALIASES]} as a word (case-insensitive), got {name!r}")


def plain_log_axis(ax, axis: str = "x", ticks=None):
    """A log-scaled axis whose ticks read 10, 20, 50 rather than 10^1, 2x10^1: ``ticks`` (default: the 1-2-5
    sequence) labelled as plain numbers, minor ticks unlabelled."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if ticks is None:
        ticks = [m * 10.0 ** e for e in range(-4, 7) for m in (1, 2, 5)]
    target.set_major_locator(FixedLocator(list(ticks)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
    return ax


def to_display(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W) or (N, H, W, 3) floats in [0, 1], clipped."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a (N, C, H, W) tensor with C in (1, 3), got {shape}")
    x = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    return x[:, 0].numpy() if x.shape[1] == 1 else x.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1, frame: float = 0.5) -> np.ndarray:
    """Tile N images into one array of ``ceil(N / nrow)`` rows of ``nrow``: each tile framed by ``pad``
    pixels of grey level ``frame``, so that an all-white or all-black sample still shows as a tile."""
    x = to_display(images)
    n, h, w = x.shape[:3]
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.full((nrows * (h + pad) + pad, ncol * (w + pad) + pad) + x.shape[3:], frame, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = x[i]
    return grid


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, scale: float = 0.9):
    """Draw an image grid; returns the figure."""
    import matplotlib.pyplot as plt

    grid = image_grid(images, nrow)
    if ax is None:
        h, w = grid.shape[:2]
        _, ax = plt.subplots(figsize=(scale * w / 28 * 0.9 + 0.2, scale * h / 28 * 0.9 + 0.4))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


def noising_strip(images_by_t: dict, row_labels=None, title: str | None = None):
    """A grid of images noised at several steps: one column per ``t`` (dict key), one row per image.

    Args:
        images_by_t: ``{t: (N, C, H, W) tensor}``.
        row_labels: optional N labels for the rows.
    """
    import matplotlib.pyplot as plt

    ts = list(images_by_t)
    n = images_by_t[ts[0]].shape[0]
    fig, axes = plt.subplots(n, len(ts), figsize=(1.25 * len(ts), 1.3 * n + 0.3), squeeze=False)
    for j, t in enumerate(ts):
        shown = to_display(images_by_t[t])
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(shown[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t = {t}", fontsize=9)
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_schedules(schedules, normalise_t: bool = True, mark_t=None):
    r"""Curves of :math:`\bar\alpha_t`, :math:`\beta_t` and log-SNR for several schedules, side by side, each in
    its :func:`color` when its label names a schedule kind.

    Args:
        schedules: ``{label: NoiseSchedule}``.
        normalise_t: plot against t / T so that schedules of different T line up.
        mark_t: optional fraction (or step, if not normalised) to mark with a vertical line.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    seen = []                                  # a second schedule of the same kind gets the next line style
    for label, s in schedules.items():
        x = (torch.arange(s.T) + 1) / s.T if normalise_t else torch.arange(s.T)
        c = color(label) if any(_PATTERNS[k].search(label.lower()) for k in SCHEDULE_KEYS) else None
        style = dict(label=label, color=c, ls=["-", "--", ":", "-."][seen.count(c) % 4] if c else "-")
        seen.append(c)
        axes[0].plot(x, s.alphas_cumprod, **style)
        axes[1].semilogy(x, s.betas, **style)
        axes[2].plot(x, s.log_snr, **style)
    xlabel = "(t + 1) / T  (fraction of the chain)" if normalise_t else "t"
    for ax, name in zip(axes, [r"$\bar\alpha_t$ (signal variance kept)", r"$\beta_t$ (noise added per step)",
                               r"$\log \mathrm{SNR}_t = \log \bar\alpha_t / (1 - \bar\alpha_t)$"]):
        ax.set_xlabel(xlabel)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        if mark_t is not None:
            ax.axvline(mark_t, color="k", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def trajectory_animation(trajectory: dict, frames: int = 25, nrow: int = 4, interval: int = 150, dpi: int = 56):
    r"""Animate a reverse process: :math:`x_t` beside :math:`\hat x_0` at each recorded step.

    Args:
        trajectory: ``{"t": [...], "x_t": [(B, C, H, W), ...], "x0_hat": [...]}`` from
            ``ardiff.samplers.sample(..., return_trajectory=True)``.
        frames: how many of the recorded steps to show (evenly spaced, the last one included).
    Returns:
        a ``matplotlib.animation.FuncAnimation``; ``IPython.display.HTML(anim.to_jshtml())`` plays it
        in a notebook and in the static book.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    n = len(trajectory["t"])
    if n == 0:
        raise ValueError("trajectory is empty: sample with return_trajectory=True")
    idx = sorted(set(np.linspace(0, n - 1, min(frames, n)).round().astype(int).tolist()))
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.3), dpi=dpi)  # a low dpi keeps the embedded frames small
    ims = []
    for ax, key, name in zip(axes, ("x_t", "x0_hat"), (r"$x_t$", r"$\hat x_0$ (the model's guess)")):
        ims.append(ax.imshow(image_grid(trajectory[key][idx[0]], nrow), cmap="gray", vmin=0, vmax=1,
                             interpolation="nearest"))
        ax.set_axis_off()
        ax.set_title(name)
    title = fig.suptitle("")
    fig.tight_layout()

    def draw(k):
        i = idx[k]
        for im, key in zip(ims, ("x_t", "x0_hat")):
            im.set_data(image_grid(trajectory[key][i], nrow))
        title.set_text(f"t = {trajectory['t'][i]}")
        return ims

    anim = animation.FuncAnimation(fig, draw, frames=len(idx), interval=interval, blit=False)
    plt.close(fig)
    return anim


def band_grid(states: dict, edges, n: int = 4, band_names=None, image_label: str = "image", title: str | None = None):
    """Images along a trajectory split into frequency bands (:func:`ardiff.spectral.band_split`).

    One column per step (the keys of ``states``, e.g. t), each cell ``n`` images side by side; the first
    row shows the images, the next rows their bands from low to high frequency. The lowest band holds
    the mean and is drawn like an image; the higher bands swing around zero (grey) and are drawn on one
    scale per row (the largest swing of that band over all steps), so a band that has not formed yet is
    flat grey.

    Args:
        states: ``{t: (B, 1, H, W)}`` in [-1, 1] (B >= n).
        edges: the cut frequencies (cycles per pixel) between the bands.
    """
    import matplotlib.pyplot as plt

    from .spectral import band_split

    ts = list(states)
    if any(states[t].shape[0] < n for t in ts):
        raise ValueError(f"every state must hold at least n = {n} images")
    k = len(edges) + 1
    names = list(band_names or [f"band {i + 1}" for i in range(k)])
    if len(names) != k:
        raise ValueError(f"band_names must have {k} entries (one per band), got {len(names)}")
    bands = {t: band_split(states[t][:n].cpu().clamp(-1, 1), edges).float() for t in ts}  # (k, n, 1, H, W)
    swing = [1.0] + [max(bands[t][i].abs().max().item() for t in ts) or 1.0 for i in range(1, k)]
    fig, axes = plt.subplots(k + 1, len(ts), figsize=(1.15 * n * len(ts) / 4 + 0.8, 1.0 * (k + 1) + 0.5),
                             squeeze=False)
    for col, t in enumerate(ts):
        rows = [states[t][:n].cpu()] + [bands[t][i] / swing[i] for i in range(k)]
        for row, images in enumerate(rows):
            ax = axes[row, col]
            ax.imshow(image_grid(images.clamp(-1, 1), nrow=n), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t = {t}", fontsize=9)
            if col == 0:
                ax.set_ylabel(([image_label] + names)[row], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
