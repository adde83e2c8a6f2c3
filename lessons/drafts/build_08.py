"""Build lessons/drafts/08_absorbing_diffusion.ipynb (issue 29, lesson 08) from the cells below, with stable cell ids.

    python lessons/drafts/build_08.py          # writes the notebook next to this file, without outputs

The notebook needs the shipped `mnist-absorbing` to run; until it is trained the draft lives here, where neither
the tests nor the book pick it up. Move it to lessons/ (and add it to _toc.yml) once it is rendered.
The builder also checks what it can without running a cell: every code cell has an id, parses and is under 42
lines; every glue key the prose uses is glued by some cell, and no key is glued twice; every {cite} key is in
book/references.bib; and the exercises have the form tests/test_lessons.py asks for.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "08_absorbing_diffusion.ipynb"
sys.path.insert(0, str(ROOT / "src"))

from ardiff import __version__  # noqa: E402
from ardiff.profiles import REPOSITORY, SETUP_CELL  # noqa: E402

CELLS: list[tuple[str, str, str, list]] = []   # (id, kind, source, tags)


def md(cell_id: str, text: str):
    CELLS.append((cell_id, "markdown", text.strip("\n"), []))


def code(cell_id: str, text: str, tags=()):
    CELLS.append((cell_id, "code", text.strip("\n"), list(tags)))


# ---------------------------------------------------------------------------------------------------- the top
md("intro", r"""
[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/ardiff-book/ardiff/blob/main/colab/08_absorbing_diffusion.ipynb)

# 08 · Autoregression is diffusion, with an absorbing corruption

Lesson 05 found diffusion to be *approximately* autoregression, over frequencies. The bridge also runs the other
way, and in that direction it is exact: an autoregressive model is a diffusion model whose corruption replaces one
pixel at a time by a mask. Hoogeboom et al. (ARDM {cite}`hoogeboom2022ardm`) showed that averaging over the
generation order turns autoregression into the absorbing-state diffusion of D3PM {cite}`austin2021d3pm`, trained on
an unbiased estimate of its bound, and able to generate many pixels per step. MD4 {cite}`shi2024md4` and MDLM
{cite}`sahoo2024mdlm` wrote the same model in continuous time; MD4 reports 2.75 bits/dim on CIFAR-10, which its
authors find better than autoregressive models of similar size. We found no published bits/dim for these models on
8-bit MNIST.

In this lesson you will

1. derive the identity: a fixed order is a corruption that hides one pixel per step, the average over orders is
   absorbing diffusion, and its bound is the order-agnostic training loss; then check it exactly, on images small
   enough that every order can be enumerated;
2. see the corruption beside lesson 01's Gaussian one;
3. put the book's families in **one likelihood table**, in bits/dim on the same test digits, each number labelled
   exact or bound: lesson 03's PixelCNN, the order-agnostic model's bound, the same model's exact likelihood in
   three fixed orders, and lesson 02's DDPM's variational bound;
4. **measure parallel decoding**: FID-MNIST and seconds per image against the number of steps, beside lesson 02's
   DDPM (DPM-Solver++) and lesson 03's PixelCNN: how many network evaluations does each family need for a given
   quality?
5. compare generation orders (raster, random, coarse to fine) on exact likelihood, the clean test, and on sample
   quality with several pixels revealed per step, where order and parallel decoding mix; and end with a claims
   table whose verdicts are computed from the numbers, by rules fixed before measuring.

Everything measured comes from the shipped `mnist-absorbing`: lesson 02's U-Net, reading the visible pixels and
their mask, with a 256-way softmax per pixel as in lesson 03's PixelCNN, trained on the order-agnostic bound on the
project's 2-core CPU. Symbols and terms are those of the [notation page](../book/notation.md).

**Time:** the outputs on this page took {glue:text}`render_minutes:.0f` minutes to compute ({glue:md}`render_where`),
{glue:text}`sample_minutes:.0f` of them sampling the digits of section 5 (both measured as the page ran). The quick
profile, which the book's tests run, measures fewer digits and fewer step counts. Training `mnist-absorbing` took
{glue:text}`train_minutes:.0f` minutes ({glue:md}`train_where`).
""")

code("setup", SETUP_CELL.format(repository=REPOSITORY, version=__version__, dataset="mnist"))

code("imports", r"""
%matplotlib inline
import math
import time
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import ardiff
from ardiff import absorbing, ddpm, gates, zoo
from ardiff.absorbing import ORDERS
from ardiff.claims import Ledger, claims_table, mean_difference, verdict_words
from ardiff.data import load_mnist
from ardiff.forward import q_sample
from ardiff.metrics import FidMnist, bits_per_dim, timer
from ardiff.pixelcnn import from_pixels, to_pixels
from ardiff.plot import color, noising_strip, plain_log_axis, show_images
from ardiff.profiles import glue
from ardiff.samplers import sample
from ardiff.timing import compare_speed

t_start = time.perf_counter()        # the time this page takes, glued at the end
D = 28 * 28                          # pixels per digit
""")

# ---------------------------------------------------------------------------------------------------- 1. identity
md("identity-derivation", r"""
## 1. The identity

