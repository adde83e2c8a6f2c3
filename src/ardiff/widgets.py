r"""The noise-schedule explorer, in two faces.

- :func:`schedule_explorer`: ipywidgets, for a live kernel (Jupyter, Colab). Every redraw calls the
  library itself (:class:`~ardiff.schedules.NoiseSchedule`, :func:`~ardiff.forward.q_sample`).
- :func:`static_schedule_explorer`: one self-contained block of HTML + JavaScript (no kernel, no CDN)
  for the rendered book. Its JavaScript (``static/explorer.js``) recomputes the schedule in float64
  exactly as ``schedules.py`` does, and noises the images as
  :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon` with the same ε as the
  Python side (quantised to steps of 1/32).

Both show: the schedule (linear, cosine, sigmoid), T and its parameters, a timestep t;
:math:`\bar\alpha_t` and log-SNR against t; and the given images noised at t.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
from importlib import resources

import numpy as np
import torch

from .forward import q_sample
from .schedules import NoiseSchedule

__all__ = ["make_schedule", "schedule_explorer", "static_schedule_explorer", "StaticExplorer", "EPS_SCALE"]

_explorer_count = 0
EPS_SCALE = 32.0  # the static explorer stores eps as int8(round(32 * eps)), |eps| <= 3.97

DEFAULTS = dict(kind="linear", T=1000, beta_start=1e-4, beta_end=0.02, s=0.008, start=-3.0, end=3.0, tau=1.0)


def make_schedule(kind: str, T: int, beta_start=1e-4, beta_end=0.02, s=0.008, start=-3.0, end=3.0,
                  tau=1.0) -> NoiseSchedule:
    """The schedule the explorer's controls describe."""
    if kind == "linear":
        return NoiseSchedule.linear(T, beta_start, beta_end)
    if kind == "cosine":
        return NoiseSchedule.cosine(T, s)
    if kind == "sigmoid":
        return NoiseSchedule.sigmoid(T, start, end, tau)
    raise ValueError(f"kind must be 'linear', 'cosine' or 'sigmoid', got {kind!r}")


def _check_images(images) -> list[torch.Tensor]:
    """Accept one (C, H, W) / (1, C, H, W) tensor or a list of them; C in (1, 3); values in [-1, 1]."""
    if isinstance(images, torch.Tensor):
        images = list(images) if images.ndim == 4 else [images]
    out = []
    for im in images:
        if not isinstance(im, torch.Tensor) or im.ndim != 3 or im.shape[0] not in (1, 3):
            raise ValueError(f"images must be (C, H, W) tensors with C in (1, 3), got "
                             f"{tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__}")
        out.append(im.detach().float().cpu().clamp(-1, 1))
    if not out:
        raise ValueError("images must hold at least one image")
    return out


def _noises(images, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(im.shape, generator=g) for im in images]