**A fixed order is a corruption.** Fix an order $\sigma$ of the $D = 784$ pixels: $\sigma(t)$ is the pixel
generated at step $t$ (raster order for lesson 03's PixelCNN). The chain rule gives, with no approximation,

$$p_\sigma(x) = \prod_{t=1}^{D} p\big(x_{\sigma(t)} \mid x_{\sigma(<t)}\big).$$

Read it backwards, as a diffusion. Let $z_s$ be the digit with the *last* $s$ pixels of the order replaced by a mask
symbol: $z_0 = x$, each forward step masks one more pixel, and $z_D$ is all mask. Given $x$ and $\sigma$ this
corruption is deterministic, and the reverse step, which unmasks pixel $\sigma(D-s+1)$ given the pixels still
visible, is exactly the autoregressive conditional. The diffusion bound

$$-\log p(x) \le \mathbb E_{q}\Big[-\log p(z_D) - \sum_{s=1}^{D} \log p(z_{s-1} \mid z_s) + \log q(z_{1:D} \mid x)\Big]$$

then has no gap: $q$ puts probability 1 on a single path and $p(z_D) = 1$, so the bound *is* $-\log p_\sigma(x)$.
A fixed-order autoregressive model is a diffusion model with a deterministic absorbing corruption that hides one
pixel per step, in reverse order.

**Averaging over orders is absorbing diffusion.** Now draw $\sigma$ uniformly. Each forward step masks one pixel
chosen uniformly among the visible ones, so after $s$ steps a uniformly random set of $s$ pixels is masked: D3PM's
absorbing-state ("mask") corruption {cite}`austin2021d3pm`, with a schedule that masks one pixel per step. One
network $p_\theta(x_k \mid x_{\text{visible}})$, which sees which pixels are visible but not the order that made them
so, serves every order. The model is the mixture $p(x) = \mathbb E_\sigma[p_\sigma(x)]$, and by Jensen's inequality

$$-\log p(x) \;\le\; \mathbb E_\sigma\big[-\log p_\sigma(x)\big] \;=\; \sum_{t=1}^{D} \mathbb E_\sigma\big[-\log p(x_{\sigma(t)} \mid x_{\sigma(<t)})\big].$$

**Its bound is the order-agnostic loss.** Given the visible set $\sigma(<t)$, a uniformly random set of $t-1$
pixels, the next pixel $\sigma(t)$ is uniform over the $D-t+1$ hidden ones. So the $t$-th term is the *mean* NLL of
the hidden pixels, and a sum of $D$ terms is $D$ times an average over a uniform step (ARDM's eq. 4
{cite}`hoogeboom2022ardm`):

$$\mathbb E_\sigma\big[-\log p_\sigma(x)\big] = D\;\mathbb E_{t \sim \mathcal U\{1..D\}}\,\mathbb E_\sigma\Big[\frac{1}{D-t+1}\sum_{k \in \sigma(\ge t)} -\log p\big(x_k \mid x_{\sigma(<t)}\big)\Big].$$

One draw of $(\sigma, t)$ costs one network pass and scores *every* hidden pixel: an unbiased estimate of the bound,
which is the training loss. The weight $1/(D-t+1)$ is what makes it unbiased; without it the steps with many hidden
pixels would count too much.

**The continuous-time form (a remark).** MD4 {cite}`shi2024md4` and MDLM {cite}`sahoo2024mdlm` mask each pixel
independently with probability $s \in (0, 1]$ and, for the linear schedule, weight by $1/s$:

$$-\log p(x) \le \int_0^1 \frac{1}{s}\;\mathbb E_{z_s}\Big[\sum_{k\ \text{masked}} -\log p(x_k \mid z_s)\Big]\,ds .$$

Over $s \sim \mathcal U(0, 1)$ the number $m$ of masked pixels is uniform on $\{0, \dots, D\}$, and given $m$,
$\mathbb E[1/s] = (D+1)/m$; so the integral is $\sum_m \frac1m \mathbb E[\text{NLL of the } m \text{ masked pixels}]$, term
for term ARDM's bound, with time running continuously (exercise 8.2 checks this exactly).

The library computes one term in `_terms` and draws $\sigma$ and $t$ in `bound_terms`; the training loss
(`absorbing.loss`) is their mean over a batch, divided by $D$:
""")

code("show-bound", r"""
ardiff.show(absorbing.bound_terms, absorbing._terms)
""")

md("identity-check-text", r"""
**Checked exactly.** On a 2 × 2 image ($D = 4$) every one of the $4! = 24$ orders and every step can be enumerated.
`absorbing.enumerate_identity` computes both sides: the order-averaged exact NLL (`exact_nll` in each order) and the
expectation of the loss's term over every $(\sigma, t)$. The network is `absorbing.ToyNet`, a tiny random
convolutional net with the absorbing contract, whose orders disagree strongly (otherwise the check would be
trivial); the images are three 2 × 2 crops from the centre of test digits.
""")

code("identity-check", r"""
toy = absorbing.ToyNet(seed=0)                                          # tiny, random: D = 4 pixels
x_toy = to_pixels(load_mnist("test", limit=3)[0][:, :, 13:15, 13:15])   # three 2 x 2 crops of test digits, 0..255
ident = absorbing.enumerate_identity(toy, x_toy)                        # all 24 orders and 4 steps
gap = (ident["loss"] - ident["exact"]).abs().max().item()
lo, hi = ident["per_order"].min(0).values, ident["per_order"].max(0).values
print(f"{ident['orders']} orders of D = 4 pixels; nats per crop")
for i in range(len(x_toy)):
    print(f"  crop {i}: order-averaged exact NLL {ident['exact'][i]:9.4f}; expected loss {ident['loss'][i]:9.4f}; "
          f"single orders from {lo[i]:7.2f} to {hi[i]:7.2f}")
print(f"largest |expected loss - order-averaged NLL|: {gap:.1e} nats (float32 rounding)")
assert gap < 1e-5 * ident["exact"].abs().max().item(), "the identity does not hold on the toy"
assert (hi - lo).min() > 0.1, "the toy's orders agree: the check would be trivial"
glue("toy_gap", gap), glue("toy_spread", (hi - lo).min().item()), glue("toy_orders", ident["orders"]);
""")

md("identity-check-after", r"""
The two sides agree to {glue:text}`toy_gap:.1e` nats, the rounding of 32-bit floats, although single orders differ
by at least {glue:text}`toy_spread:.0f` nats on every crop. Section 4 checks the same identity on the trained
network, where the orders cannot be enumerated.

## 2. The corruption, beside lesson 01's

Below, one test digit along three forward processes. The columns give how far each process has gone: $t/T$ for
lesson 01's Gaussian noising (the linear schedule of `mnist-ddpm`, $T = 1000$), and the share of pixels masked for the
absorbing corruption, in a random order and in raster order. Masked pixels are grey, the value the network's input
gives them.
""")

code("strip", r"""
x0 = load_mnist("test", limit=1)[0]                                     # (1, 1, 28, 28) in [-1, 1]
schedule = zoo.recipe("mnist-ddpm").schedule                            # lesson 01/02's linear schedule
g = torch.Generator().manual_seed(0)
sigma = {o: absorbing.orders(o, 1, 28, 28, generator=g) for o in ("random", "raster")}
strip = {}
for share in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
    t = max(round(share * schedule.T) - 1, 0)                           # code index of the Gaussian step
    gauss = q_sample(x0, t, schedule, generator=torch.Generator().manual_seed(1)) if share > 0 else x0
    masked = [torch.where(absorbing.reveal_mask(sigma[o], round((1 - share) * D), 28, 28), x0, 0.0) for o in sigma]
    strip[f"{share:.0%}"] = torch.cat([gauss, *masked])
noising_strip(strip, row_labels=["Gaussian", "absorbing,\nrandom", "absorbing,\nraster"],
              title="one digit along three forward processes (masked pixels grey)");
""")

md("strip-after", r"""
Gaussian noise degrades every pixel a little at every step; the absorbing corruption removes pixels whole and
leaves the visible ones exact, so the network only ever sees clean pixels and a mask. In raster order the
corruption eats the digit from the bottom up, and generation, its reverse, runs from the top down, as the PixelCNN
does; in a random order the hidden pixels are scattered, and the digit can stay legible with most of its pixels
gone.

## 3. The model

`model_input` builds the network's input from the pixels and the visibility mask: the visible pixels scaled to
[−1, 1], zeros where hidden, and the mask as a second channel, so no hidden pixel's value can reach the network
(the library's tests change every hidden pixel and check that the output does not move). `AbsorbingNet` is lesson
02's U-Net with two input channels and 256 output channels per pixel, read as a 256-way softmax as in lesson 03's
PixelCNN; its time input is the number of visible pixels, read from the mask.
""")

code("show-model", r"""
ardiff.show(absorbing.model_input, absorbing.AbsorbingNet.forward)
""")

md("model-train-text", r"""
The recipe `mnist-absorbing` fixes the architecture, the data and every training setting: batches of 64, AdamW at
$10^{-3}$ with warm-up and cosine decay, EMA weights, and one draw of $(\sigma, t)$ per digit. To redo the book's model,
run `python -m ardiff train mnist-absorbing` in a terminal (it resumes when interrupted) or set `ARDIFF_RETRAIN=1`
before `zoo.load`. Its training loss, in bits/dim, is the bound on the training batches:
""")

code("load-model", r"""
model = zoo.load("mnist-absorbing", device=device)                      # SHA-256 and recipe hash checked
card, recipe = zoo.card("mnist-absorbing"), zoo.recipe("mnist-absorbing")
metric = card["metric"]
print(f"shipped: {card['parameters']:,} parameters; {card['steps']} steps of {recipe.train.batch_size} digits in "
      f"{card['seconds'] / 60:.0f} min on {card['device']}; its card: bound {metric['value']:.3f} ± "
      f"{metric['sem']:.3f} bits/dim on {metric['n']:,} test digits")
steps_logged, loss = map(np.array, zip(*card["history"]))
fig, ax = plt.subplots(figsize=(6.5, 3.2))
ax.plot(steps_logged * recipe.train.batch_size / 60_000, loss / math.log(2), color=color("absorbing"),
        label="training batches (one draw of σ and t per digit)")
ax.axhline(metric["value"], color=color("absorbing"), ls="--", lw=1, label="the bound on the test digits (card)")
plain_log_axis(ax, "x"), plain_log_axis(ax, "y", ticks=(0.8, 0.9, 1, 1.2, 1.5, 2, 3, 5, 8))
ax.set_xlabel("epochs (training images seen / 60,000)"), ax.set_ylabel("bits / dim (the bound)")
ax.grid(alpha=0.3), ax.legend(fontsize=8)
assert np.isfinite(loss).all() and loss[-1] < loss[0], "the shipped model's loss did not fall"
glue("train_minutes", card["seconds"] / 60), glue("train_where", f"on {card['device']}"), glue("card_bound", metric["value"]);
""")

# ---------------------------------------------------------------------------------------------------- 4. likelihood
md("lik-text", r"""
## 4. One likelihood table

Each row below is in bits/dim on test digits, and each says whether it is **exact** or a **bound** (an upper bound
on $-\log_2 p(x)/D$, so the model's true value lies below it):

- **the PixelCNN** (lesson 03): exact, raster order, one network pass per digit;
- **the order-agnostic bound**: `absorbing.bound_bits`, {glue:text}`abs_draws` draws of $(\sigma, t)$ per digit. It
  is the average over orders of the exact NLL in each, so it bounds the NLL of the mixture over orders;
- **the same network, exact, in one fixed order**: `absorbing.exact_nll` runs the network $D$ times, revealing one
  pixel per pass, and sums the $D$ conditionals. That turns the absorbing model into an ordinary autoregressive
  model, in any order: raster; coarse to fine (every 4th pixel of every 4th row first, then the rest of every 2nd
  row and column, then the others: a subsampled grid first, as in the multiscale PixelCNN
  {cite}`reed2017multiscale` and Subscale Pixel Networks {cite}`menick2019spn`; ARDM's own "upscaling" refines bit
  depth, not space); and one random order per digit, whose mean estimates the average over orders that the bound
  estimates (the identity of section 1, on the trained network). It costs 784 passes per batch of digits, so it runs
  on the first {glue:text}`exact_n` digits only, one order per cell;
- **the DDPM's variational bound** (lesson 02's `mnist-ddpm`; lesson 06 derives it, `ddpm.nll_bound`), on the first
  {glue:text}`ddpm_n` digits with {glue:text}`ddpm_terms` stratified KL terms, with $\hat x_0$ unclipped and clipped
  to [−1, 1] (the clipped one bounds the likelihood of the reverse process a clipped sampler runs).

Every row's digits are the first $n$ of the test set, so each row is also compared with the PixelCNN on its own
digits, digit by digit.

**What these comparisons can and cannot show** (stated before measuring):

- *A bound against an exact value is conclusive in one direction only.* The bound lies above the absorbing model's
  true NLL, by a gap we cannot compute (Jensen's inequality, section 1). If the bound is *below* the PixelCNN's exact
  value, the absorbing model gives these digits more probability; if it is above, the question stays open.
- *Two models, not two ways of training.* The PixelCNN is another network (lesson 03's masked convolutions, not a
  U-Net), trained for another length of time. Comparing it with the bound ranks these two trained models; it cannot
  say whether training on every order costs likelihood.
- *A network read in one order is not a network trained in that order.* The raster row runs the order-agnostic
  network in raster order. A U-Net of the same size, trained as long but only in raster order, would spend all its
  capacity on that one order and might do better. That model is the test of the common belief that "order-agnostic
  models pay a likelihood price"; this lesson does not train it, so it leaves that belief **untested**. What the
  fixed-order rows do test is narrower: is *this* network better in some orders than on average?

The margins that the verdicts use are fixed in the next cell, before anything is measured.
""")

code("margins", r"""
# Fixed before anything is measured: the rules that the verdicts of this page are read against
BPD_GATE = 0.25      # a working density model: the absorbing bound within this many bits/dim of the PixelCNN's exact value
ID_MARGIN = 0.05     # bits/dim: on the trained network, the identity holds if |random-order exact NLL - bound| < this (TOST)
FID_SHARE = 0.10     # "as good as" a reference: an FID worse than the reference's by less than this share of it
ALPHA = 0.05         # every test's level; families of tests are corrected (Holm, or alpha / the number of candidates)
glue("bpd_gate", BPD_GATE), glue("id_margin", ID_MARGIN), glue("fid_share", 100 * FID_SHARE), glue("alpha", ALPHA);
""")

code("show-exact", r"""
ardiff.show(absorbing.exact_nll)
""")

code("lik-bound", r"""
assert profile.abs_exact_n <= profile.abs_ddpm_n <= profile.abs_bpd_n, "the digit subsets must nest"
x_bpd = to_pixels(load_mnist("test", limit=profile.abs_bpd_n)[0])      # (n, 1, 28, 28) uint8: the first n test digits
with timer(device) as tm:
    bound = absorbing.bound_bits(model, x_bpd, draws=profile.abs_draws, progress=True,
                                 generator=torch.Generator(device).manual_seed(0)).double().mean(1)   # (n,) per digit
pcnn = zoo.load("mnist-pixelcnn", device=device)
with torch.no_grad():
    pcnn_bpd = torch.cat([pcnn.bits_per_dim(x_bpd[i:i + 500].to(device)).cpu()
                          for i in range(0, len(x_bpd), 500)]).double()                            # (n,) exact
print(f"the bound on {len(x_bpd):,} test digits, {profile.abs_draws} draws each, in {tm['seconds']:.0f} s; "
      f"the PixelCNN's exact NLL on the same digits")
glue("abs_draws", profile.abs_draws), glue("bpd_n", len(x_bpd));
""")

code("lik-exact", r"""
k = profile.abs_exact_n
x_ex = x_bpd[:k]
sig = {o: absorbing.orders(o, k, 28, 28, generator=torch.Generator().manual_seed(1)) for o in ORDERS}  # random: one per digit
exact, EXACT_BATCH = {}, 64                      # {order: (k,) bits/dim}; digits per network pass


def exact_in(order):
    # the exact NLL of the k digits in one order: 784 passes per batch of at most EXACT_BATCH digits
    with timer(device) as tm:
        nats = absorbing.exact_nll(model, x_ex, sig[order], batch_size=EXACT_BATCH, progress=True)
    exact[order] = bits_per_dim(nats.double(), D)                                      # (k,)
    print(f"exact NLL of {k} digits in {order} order: {D} passes per batch of at most {EXACT_BATCH} digits, "
          f"{tm['seconds']:.0f} s")


exact_in("raster")                               # one order per cell: each cell stays well inside the renderer's limit
""")

code("lik-exact-c2f", r"""
exact_in("coarse-to-fine")
""")

code("lik-exact-random", r"""
exact_in("random")                               # one random order per digit: its mean estimates the average over orders
near = absorbing.bound_bits(model, x_ex, draws=profile.abs_identity_draws,
                            generator=torch.Generator(device).manual_seed(2)).double().mean(1)   # the bound, same digits
print(f"the bound on the same {k} digits, {profile.abs_identity_draws} draws each: {near.mean():.3f} bits/dim")
assert set(exact) == set(ORDERS) and all(v.shape == (k,) for v in exact.values())
glue("exact_n", k), glue("identity_draws", profile.abs_identity_draws);
""")

code("lik-ddpm", r"""
ddpm_model = zoo.load("mnist-ddpm", device=device)
x_dd = x_bpd[:profile.abs_ddpm_n]
groups = torch.arange(len(x_dd)).chunk(8)          # each group draws its own steps and noise: the error is over groups
ddpm_bound, ddpm_parts = {}, {}
for clip in (False, True):
    gen = torch.Generator(device).manual_seed(3)   # the same steps and noise for both: clipping is the only change
    parts = [ddpm.nll_bound(ddpm_model, x_dd[i], schedule, timesteps=profile.abs_ddpm_terms, generator=gen,
                            clip_x0=clip) for i in groups]
    ddpm_bound[clip] = torch.stack([p["total"].mean() for p in parts])                       # (groups,) bits/dim
    ddpm_parts[clip] = {term: torch.cat([p[term] for p in parts]).mean().item() for term in ("prior", "diffusion", "decoder")}
for clip in (False, True):
    print(f"mnist-ddpm bound, x0_hat {'clipped' if clip else 'unclipped':>9}: "
          + ", ".join(f"{term} {v:.3f}" for term, v in ddpm_parts[clip].items()) + " bits/dim")
glue("ddpm_n", len(x_dd)), glue("ddpm_terms", profile.abs_ddpm_terms), glue("ddpm_groups", len(groups));
""")

code("lik-table", r"""
def stats(v):                        # mean and standard error of per-digit (or per-group) values
    d = mean_difference(v)
    return d.value, d.sd

paired = mean_difference             # a - b on the same digits (or groups), with its standard error

by_group = lambda v: torch.stack([v[i].mean() for i in groups])      # means over the DDPM's groups of digits
label = {"raster": "raster", "coarse-to-fine": "coarse to fine", "random": "one random order per digit"}
rows = [("PixelCNN (lesson 03)", "exact", "raster", len(x_bpd), pcnn_bpd, None),
        ("mnist-absorbing", "bound", "average over orders", len(x_bpd), bound, pcnn_bpd),
        *[("mnist-absorbing", "exact", label[o], k, exact[o], pcnn_bpd[:k]) for o in ORDERS],
        *[("mnist-ddpm (lesson 02)", "bound", f"x̂0 {'clipped' if c else 'unclipped'}", len(x_dd), ddpm_bound[c],
           by_group(pcnn_bpd[:len(x_dd)])) for c in (False, True)]]
lik, table = {}, []
for name, what, setting, n_digits, v, ref in rows:
    m, se = stats(v)
    lik[(name, what, setting)] = m
    d = "—" if ref is None else format(paired(v, ref).value, "+.3f") + f" ± {paired(v, ref).sd:.3f}"
    table.append((name, what, setting, f"{n_digits:,}", f"{m:.3f} ± {se:.3f}", d))
display(Markdown(claims_table(table, "± = standard error over the digits (the bound: over digits and their draws of "
                              f"order and step; the DDPM: over {len(groups)} groups of digits, each with its own "
                              "stratified steps and noise). Lower is better; a bound lies above the model's true value.",
                              header=("model", "exact or bound", "order / setting", "test digits", "bits/dim",
                                      "minus the PixelCNN, same digits"))))
assert all(0 < m < 9 for m in lik.values()), "a likelihood outside (0, 9) bits/dim: a broken measurement"
assert len(table) == 7
""")

code("lik-words", r"""
L_pcnn = paired(pcnn_bpd, bound)                      # PixelCNN exact - order-agnostic bound, same digits
L_raster, L_c2f = paired(exact["raster"], near), paired(exact["coarse-to-fine"], near)   # fixed order - any order
id_diff = paired(exact["random"], near)               # the identity on the trained network: 0 in expectation
bound_m, bound_se = stats(bound)
pcnn_m, pcnn_se = stats(pcnn_bpd)
glue("bound_bpd", bound_m), glue("bound_se", bound_se), glue("pcnn_bpd", pcnn_m), glue("pcnn_se", pcnn_se)
for o in ORDERS:
    glue(f"exact_{o.replace('-', '_')}", exact[o].mean().item())
glue("near_bpd", near.mean().item()), glue("id_diff", f"{id_diff.value:+.3f} ± {id_diff.sd:.3f}")
glue("ddpm_unclipped", ddpm_bound[False].mean().item()), glue("ddpm_clipped", ddpm_bound[True].mean().item())
glue("clip_gain", (ddpm_bound[False] - ddpm_bound[True]).mean().item())
glue("L_pcnn", f"{L_pcnn.value:+.3f} ± {L_pcnn.sd:.3f}"), glue("L_raster", f"{L_raster.value:+.3f} ± {L_raster.sd:.3f}")
glue("L_c2f", f"{L_c2f.value:+.3f} ± {L_c2f.sd:.3f}");
""")

md("lik-after", r"""
**Reading the table.** The order-agnostic bound is {glue:text}`bound_bpd:.3f` ± {glue:text}`bound_se:.3f` bits/dim on
{glue:text}`bpd_n` test digits, and the PixelCNN's exact value on the same digits is {glue:text}`pcnn_bpd:.3f` ±
{glue:text}`pcnn_se:.3f` (PixelCNN minus bound: {glue:md}`L_pcnn`). {glue:md}`pcnn_words`

The same network, run as an ordinary autoregressive model, scores exactly {glue:text}`exact_raster:.3f` in raster
order and {glue:text}`exact_coarse_to_fine:.3f` coarse to fine, on {glue:text}`exact_n` digits whose bound
({glue:text}`identity_draws` draws each) is {glue:text}`near_bpd:.3f` (raster minus the bound: {glue:md}`L_raster`;
coarse to fine minus the bound: {glue:md}`L_c2f`). {glue:md}`raster_words` {glue:md}`c2f_words` These rows read the
order-agnostic network in fixed orders; a network trained in one order is another model, not measured here. One random
order per digit scores {glue:text}`exact_random:.3f`: the identity says that its mean and the bound estimate the same
number, and on the trained network {glue:md}`identity_net_words` (random order minus bound: {glue:md}`id_diff`).

The words in these two paragraphs are the verdicts of section 6, where every claim of the page is decided together,
corrected for multiplicity; a difference counts only when it survives that correction.

The DDPM's variational bound is {glue:text}`ddpm_unclipped:.3f` bits/dim with $\hat x_0$ unclipped and
{glue:text}`ddpm_clipped:.3f` clipped, on {glue:text}`ddpm_n` digits: clipping removes {glue:text}`clip_gain:.3f`
bits/dim of the bound's slack. Both are bounds, so the table does not say how far the DDPM's true likelihood lies
below them; it says that, of the bounds the book can compute, the absorbing model's is the one to compare with an
exact autoregressive likelihood, because it *is* an average of exact autoregressive likelihoods.
""")

# ---------------------------------------------------------------------------------------------------- 5. decoding
md("decode-text", r"""
## 5. Parallel decoding

`absorbing.sample` reverses the corruption: it starts from an all-mask image and reveals the pixels in the given
order, $D/S$ of them per step for $S$ steps, each drawn from its own predicted categorical given the pixels visible
before the step. With $S = D$ that is exact autoregressive sampling in that order. With fewer steps the pixels
revealed together are drawn *independently* given the visible ones, which is an approximation: two neighbouring
pixels revealed in the same step cannot agree on a stroke. Fewer steps mean fewer network passes and more of
that error. (With a context, the given pixels are kept and a step that reveals nothing costs no pass: exercise 8.1.)
""")

code("show-sample", r"""
ardiff.show(absorbing.sample)
""")

md("decode-plan", r"""
For each number of steps $S$: FID-MNIST of {glue:text}`n` samples (random order) against as many test digits,
beside the real floor and the FID of noise, with the bootstrap spread of each difference. Seconds per image are
measured over batches of at most {glue:text}`chunk` digits, the throughput regime. The samples are drawn from a queue
of such batches: each of the cells below works through it for at most {glue:text}`cell_minutes` minutes (the book's
renderer stops a cell at 30), so the full profile splits over several cells; in the quick profile the first cell does
all of it.

Raster and coarse-to-fine orders are sampled at $S$ = {glue:text}`S_order` only. At that many steps each step reveals
several pixels at once, so their FID measures the order *and* the error of parallel decoding together, and that error
itself depends on the order: in raster order the pixels of one step are neighbours in a row, which cannot agree on a
stroke; in a random order they are scattered. Sampling each order exactly (784 steps) would separate the two, at
{glue:text}`order_cost_x` times the cost, which this page's budget does not allow. The clean test of order is the
exact likelihood of section 4.
""")

code("decode-setup", r"""
clf = zoo.load("mnist-classifier", device=device)
fid = FidMnist(clf, n=profile.abs_n)
n, CHUNK, S_order, CELL_MINUTES = fid.n, 100, profile.abs_order_steps, 20.0   # a batch; the orders' S; a cell's limit
assert S_order in profile.abs_steps, "the orders are compared at a step count of the random-order curve"
ledger = Ledger(fid, noise=torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)).clamp(-1, 1))
ledger.add("real training digits", load_mnist("train", limit=n)[0])    # its FID is the real floor
queue = [(S, "random", i) for S in profile.abs_steps for i in range(0, n, CHUNK)]
queue += [(S_order, o, i) for o in ("raster", "coarse-to-fine") for i in range(0, n, CHUNK)]
drawn, spent = {}, {}                                                  # {(S, order): [chunks]}, {(S, order): seconds}
absorbing.sample(model, 2, 2, generator=torch.Generator(device).manual_seed(0))       # warm-up, untimed


def work(minutes=CELL_MINUTES):
    # sample queued chunks while the next is predicted to end within `minutes` of the call (cost per pass so far)
    start = time.perf_counter()
    while queue:
        S, order, i = queue[0]
        b = min(CHUNK, n - i)
        passes = sum(S_ * sum(map(len, c)) for (S_, _), c in drawn.items())          # image-passes so far
        per_pass = sum(spent.values()) / passes if passes else None
        if per_pass and time.perf_counter() - start + per_pass * S * b > 60 * minutes:
            break
        with timer(device) as tm:
            x = absorbing.sample(model, b, S, order, generator=torch.Generator(device).manual_seed(7 + i))
        drawn.setdefault((S, order), []).append(from_pixels(x).cpu())
        spent[(S, order)] = spent.get((S, order), 0.0) + tm["seconds"]
        queue.pop(0)
    print(f"{len(drawn)} settings sampled so far; {len(queue)} chunks of at most {CHUNK} digits left")


print(f"FID-MNIST at n = {n}: real floor {fid.floor:.2f}, noise {ledger.noise_fid:.0f}; {len(queue)} chunks to sample")
glue("n", n), glue("chunk", CHUNK), glue("S_order", S_order), glue("floor", fid.floor), glue("noise_fid", ledger.noise_fid)
glue("cell_minutes", round(CELL_MINUTES)), glue("order_cost_x", round(D / S_order));
""")

code("decode-work-1", r"""
work()
""")
for j in range(2, 10):   # continuations of the queue: empty in the quick profile, hidden in the book
    code(f"decode-work-{j}", "work()  # the queue, continued", tags=["remove-cell"])

code("decode-references", r"""
assert not queue, "chunks left: add a work() cell, or render with a longer cell time-out"
for (S, order), chunks in drawn.items():
    ledger.add(f"absorbing, {order}, {S} steps", torch.cat(chunks), spent[(S, order)], S, family="absorbing",
               order=order, steps=S)
for S in profile.abs_dpm_steps:                  # lesson 02's DDPM, its few-step ODE solver, x0_hat clipped
    with timer(device) as tm:
        x = sample(ddpm_model, schedule, (n, 1, 28, 28), steps=S, method="dpm-solver++", clip_x0=True,
                   generator=torch.Generator(device).manual_seed(7))
    ledger.add(f"DDPM, DPM-Solver++ {S}", x, tm["seconds"], S, family="ddpm", steps=S)
print(f"{len(ledger.rows)} rows so far")
""")

code("decode-pixelcnn", r"""
with timer(device) as tm:                        # lesson 03's PixelCNN: 784 row-cached passes, each cheaper than a U-Net's
    x = from_pixels(pcnn.sample(n, (1, 28, 28), generator=torch.Generator(device).manual_seed(7)))
ledger.add("PixelCNN", x, tm["seconds"], D, family="pixelcnn", steps=D)
ledger.bootstrap(draws=profile.fid_draws)
print(ledger.table())
""")

code("decode-figure", r"""
rows_ = ledger.rows
excess = {key: ledger.difference(key, "real training digits") for key in rows_ if key != "real training digits"}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
curves = (("absorbing, random order", lambda r: r.get("family") == "absorbing" and r["order"] == "random", "o-"),
          ("DDPM, DPM-Solver++ (x̂0 clipped)", lambda r: r.get("family") == "ddpm", "v-"),
          ("PixelCNN (784 row-cached passes)", lambda r: r.get("family") == "pixelcnn", "*"))
for label, pick, fmt in curves:
    keys = sorted((key for key, r in rows_.items() if pick(r)), key=lambda key: rows_[key]["evals"])
    evals = [rows_[key]["evals"] for key in keys]
    axes[0].errorbar(evals, [rows_[key]["fid"] for key in keys], yerr=[2 * excess[key].sd for key in keys],
                     fmt=fmt, ms=8 if fmt == "*" else 5, capsize=3, color=color(label), label=label)
    axes[1].plot(evals, [rows_[key]["s_per_image"] for key in keys], fmt, color=color(label), label=label)
for o, marker in (("raster", "s"), ("coarse-to-fine", "D")):
    key = f"absorbing, {o}, {S_order} steps"
    axes[0].errorbar([S_order], [rows_[key]["fid"]], yerr=[2 * excess[key].sd], fmt=marker, mfc="none", ms=8,
                     capsize=3, color=color("absorbing"), label=f"absorbing, {o} order")
axes[0].axhline(fid.floor, color=color("real"), ls="--", lw=1, label="real floor")
axes[0].axhline(ledger.noise_fid, color=color("noise"), ls=":", lw=1, label="noise")
for ax in axes:
    plain_log_axis(ax, "x"), plain_log_axis(ax, "y"), ax.set_xlabel("network evaluations per image"), ax.grid(alpha=0.3)
axes[0].set_ylabel(f"FID-MNIST (n = {n}, ± 2 sd)"), axes[0].legend(fontsize=7)
axes[1].set_ylabel(f"seconds per image ({device.type}, throughput)"), axes[1].legend(fontsize=7)
axes[0].set_title("quality against steps", fontsize=10)
axes[1].set_title(f"time against steps (batches of at most {CHUNK}; DDPM and PixelCNN: one batch of {n})", fontsize=9)
fig.tight_layout()
""", tags=["hide-input"])

code("decode-samples", r"""
shown = [key for key in rows_ if rows_[key].get("family") == "absorbing"]
fig, axes = plt.subplots(len(shown), 1, figsize=(9, 0.75 * len(shown) + 0.3))
for ax, key in zip(np.atleast_1d(axes), shown):
    show_images(ledger.samples[key][:16], nrow=16, ax=ax)
    ax.set_title(f"{key}: FID {rows_[key]['fid']:.1f}", fontsize=8, loc="left")
fig.tight_layout()
""", tags=["hide-input"])

md("speed-text", r"""
**Cost per evaluation.** Both models are the same U-Net; the absorbing one has a 256-way head and draws a categorical
per pixel, the DDPM takes a solver step. At {glue:text}`S_eq` evaluations each, timed in both regimes (batch 1,
latency; a batch of {glue:text}`time_batch`, throughput), the median of 5 repeats with the two sides interleaved
(`ardiff.timing.compare_speed`):
""")

code("speed", r"""
S_eq = min(set(profile.abs_steps) & set(profile.abs_dpm_steps))           # the same number of network evaluations
speed = compare_speed(
    lambda b: absorbing.sample(model, b, S_eq, generator=torch.Generator(device).manual_seed(0)),
    lambda b: sample(ddpm_model, schedule, (b, 1, 28, 28), steps=S_eq, method="dpm-solver++", clip_x0=True,
                     generator=torch.Generator(device).manual_seed(0)),
    names=(f"absorbing, {S_eq} steps", f"DPM-Solver++, {S_eq} steps"), batch_sizes=(profile.abs_time_batch,),
    repeats=5, device=device)
for name, timings in zip(speed.names, (speed.a, speed.b)):
    print(f"{name:<22} {timings['latency']}\n{'':<22} {timings['throughput']}")
print(speed.verdict)
assert speed.a["latency"].batch == 1 and speed.a["throughput"].batch == profile.abs_time_batch   # the regimes named
glue("S_eq", S_eq), glue("time_batch", profile.abs_time_batch), glue("speed_verdict", speed.verdict)
glue("ms_abs", 1000 * speed.a["throughput"].seconds_per_image / S_eq)
glue("ms_dpm", 1000 * speed.b["throughput"].seconds_per_image / S_eq);
""")

md("speed-after", r"""
{glue:md}`speed_verdict`. Per network evaluation, in the throughput regime, that is {glue:text}`ms_abs:.1f` ms per
image for the absorbing model and {glue:text}`ms_dpm:.1f` ms for the DDPM. So the axis of network evaluations in the
figure above is close to an axis of time for the two U-Nets; the PixelCNN's 784 passes are each much cheaper, which
the right panel shows.
""")

# ---------------------------------------------------------------------------------------------------- 6. claims
md("claims-text", r"""
## 6. The claims table

Four claims from the literature, each with the measurement behind it and a verdict computed from the numbers, by
rules fixed before anything was measured (the `margins` cell of section 4):

- **Gates first.** A likelihood verdict needs a working density model (the absorbing model's bound within
  {glue:text}`bpd_gate` bits/dim of the PixelCNN's exact value); a verdict on its samples needs samples that are
  digits (`gates.makes_digits`, at its most steps); a comparison with the DDPM needs the DDPM working as in lesson 02
  (its FID within 1.5 times the real floor). A claim whose gate fails reads "not judged".
- **One family of tests.** The FID comparisons, the likelihood differences and the identity on the trained network
  are decided together with Holm's correction (`Ledger.confirm`), at a family-wise $\alpha$ =
  {glue:text}`alpha`: an FID difference counts when it exceeds its bootstrap spread as corrected, a likelihood
  difference when it exceeds its standard error as corrected. The words of section 4 are these verdicts.
- **"As good as" needs a margin.** A sampler is as good as a reference when its FID is worse by less than
  {glue:text}`fid_share:.0f`% of the reference's, by a one-sided non-inferiority test at $\alpha$ divided by the
  number of candidates (`Ledger.as_good_as`). "No difference shown" is never read as "as good".
- **Scope.** "Order-agnostic models pay a likelihood price" needs a model trained in one fixed order with the same
  network and budget, which this page does not train (section 4): it reads "not tested", beside the two narrower
  comparisons that were measured. "The generation order matters" is decided on the exact likelihood of one network
  in three orders; the FID at {glue:text}`S_order` steps is shown beside it, as order and parallel decoding together.
""")

code("gates", r"""
most, fewest = (f"absorbing, random, {S} steps" for S in (max(profile.abs_steps), min(profile.abs_steps)))
dpm_most = f"DDPM, DPM-Solver++ {max(profile.abs_dpm_steps)}"
g_bpd = gates.bpd_within("mnist-absorbing, its bound (a working density model)", bound_m, pcnn_m, BPD_GATE)
g_digits = gates.makes_digits(f"mnist-absorbing makes digits ({max(profile.abs_steps)} steps)", rows_[most]["fid"],
                              ledger.noise_fid, rows_[most]["diversity"])
g_ddpm = gates.fid_within_floor(f"mnist-ddpm works ({dpm_most})", rows_[dpm_most]["fid"], fid.floor, factor=1.5)
display(Markdown(gates.gates_table([g_bpd, g_digits, g_ddpm])))
steps_claim = f"parallel decoding: {min(profile.abs_steps)} vs {max(profile.abs_steps)} steps"
order_fid = {f"order and parallel decoding, FID at {S_order} steps: {o} vs random":
             (f"absorbing, {o}, {S_order} steps", f"absorbing, random, {S_order} steps", "fid", True)
             for o in ("raster", "coarse-to-fine")}
fid_claims = {steps_claim: (fewest, most, "fid", True), **order_fid}
cross = {f"at {S} evaluations: absorbing vs DPM-Solver++": (f"absorbing, random, {S} steps", f"DDPM, DPM-Solver++ {S}",
                                                             "fid", True)
         for S in sorted(set(profile.abs_steps) & set(profile.abs_dpm_steps))}
pcnn_claim = "likelihood: PixelCNN (exact) vs the absorbing bound"
order_lik = {f"order, exact likelihood of one network: {o} vs the average order": (d, True)
             for o, d in (("raster", L_raster), ("coarse-to-fine", L_c2f))}
raster_claim = next(iter(order_lik))
lik_claims = {pcnn_claim: (L_pcnn, True), **order_lik}
id_claim = "identity on the trained network: one random order's exact NLL vs the bound"
gate_of = {**{c: (g_digits,) for c in fid_claims}, **{c: (g_digits, g_ddpm) for c in cross},
           **{c: (g_bpd,) for c in lik_claims}}                     # the identity needs no gate: it holds for any network
live = lambda claims: {c: v for c, v in claims.items() if all(g.passed for g in gate_of[c])}
confirmed = ledger.confirm(live({**fid_claims, **cross}), alpha=ALPHA, extra={**live(lik_claims), id_claim: (id_diff, True)})
for c, gs in gate_of.items():                    # a failed gate: "not judged: <gate> failed"
    confirmed.setdefault(c, gates.judged(lambda: None, *gs))
assert set(confirmed) == {*gate_of, id_claim}
""")

code("verdict-words", r"""
def said(claim, d, words):
    # the words for a claim's confirmed verdict, after checking that the verdict agrees with the sign of d
    v = confirmed[claim]
    assert v not in ("better", "worse") or (d.value < 0) == (v == "better"), f"{claim}: verdict against the sign"
    return words.get(v, v[:1].upper() + v[1:] + ".")                 # 'not judged: ...' as a sentence


pcnn_words = said(pcnn_claim, L_pcnn, {
    "better": "The PixelCNN's exact value is the lower; but the bound lies above the absorbing model's true value, so "
              "this leaves open which of the two models gives these digits more probability.",
    "worse": "The bound is the lower, and the absorbing model's true value lies below its bound: it gives these test "
             "digits more probability than the PixelCNN does. That ranks these two trained models; it says nothing "
             "about what training on every order costs (section 4's cautions).",
    "tie": "No difference is shown once the page's claims are corrected for multiplicity; that too leaves open which "
           "of the two models gives these digits more probability."})
order_words = {o: said(c, d, {"better": f"For this network, {o} order is better than the average order.",
                              "worse": f"For this network, {o} order is worse than the average order.",
                              "tie": f"For this network, {o} order is no different from the average order once the "
                                     "page's claims are corrected for multiplicity."})
               for o, (c, (d, _)) in zip(("raster", "coarse-to-fine"), order_lik.items())}
id_equal = confirmed[id_claim] == "tie" and id_diff.equivalent(ID_MARGIN, ALPHA)
identity_net_words = said(id_claim, id_diff, {
    "tie": f"the two agree within ±{ID_MARGIN:g} bits/dim (an equivalence test, TOST)" if id_equal else
           f"no difference is shown, but the test is too small to show agreement within ±{ID_MARGIN:g} bits/dim",
    "better": "the two differ after the correction for multiplicity, which a true identity rarely does: a reason to "
              "look for a bug", "worse": "the two differ after the correction for multiplicity, which a true identity "
                                         "rarely does: a reason to look for a bug"})
glue("pcnn_words", pcnn_words), glue("raster_words", order_words["raster"]), glue("c2f_words", order_words["coarse-to-fine"])
glue("identity_net_words", identity_net_words);
""")

code("claims", r"""
def as_good(ref, keys, tests=None):
    # the scored rows of keys whose FID is worse than ref's by less than FID_SHARE of it: one-sided non-inferiority
    # tests at ALPHA / tests (Bonferroni; tests defaults to the candidates here)
    keys = [key for key in ledger.scored(keys) if key != ref]
    return ledger.as_good_as(ref, keys, margin=FID_SHARE * rows_[ref]["fid"], alpha=ALPHA / max(1, tests or len(keys)))


claim_rows = [("Autoregression is a special case of discrete (absorbing) diffusion",
               f"D = 4, all {ident['orders']} orders and steps: expected loss − order-averaged NLL = {gap:.1e} nats; "
               f"trained network, {k} digits: one random order's exact NLL − the bound = {id_diff.value:+.3f} ± "
               f"{id_diff.sd:.3f} bits/dim", f"supported: exact on the toy; on the trained network, {identity_net_words}")]
short = lambda c, better, worse: verdict_words(confirmed[c], "", "", better=better, worse=worse, tie="no difference shown")
said_pcnn = short(pcnn_claim, "PixelCNN lower: inconclusive against a bound",
                  "bound lower: the absorbing model gives more probability")
claim_rows.append(("Order-agnostic models pay a likelihood price",
                   f"bound {bound_m:.3f}; PixelCNN exact {pcnn_m:.3f}, minus the bound {L_pcnn.value:+.3f} ± "
                   f"{L_pcnn.sd:.3f} ({said_pcnn}); same network, raster, exact {exact['raster'].mean():.3f} on {k} "
                   f"digits, minus their bound {L_raster.value:+.3f} ± {L_raster.sd:.3f} "
                   f"({short(raster_claim, 'raster better', 'raster worse')}) bits/dim",
                   "not tested: it needs a model trained in one fixed order with the same network and budget, which this "
                   "page does not train; the two comparisons measured answer narrower questions (section 4)"))
curve = [key for key in sorted(rows_, key=lambda key: -(rows_[key]["evals"] or 0))
         if rows_[key].get("family") == "absorbing" and rows_[key]["order"] == "random"]
cheapest = min((rows_[key]["evals"] for key in (as_good(most, curve) if g_digits.passed else [])), default=None)
v = confirmed[steps_claim]
claim_rows.append(("Parallel decoding trades steps for quality",
                   "FID " + ", ".join(f"{rows_[key]['evals']} steps {rows_[key]['fid']:.1f}" for key in curve)
                   + f" (floor {fid.floor:.1f}); fewest steps within {FID_SHARE:.0%} of the {max(profile.abs_steps)}-step "
                   f"FID (non-inferiority): {cheapest or 'none'}",
                   {"worse": f"supported: {min(profile.abs_steps)} steps are worse than {max(profile.abs_steps)}",
                    "tie": f"not supported: no difference shown between {min(profile.abs_steps)} and "
                           f"{max(profile.abs_steps)} steps at n = {n}",
                    "better": f"contradicted: {min(profile.abs_steps)} steps are better than {max(profile.abs_steps)}"}.get(v, v)))
""")

code("claims-table", r"""
o_lik = {o: confirmed[c] for o, c in zip(("raster", "coarse-to-fine"), order_lik)}
o_fid = {o: confirmed[c] for o, c in zip(("raster", "coarse-to-fine"), order_fid)}
gone = [v_ for v_ in o_lik.values() if str(v_).startswith("not judged")]
found = [verdict_words(v_, o, "the average order", better="{a} better than {b}", worse="{a} worse than {b}")
         for o, v_ in o_lik.items() if v_ in ("better", "worse")]
fid_said = "; ".join(verdict_words(v_, o, "random", better="{a} better than {b}", worse="{a} worse than {b}",
                                   tie="{a} no different from {b}") for o, v_ in o_fid.items())
order_verdict = ((gone[0] if gone else f"supported on the exact likelihood: {'; '.join(found)}" if found else
                  "not supported: neither raster nor coarse to fine differs from the average order in exact likelihood")
                 + f" (FID at {S_order} steps, order and parallel decoding together: {fid_said})")
claim_rows.append(("The generation order matters",
                   f"exact bits/dim of one network on {k} digits: raster {exact['raster'].mean():.3f}, coarse to fine "
                   f"{exact['coarse-to-fine'].mean():.3f}, any order (bound) {near.mean():.3f}; FID at {S_order} steps: "
                   + ", ".join(f"{o} {rows_[f'absorbing, {o}, {S_order} steps']['fid']:.1f}" for o in ORDERS),
                   order_verdict))
labels = {key: name for a, b, *_ in cross.values() for key, name in ((a, "absorbing"), (b, "DPM-Solver++"))}
claim_rows += [(f"(ours) {c}", measured, verdict) for c, measured, verdict in ledger.claim_rows(cross, confirmed, labels=labels)]
display(Markdown(claims_table(claim_rows, f"Profile `{profile.name}` on {device.type}. {ledger.note()}. Likelihood "
                                          "differences: ± standard error over the same digits.")))
assert all(r[2] for r in claim_rows) and len(claim_rows) == 4 + len(cross)
glue("identity_verdict", claim_rows[0][2]), glue("price_verdict", claim_rows[1][2]), glue("steps_verdict", claim_rows[2][2])
glue("order_verdict", order_verdict), glue("multiplicity", ledger.multiplicity)
glue("cross_words", "; ".join(f"{c.split(':')[0]}, {verdict_words(confirmed[c], 'absorbing', 'the DDPM')}" for c in cross));
""")

code("need", r"""
cands = {label: [key for key, r in rows_.items() if r.get("family") == family and r.get("order", "random") == "random"]
         for family, label in (("absorbing", "the absorbing model (random order)"), ("ddpm", "the DDPM (DPM-Solver++)"))}
tests = sum(len(ledger.scored(keys)) for keys in cands.values())          # one family of tests: both searches
need = {}
for label, keys in cands.items():
    ok = as_good("PixelCNN", keys, tests) if not rows_["PixelCNN"]["not_digits"] else []
    need[label] = min((rows_[key]["evals"] for key in ok), default=None)
    print(f"{label}: fewest evaluations measured with an FID within {FID_SHARE:.0%} of the PixelCNN's "
          f"(non-inferiority, α = {ALPHA:g} / {tests}): {need[label] or 'none'}")
glue("need_words", "; ".join(f"{label} with {e} evaluations" if e else f"{label} at none of the step counts measured"
                             for label, e in need.items()))
glue("pcnn_fid", rows_["PixelCNN"]["fid"]), glue("most_fid", rows_[most]["fid"]), glue("fewest_fid", rows_[fewest]["fid"])
glue("most_steps", max(profile.abs_steps)), glue("fewest_steps", min(profile.abs_steps))
glue("gate_words", "; ".join(f"{g.name}: {'passed' if g.passed else 'failed'} ({g.measured})" for g in (g_bpd, g_digits, g_ddpm)));
""")

md("render-time-text", r"""
The time this page took, for the line at its top:
""")

code("render-time", r"""
render_minutes = (time.perf_counter() - t_start) / 60
sample_minutes = sum(r["s_per_image"] * n for r in rows_.values() if r["s_per_image"]) / 60   # section 5's samples
print(f"{render_minutes:.1f} minutes in the {profile.name} profile on {device.type}, {sample_minutes:.1f} of them "
      "sampling the digits of section 5")
glue("render_minutes", render_minutes), glue("sample_minutes", sample_minutes)
glue("render_where", f"the `{profile.name}` profile on {device.type}");
""")

md("learned", r"""
## What we learned

- **The identity.** An autoregressive model in a fixed order is a diffusion model whose corruption hides one pixel
  per step in reverse order, with a bound that has no gap; averaging over orders gives absorbing-state diffusion,
  whose bound is ARDM's order-agnostic loss. On 2 × 2 images, with all {glue:text}`toy_orders` orders enumerated, the
  two sides agree to {glue:text}`toy_gap:.1e` nats. Verdict: {glue:md}`identity_verdict`.
- **One likelihood table.** On the same test digits: the order-agnostic bound {glue:text}`bound_bpd:.3f` bits/dim,
  the PixelCNN's exact {glue:text}`pcnn_bpd:.3f`; the same absorbing network, exact, {glue:text}`exact_raster:.3f`
  in raster order and {glue:text}`exact_coarse_to_fine:.3f` coarse to fine; the DDPM's bound
  {glue:text}`ddpm_unclipped:.3f` unclipped and {glue:text}`ddpm_clipped:.3f` clipped. {glue:md}`pcnn_words`
  "Order-agnostic models pay a likelihood price": {glue:md}`price_verdict`.
- **Parallel decoding.** FID-MNIST at n = {glue:text}`n` (real floor {glue:text}`floor:.1f`, noise
  {glue:text}`noise_fid:.0f`): {glue:text}`most_fid:.1f` with {glue:text}`most_steps` steps and
  {glue:text}`fewest_fid:.1f` with {glue:text}`fewest_steps`. "Parallel decoding trades steps for quality":
  {glue:md}`steps_verdict`. Against the DDPM at equal evaluations: {glue:md}`cross_words`. To match the PixelCNN's
  FID ({glue:text}`pcnn_fid:.1f`; worse by less than {glue:text}`fid_share:.0f`% of it, by a non-inferiority test):
  {glue:md}`need_words`.
- **Cost.** {glue:md}`speed_verdict`.
- **Orders.** "The generation order matters": {glue:md}`order_verdict`.
- **The gates:** {glue:md}`gate_words`. The verdicts were decided together ({glue:md}`multiplicity`).

Lesson 05 went from diffusion to autoregression over frequencies, approximately; this lesson went from
autoregression to diffusion over pixels, exactly. Coarse to fine appears in both: as the order in which a DDPM
settles frequency bands, and here as an order of pixels (a subsampled grid first, as in the multiscale PixelCNN and
Subscale Pixel Networks). Lesson 07's blocks of rows are another order: raster over blocks, diffusion within them.
""")

# ---------------------------------------------------------------------------------------------------- exercises
md("exercises", r"""
## Exercises

Each exercise has a cell to fill in and a worked solution below it. The solutions run with every build of the book
and assert their answers, so they cannot go stale.
""")

md("ex1", r"""
```{admonition} Exercise 8.1: what does a completion cost?
:class: tip

`absorbing.sample` accepts a context: `visible` (a mask) and `x_context` (the pixels it shows). **Predict** how many
network passes it makes to complete test digits from their top 14 rows in raster order with $S = 784$ steps, and
with $S = 49$. (Read the source in section 5: how are the hidden pixels spread over the steps, and what does a
step that reveals nothing cost?) **Then count** the passes with a forward hook on `model`
(`model.register_forward_hook`), and check that the given rows come back unchanged.
```
""")

code("ex1-todo", r"""
# Exercise 8.1: your code here. Count the calls with a forward hook on model during absorbing.sample(..., visible=..., x_context=...).
# (A worked solution follows; in the book it is behind the toggle below.)
""")

code("ex1-solution", r"""
# Solution to exercise 8.1
digits = x_bpd[:4].to(device)
keep = torch.zeros_like(digits, dtype=torch.bool)
keep[:, :, :14] = True                                        # the top 14 rows are given: 392 pixels
calls, counted, done = [], {}, {}
hook = model.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
try:
    for S in (D, 49):
        calls.clear()
        done[S] = absorbing.sample(model, None, S, "raster", visible=keep, x_context=digits,
                                   generator=torch.Generator(device).manual_seed(5))
        counted[S] = len(calls)
finally:
    hook.remove()
hidden = int((~keep[0]).sum())
predicted = {D: hidden, 49: 49}       # 392 hidden pixels over 784 steps: every other step reveals one, the rest cost nothing
print(f"passes: predicted {predicted}, counted {counted}")
assert counted == predicted
assert all(torch.equal(done[S][keep], digits[keep].long()) for S in done), "a given pixel changed"
show_images(from_pixels(torch.cat([torch.where(keep, digits.long(), 0), done[D], done[49], digits.long()])), nrow=4,
            title="given rows · completed, 784 steps · 49 steps · the real digits");
glue("ex_hidden", hidden);
""", tags=["hide-cell"])

md("ex2", r"""
```{admonition} Exercise 8.2: MD4's continuous time is ARDM's bound
:class: tip

In MD4's form each pixel is masked independently with probability $s$, and a mask with $m$ of the $D$ pixels masked
is weighted by $1/s$ and integrated over $s \in (0, 1]$. **Show** on paper that this gives each such mask the weight
$\int_0^1 \frac1s\, s^m (1-s)^{D-m}\,ds = \frac{(m-1)!\,(D-m)!}{D!}$, so that all $\binom{D}{m}$ masks with $m$ pixels
masked weigh $1/m$ together. **Then compute** MD4's bound exactly for the toy network and the 2 × 2 crops of
section 1, summing over all $2^4$ masks, and compare it with ARDM's (`ident["loss"]`).
```
""")

code("ex2-todo", r"""
# Exercise 8.2: your code here. Loop over the 16 visibility masks of a 2 x 2 image; weight each by (m-1)!(D-m)!/D!.
# (A worked solution follows; in the book it is behind the toggle below.)
""")

code("ex2-solution", r"""
# Solution to exercise 8.2
from itertools import product

B_toy, D_toy = len(x_toy), x_toy[0].numel()
md4 = torch.zeros(B_toy, dtype=torch.float64)
with torch.no_grad():
    for bits in product((False, True), repeat=D_toy):                     # every mask: True = visible
        vis = torch.tensor(bits).view(1, 1, 2, 2).expand(B_toy, 1, 2, 2)
        m = D_toy - sum(bits)                                              # masked pixels
        if m == 0:
            continue                                                       # nothing masked: weight x 0 NLL
        weight = math.factorial(m - 1) * math.factorial(D_toy - m) / math.factorial(D_toy)
        logp = torch.log_softmax(toy(absorbing.model_input(x_toy, vis)).double(), dim=1)   # (B, 256, 1, 2, 2)
        nll = -logp.gather(1, x_toy.long()[:, None]).squeeze(1)                            # (B, 1, 2, 2)
        md4 += weight * (nll * ~vis).flatten(1).sum(1)
gap_md4 = (md4 - ident["loss"]).abs().max().item()
per_m = [math.comb(D_toy, m) * math.factorial(m - 1) * math.factorial(D_toy - m) / math.factorial(D_toy)
         for m in range(1, D_toy + 1)]
print("MD4 (continuous time): " + ", ".join(f"{v:.4f}" for v in md4) + " nats")
print("ARDM (section 1):      " + ", ".join(f"{v:.4f}" for v in ident["loss"]) + " nats")
print(f"largest gap {gap_md4:.1e}; total weight of the masks with m masked: "
      + ", ".join(f"m = {m}: {w:.4f}" for m, w in enumerate(per_m, 1)))
assert all(abs(w - 1 / m) < 1e-12 for m, w in enumerate(per_m, 1)), "the masks with m masked must weigh 1/m"
assert gap_md4 < 1e-5 * md4.abs().max().item(), "MD4's bound differs from ARDM's"
glue("ex_md4_gap", gap_md4);
""", tags=["hide-cell"])

md("ex2-after", r"""
**Solution on paper.** $\int_0^1 s^{m-1}(1-s)^{D-m}\,ds$ is the Beta function $B(m, D-m+1) = \frac{(m-1)!\,(D-m)!}{D!}$,
and $\binom{D}{m} \frac{(m-1)!\,(D-m)!}{D!} = \frac{D!}{m!\,(D-m)!}\cdot\frac{(m-1)!\,(D-m)!}{D!} = \frac1m$. ARDM's bound
gives the same weight: its step $t$ has $m = D-t+1$ hidden pixels with probability $1/D$, and the factor $D/(D-t+1)$
makes the weight of each $m$ exactly $1/m$. So the two bounds are one sum, in two notations; on the toy they agree
to {glue:text}`ex_md4_gap:.1e` nats.

**Back to:** lesson 03 (one fixed order, exact) and lesson 05 (coarse to fine, in frequency).
""")


# ---------------------------------------------------------------------------------------------------- build + checks
def build() -> nbformat.NotebookNode:
    cells = []
    for cell_id, kind, source, tags in CELLS:
        cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
        cell.id = cell_id
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata.update({"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []},
                        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                        "language_info": {"name": "python"}})
    return nb


def check(nb) -> list[str]:
    problems = []
    ids = [c.id for c in nb.cells]
    if len(set(ids)) != len(ids):
        problems.append("cell ids are not unique")
    glued, used, defined = set(), set(), []
    for c in nb.cells:
        if c.cell_type == "code":
            defined += re.findall(r'glue\(\s*"(\w+)"', c.source)
            if c.source.count("\n") >= 42:
                problems.append(f"{c.id}: {c.source.count(chr(10)) + 1} lines")
            body = "\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith("%"))
            try:
                ast.parse(body)
            except SyntaxError as e:
                problems.append(f"{c.id}: {e}")
            glued |= set(re.findall(r'glue\(\s*"(\w+)"', c.source))
            glued |= {"exact_" + o for o in ("random", "raster", "coarse_to_fine")} if "glue(f\"exact_" in c.source else set()
        else:
            used |= set(re.findall(r"\{glue:(?:text|md)\}`(\w+)", c.source))
    twice = sorted({key for key in defined if defined.count(key) > 1})
    if twice:
        problems.append(f"glue keys glued more than once on the page: {twice}")
    if used - glued:
        problems.append(f"glue keys used in the prose but never glued: {sorted(used - glued)}")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = {k.strip() for ks in re.findall(r"\{cite\}`([^`]+)`", text) for k in ks.split(",")}
    problems += [f"cite key {k} is not in book/references.bib" for k in sorted(keys) if f"{{{k}," not in bib]
    if "../book/notation.md" not in text:
        problems.append("no link to the notation page")
    starts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("```{admonition} Exercise")]
    if len(starts) < 2:
        problems.append(f"{len(starts)} exercises")
    for i in starts:
        todo, sol = nb.cells[i + 1], nb.cells[i + 2]
        if not (todo.cell_type == "code" and todo.source.startswith("# Exercise")):
            problems.append(f"exercise at {i}: no cell to fill in")
        if not (sol.cell_type == "code" and sol.source.startswith("# Solution") and "assert" in sol.source
                and "hide-cell" in sol.metadata.get("tags", [])):
            problems.append(f"exercise at {i}: no hidden, asserting solution")
    learned = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## What we learned"))
    if starts and learned > starts[0]:
        problems.append("'What we learned' must come before the exercises")
    return problems


if __name__ == "__main__":
    nb = build()
    problems = check(nb)
    if problems:
        sys.exit("\n".join(problems))
    nbformat.validate(nb)
    nbformat.write(nb, OUT)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(nb.cells)} cells, {sum(c.cell_type == 'code' for c in nb.cells)} code")