# ------------------------------------------------------------------------------ live (ipywidgets)
def schedule_explorer(images, seed: int = 0, **initial):
    """An ipywidgets explorer for a live kernel; returns the widget box (display it, or let it echo).

    Args:
        images: a few (C, H, W) images in [-1, 1] (e.g. an MNIST digit and a photograph).
        seed: the seed of the fixed noise ε shared by every t, so a drag changes only t.
        initial: starting values among ``kind, T, beta_start, beta_end, s, start, end, tau, t``.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    images = _check_images(images)
    eps = _noises(images, seed)
    init = {**DEFAULTS, "t": 250, **initial}
    style = dict(description_width="90px")
    c = dict(
        kind=W.Dropdown(options=["linear", "cosine", "sigmoid"], value=init["kind"], description="schedule"),
        T=W.IntSlider(value=init["T"], min=10, max=2000, step=10, description="T", style=style),
        beta_start=W.FloatLogSlider(value=init["beta_start"], base=10, min=-5, max=-2, description="beta_start",
                                    style=style, readout_format=".1e"),
        beta_end=W.FloatLogSlider(value=init["beta_end"], base=10, min=-3, max=-0.5, description="beta_end",
                                  style=style, readout_format=".1e"),
        s=W.FloatSlider(value=init["s"], min=0.0, max=0.2, step=0.002, description="s", style=style,
                        readout_format=".3f"),
        start=W.FloatSlider(value=init["start"], min=-6, max=0, step=0.1, description="start", style=style),
        end=W.FloatSlider(value=init["end"], min=0.5, max=6, step=0.1, description="end", style=style),
        tau=W.FloatSlider(value=init["tau"], min=0.1, max=2.0, step=0.05, description="tau", style=style),
        t=W.IntSlider(value=init["t"], min=0, max=init["T"] - 1, description="t", style=style,
                      continuous_update=True),
    )
    params = {"linear": ["beta_start", "beta_end"], "cosine": ["s"], "sigmoid": ["start", "end", "tau"]}
    out = W.Output()
    state = {}  # what is drawn now: schedule, t, error (read by tests and curious users)

    def redraw(*_):
        kind = c["kind"].value
        for k, names in params.items():
            for n in names:
                c[n].layout.display = "" if k == kind else "none"
        c["t"].max = c["T"].value - 1
        try:
            sched = make_schedule(kind, c["T"].value, **{n: c[n].value for n in params[kind]})
        except ValueError as e:  # e.g. beta_start > beta_end: say so instead of drawing
            state.update(schedule=None, t=None, error=str(e))
            out.clear_output(wait=True)
            with out:
                print(e)
            return
        t = c["t"].value
        state.update(schedule=sched, t=t, error=None)
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(1, 2 + len(images), figsize=(3.2 * (2 + len(images)), 3.0))
            steps = np.arange(sched.T)
            for ax, y, name in ((axes[0], sched.alphas_cumprod.numpy(), r"$\bar\alpha_t$"),
                                (axes[1], sched.log_snr.numpy(), r"$\log\,\mathrm{SNR}_t$")):
                ax.plot(steps, y)
                ax.axvline(t, color="C3")
                ax.set_title(name), ax.set_xlabel("t"), ax.grid(alpha=0.3)
            for ax, x0, e in zip(axes[2:], images, eps):
                xt = q_sample(x0[None], t, sched, noise=e[None])[0]
                shown = ((xt + 1) / 2).clamp(0, 1)
                ax.imshow((shown[0] if shown.shape[0] == 1 else shown.permute(1, 2, 0)).numpy(), cmap="gray",
                          vmin=0, vmax=1)
                ax.set_axis_off()
            axes[2].set_title(f"t={t}  alpha_bar={sched.alphas_cumprod[t]:.3f}")
            fig.tight_layout()
            plt.show()

    for w in c.values():
        w.observe(redraw, names="value")
    redraw()
    box = W.VBox([W.HBox([c["kind"], c["T"], c["t"]]),
                  W.HBox([c[n] for names in params.values() for n in names]), out])
    box.state = state
    return box


# ------------------------------------------------------------------------------ static (HTML + JS)
class StaticExplorer:
    """Self-contained HTML + JavaScript; displays itself in Jupyter and in the rendered book."""

    def __init__(self, html_text: str, payload: dict):
        self.html = html_text
        self.payload = payload  # the data sent to the page: images (uint8) and noise (int8), base64

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path) -> None:
        """Write a standalone page (open it in any browser, offline)."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"<!doctype html><meta charset='utf-8'><title>ardiff schedule explorer</title>{self.html}")


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def static_schedule_explorer(images, labels=None, seed: int = 0, scale: int | None = None, **initial
                             ) -> StaticExplorer:
    """A kernel-free explorer: a reader of the static page drags t and the parameters, and sees the
    curves and the noised images change. No network, no kernel.

    Args:
        images: a few (C, H, W) images in [-1, 1].
        labels: optional captions, one per image.
        seed: seed of the fixed noise ε (the same ε as :func:`schedule_explorer` with this seed).
        scale: display magnification of the images (default: to about 192 pixels wide).
        initial: starting values among ``kind, T, beta_start, beta_end, s, start, end, tau, t``.
    """
    images = _check_images(images)
    labels = list(labels) if labels is not None else [f"image {i}" for i in range(len(images))]
    if len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(labels)}")
    init = {**DEFAULTS, "t": 250, **initial}
    make_schedule(init["kind"], init["T"], **{k: init[k] for k in ("beta_start", "beta_end", "s", "start",
                                                                     "end", "tau")})  # validates
    if not 0 <= init["t"] < init["T"]:
        raise ValueError(f"t must be in [0, T-1] = [0, {init['T'] - 1}], got {init['t']}")
    payload = {"eps_scale": EPS_SCALE, "images": []}
    for im, e in zip(images, _noises(images, seed)):
        x0 = torch.round((im + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()  # (C, H, W)
        q = torch.round(e * EPS_SCALE).clamp(-127, 127).to(torch.int8).numpy()
        payload["images"].append({"c": im.shape[0], "h": im.shape[1], "w": im.shape[2],
                                  "x0": _b64(x0), "eps": _b64(q)})
    js = resources.files("ardiff").joinpath("static/explorer.js").read_text(encoding="utf-8")
    global _explorer_count
    _explorer_count += 1  # two explorers on one page get different ids
    uid = f"ardiff-explorer-{_explorer_count}-" + hashlib.sha1(json.dumps(payload).encode()).hexdigest()[:10]

    def slider(name, lo, hi, step, value, label, kind=None):
        shown = f'<span data-v="{name}"></span>'
        dfor = f' data-for="{kind}"' if kind else ""
        return (f'<label{dfor} style="margin-right:14px;white-space:nowrap">{label} '
                f'<input type="range" data-p="{name}" min="{lo}" max="{hi}" step="{step}" value="{value}" '
                f'style="vertical-align:middle;width:130px"> {shown}</label>')

    opts = "".join(f'<option value="{k}"{" selected" if k == init["kind"] else ""}>{k}</option>'
                   for k in ("linear", "cosine", "sigmoid"))
    canvases = []
    for i, (im, lab) in enumerate(zip(images, labels)):
        z = scale or max(1, round(192 / im.shape[2]))
        canvases.append(
            f'<figure style="margin:0 12px 0 0;display:inline-block;text-align:center">'
            f'<canvas data-out="img{i}" width="{im.shape[2]}" height="{im.shape[1]}" '
            f'style="width:{im.shape[2] * z}px;height:{im.shape[1] * z}px;image-rendering:pixelated;'
            f'border:1px solid #ddd"></canvas><figcaption style="font-size:12px">{html.escape(str(lab))}'
            f'</figcaption></figure>')
    body = f"""
<div id="{uid}" class="ardiff-explorer" style="font:13px sans-serif;border:1px solid #ddd;padding:10px;
border-radius:6px;max-width:900px">
<div style="margin-bottom:6px"><label style="margin-right:14px">schedule <select data-p="kind">{opts}</select></label>
{slider("T", 10, 2000, 10, init["T"], "T")}
{slider("t", 0, init["T"] - 1, 1, init["t"], "t")}</div>
<div style="margin-bottom:6px">
{slider("log_beta_start", -5, -2, 0.05, np.log10(init["beta_start"]), "beta_start", "linear")}
{slider("log_beta_end", -3, -0.5, 0.05, np.log10(init["beta_end"]), "beta_end", "linear")}
{slider("s", 0, 0.2, 0.002, init["s"], "s", "cosine")}
{slider("start", -6, 0, 0.1, init["start"], "start", "sigmoid")}
{slider("end", 0.5, 6, 0.1, init["end"], "end", "sigmoid")}
{slider("tau", 0.1, 2, 0.05, init["tau"], "tau", "sigmoid")}</div>
<div data-out="readout" style="margin:4px 0;font:12px monospace;white-space:normal"></div>
<div><canvas data-out="abar" width="420" height="200" style="width:49%;max-width:420px"></canvas>
<canvas data-out="logsnr" width="420" height="200" style="width:49%;max-width:420px"></canvas></div>
<div style="margin-top:6px">{"".join(canvases)}</div>
</div>
<script>
(function() {{
{js}
ardiffExplorer(document.getElementById("{uid}"), {json.dumps(payload)});
}})();
</script>"""
    return StaticExplorer(body, payload)
