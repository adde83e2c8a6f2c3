"""Build lessons/drafts/07_blockwise_diffusion.ipynb, the rebuilt lesson 07 of issue 28 (not executed here).

Run from the repository root: ``python lessons/drafts/build_07.py``. Cells that survive from the old lesson keep
its cell ids; new cells get new ids (``n7xxxxxx``). The notebook runs once the four per-height models
``mnist-blockwise-h2/-h4/-h7/-h14`` are shipped; render it with
``ARDIFF_PROFILE=full python -m ardiff run-lessons lessons/drafts/07_blockwise_diffusion.ipynb``.
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ardiff import __version__
from ardiff.profiles import REPOSITORY, SETUP_CELL

OUT = Path(__file__).resolve().parent / "07_blockwise_diffusion.ipynb"
CELLS = []


def md(cid, text):
    CELLS.append(new_markdown_cell(text.strip("\n"), id=cid))


def code(cid, text, tags=()):
    c = new_code_cell(text.strip("\n"), id=cid)
    if tags:
        c.metadata["tags"] = list(tags)
    CELLS.append(c)


# ---------------------------------------------------------------------------------------------- introduction
md("0877cb4f", r"""
[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/ardiff-book/ardiff/blob/main/colab/07_blockwise_diffusion.ipynb)

# 07 · Block-wise autoregressive diffusion: a fair test

Lesson 03 generated a digit one pixel at a time; lesson 02 generated all its pixels at once, in many denoising
steps. Between the two lies **block-wise autoregressive diffusion**: split the rows into blocks
$B_1, \dots, B_K$ of $h$ rows each and write

$$p(x) = \prod_{k=1}^{K} p\left(x_{B_k} \mid x_{B_{<k}}\right),$$

where each factor is a *small diffusion* over one block, conditioned on the finished blocks above it. With
$h = 28$ there is one block: plain diffusion (lesson 02). With $h = 1$ each row is one block. Published systems
show that this works when it is built and sampled with care: ACDiT {cite}`hu2024acdit` for images, BD3-LM
{cite}`arriola2025block` for text, and in the same family MAR {cite}`li2024mar` and Diffusion Forcing
{cite}`chen2024diffusionforcing`. A popular write-up among the book's sources {cite}`treezyplayardiffusion` claims
that block-wise diffusion is

- "very fast; requires few steps (e.g., 1–16)" per block, where standard diffusion needs 100–1000;
- of "the same quality — or even better — in a tiny fraction of the time";
- highly coherent: each block is consistent with the last.

**Why this lesson was rebuilt.** An earlier version called these claims refuted. Its test was not fair: its one
network for every block height had a sixth of the DDPM's training per height and predicted its block's noise
*worse* than the plain DDPM, although it sees more; its few-step grid used a spacing that wasted a step and no
clipping; and it never measured more than 16 steps. This version tests block-wise diffusion as an expert reviewer
would: models that pass a sanity gate first, the best standard sampler for every setting, the cost under two cost
models, and the question the article raises, made precise. In this lesson you will

1. start one block model per height from the trained DDPM, as BD3-LM does, and check that each passes a **gate**:
   it must predict the noise of its last block, where it sees at least what the DDPM sees, no worse than the DDPM;
2. watch a digit grow block by block, and look at the sampler that draws each block;
3. measure FID-MNIST for every block height $h$ and steps per block $S$ from 1 to 64, with the best of three
   samplers for each setting on both sides, choosing on one half of the samples and testing on the other, and find
   **from which $S$ each height's quality has plateaued**;
4. measure the cost at matched quality, in network passes and FLOPs under two cost models and in wall time;
5. measure **seams**, and test for **compounding errors** directly, as a trend down the image: the same model with
   the real rows above each block against its own rows;
6. end with a claims table whose verdicts are computed from the numbers, each behind its gate.

One thing this lesson does not do: the article's few-step figures ("a 50-step model down to a nimble 4-step
generator") come from **distilled** causal generators {cite}`salimans2022progressive`, trained to jump in a few
steps. Every sampler here is undistilled, so the few-step claims are tested for undistilled samplers only.
Symbols and terms are those of the [notation page](../book/notation.md).

**Time:** this page took {glue:text}`render_minutes:.0f` minutes to render ({glue:md}`render_where`), almost all
of it sampling the grid of section 4. Fine-tuning the four block models took {glue:text}`ft_minutes:.0f` minutes
in all on the project's 2-core CPU.
""")
code("19b04b39", SETUP_CELL.format(repository=REPOSITORY, version=__version__, dataset="mnist"))
code("4ccea2ec", r"""
%matplotlib inline
import tempfile
import time
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import ardiff
from ardiff import blockwise, gates, timing, zoo
from ardiff.claims import Difference, Ledger, claims_table, verdict_words
from ardiff.data import load_mnist
from ardiff.forward import q_sample
from ardiff.metrics import Fid, FidMnist, flops, timer
from ardiff.plot import color, plain_log_axis, show_images
from ardiff.profiles import glue
from ardiff.recipes import BLOCKWISE_HEIGHTS
from ardiff.samplers import METHODS, sample
started = time.perf_counter()                          # the render time, glued in the introduction
""")

# ---------------------------------------------------------------------------------------------- 1. the models
md("5736dc86", r"""
## 1. One block model per height, started from the DDPM

The denoiser for block $k$ is lesson 02's U-Net with two extra input channels. It sees

- the clean pixels of the blocks above ($x_{B_{<k}}$; in training the real rows, when sampling the model's own
  finished blocks), the noisy block $x_t$ on the rows of block $k$, and zeros below: nothing of the blocks it has
  not reached;
- a mask of the context rows and a mask of the current block's rows;
- $t$, and an embedding of $h$ added to the time embedding.

It predicts $\varepsilon$, and the loss counts only the current block's pixels (`ardiff.blockwise.loss`). Here is
one training input, for $h = 7$ and $k = 2$ (counted from 0: the third block, rows 14 to 20), at $t = 400$:
""")
code("c63a9285", r"""
x_test = load_mnist("test")[0]      # 10,000 digits in disjoint slices: FID, teacher forcing, the gate, the pilot
x0 = x_test[:1]
recipe = zoo.recipe("mnist-blockwise-h7")
schedule = recipe.schedule
h, k, t = 7, 2, 400
ctx, cur = blockwise.block_masks(torch.tensor([k]), torch.tensor([h]), 28)
x_t = q_sample(x0, torch.tensor([t]), schedule, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)))
inp = blockwise.denoiser_input(x0, x_t, ctx, cur)                      # (1, 3, 28, 28)
assert inp[0, 0, (k + 1) * h:].abs().max() == 0, "rows below the current block must be hidden"
print(f"block rows {k * h}..{(k + 1) * h - 1}; context rows 0..{k * h - 1}; network input {tuple(inp.shape)}")
""")
code("4ebc775a", r"""
fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for ax, img, title in zip(axes, [x0[0, 0], inp[0, 0], inp[0, 1], inp[0, 2]],
                          ["the digit", "channel 0: context + noisy block", "channel 1: context rows", "channel 2: current block"]):
    ax.imshow(img, cmap="gray", vmin=-1 if img.min() < 0 else 0, vmax=1), ax.set_title(title, fontsize=8), ax.axis("off")
    for r in range(h, 28, h):
        ax.axhline(r - 0.5, color=color("block-wise"), lw=0.6)
""", tags=["hide-input"])
md("n7a1f001", r"""
**Starting from the DDPM.** BD3-LM {cite}`arriola2025block` fine-tunes its block model from a model trained on
whole sequences. We do the same: the DDPM's first convolution gets two more input channels with **zero weights**,
and the embedding of $h$ starts at zero. Before any fine-tuning the block model *is* the DDPM applied to channel 0,
so at $h = 28$ (one block, no context) it gives exactly the DDPM's $\varepsilon$ (exercise 7.2 checks it). At
$h < 28$ channel 0 holds clean rows above the noisy block and zeros below, which the DDPM never saw: fine-tuning
teaches the model to read them.
""")
code("n7a1f002", r"""
ardiff.show(blockwise.init_from_ddpm, docstring=False)
""")
md("7a370aee", r"""
**One model per height, not one for all.** The earlier version trained one network for six heights from scratch
on the DDPM's budget, one random block per image, so each height got about a sixth of it, and it failed the gate
of section 2. Here each height $h \in \{2, 4, 7, 14\}$ has its own recipe, `mnist-blockwise-h2` to
`mnist-blockwise-h14`: {glue:text}`ft_steps` steps of 64 digits from `mnist-ddpm`, only its own height supervised.
$h = 28$ needs no model of its own: it is `mnist-ddpm`. $h = 1$ is not trained: its 28 blocks make every setting
28 times as costly as the DDPM's, beyond this CPU's budget.

**Train it yourself.** The cell below fine-tunes the $h = 7$ recipe briefly on a small batch, starting from the
shipped DDPM, so you can watch the loss. To redo a book model, run `python -m ardiff train mnist-blockwise-h7`
(the book's four took {glue:text}`ft_minutes:.0f` minutes on 2 CPU cores in all) or set `ARDIFF_RETRAIN=1`.
""")
code("37478c10", r"""
short = recipe.variant("mnist-blockwise-h7-short", data={**recipe.data, "limit": 2048},
                       train=dict(steps=profile.selftrain_steps // 2, batch_size=profile.selftrain_batch,
                                  warmup_steps=5, checkpoint_every=None, log_every=5))
mine, mine_info = zoo.train_recipe(short, device=device, cache=tempfile.mkdtemp())   # starts from mnist-ddpm
my_steps, my_losses = map(np.array, zip(*mine_info["history"]))
print(f"{short.train.steps} steps of {short.train.batch_size} in {mine_info['seconds']:.0f} s: "
      f"block loss {my_losses[0]:.3f} (first {short.train.log_every} steps) -> {my_losses[-1]:.3f} (last)")
assert np.isfinite(my_losses).all(), "the fine-tuning loss is not finite"
show_images(blockwise.sample(mine, schedule, 8, 7, 4, generator=torch.Generator(device).manual_seed(0), method="ddpm",
                             clip_x0=True), nrow=8, title="your short run: 8 samples, h = 7, 4 ancestral steps per block");
""")
code("18f05958", r"""
models = {2: zoo.load("mnist-blockwise-h2", device=device), 4: zoo.load("mnist-blockwise-h4", device=device),
          7: zoo.load("mnist-blockwise-h7", device=device), 14: zoo.load("mnist-blockwise-h14", device=device)}
ddpm = zoo.load("mnist-ddpm", device=device)                             # SHA-256 and recipe hash checked
cards = {h: zoo.card(f"mnist-blockwise-h{h}") for h in BLOCKWISE_HEIGHTS}
HEIGHTS = (*BLOCKWISE_HEIGHTS, 28)                                       # 28: one block, the DDPM itself
assert set(models) == set(BLOCKWISE_HEIGHTS) and all(zoo.recipe(f"mnist-blockwise-h{h}").init == "mnist-ddpm"
                                                     for h in models), "each block model starts from mnist-ddpm"
for h, c in cards.items():
    print(f"mnist-blockwise-h{h}: {c['parameters']:,} parameters, {c['steps']} steps in {c['seconds'] / 60:.0f} min "
          f"on {c['device']}; final loss {c['final_loss']:.4f}")
glue("ft_minutes", sum(c["seconds"] for c in cards.values()) / 60), glue("ft_steps", cards[7]["steps"]);
""")
code("3bd61145", r"""
fig, ax = plt.subplots(figsize=(6.5, 3))
for h, c in cards.items():
    s, l = map(np.array, zip(*c["history"]))
    ax.plot(s, l, label=f"mnist-blockwise-h{h}")
ax.set_yscale("log"), ax.set_xlabel("fine-tuning step"), ax.set_ylabel("ε-loss on the current block")
ax.grid(alpha=0.3), ax.legend(fontsize=8);
""", tags=["hide-input"])

# ---------------------------------------------------------------------------------------------- 2. the gate
md("n7a2f001", r"""
## 2. The gate: does each block model do its job at least as well as the DDPM?

What does each model see of a digit while it denoises block $k$? On the block itself both see the same noisy
pixels $x_t$. Above it, the block model sees the clean rows and the DDPM their noisy version. Below it, the DDPM
sees the noisy rows and the block model nothing (zeros). So neither has strictly more information about a block's
pixels, except on the **last block**, which has nothing below: there the block model sees everything the DDPM sees,
and the rows above clean instead of noisy. A block model that predicts the last block's noise worse than the DDPM
has lost skill in fine-tuning.

That is the gate, stated before measuring (`ardiff.gates.block_gate`, which scores the last block): on
{glue:text}`gate_n` held-out test digits (used nowhere else), for each $t \in \{100, 300, 600, 900\}$, noise each
digit once, and score both models on the same pixels of the last block with the same $x_t$ and $\varepsilon$. The
gate passes when, at every $t$, the block model's mean ε-MSE is at most 1.05 times the DDPM's with one-sided 95%
confidence (a non-inferiority test per $t$; all four must pass). **No block-wise verdict is computed for a height
that fails it**: its verdicts read "not judged" (`gates.judged`).

Beside the gate, the table shows the same ratio on the **middle block**, as a description only. There the premise
does not hold: the DDPM also reads the noisy rows below the block, which carry signal at small $t$, so a ratio above
1 there can come from what the block model is not shown, not from a weak model. (At $h = 14$ the middle block is
the last, and the two columns agree.) One limit of the gate: for small $h$ the last block lies in the blank bottom
margin of most digits (rows 26 and 27 at $h = 2$), where it checks less; the middle block shows the inked rows.
""")
code("n7a2f002", r"""
GATE = slice(5000, 5000 + profile.bw_gate_n)           # held-out test digits, used by the gate only
x_gate = x_test[GATE]
gate = {h: gates.block_gate(models[h], ddpm, schedule, x_gate, h, block="last") for h in BLOCKWISE_HEIGHTS}
middle = {h: gates.block_gate(models[h], ddpm, schedule, x_gate, h, block="middle") for h in BLOCKWISE_HEIGHTS}
table = [(*g, m[2]) for h in BLOCKWISE_HEIGHTS for g, m in zip(gate[h].rows(), middle[h].rows())]
display(Markdown(claims_table(table, note=next(iter(gate.values())).rule + "; the middle block is described, not gated",
                              header=("h", "t", "last block: ε-MSE ratio, block model / DDPM (± sd)", "gate",
                                      "middle block: the same ratio (descriptive)"))))
passed = [h for h in BLOCKWISE_HEIGHTS if gate[h].passed]
failed = [h for h in BLOCKWISE_HEIGHTS if not gate[h].passed]
assert all(len(g.ratio) == len(gates.GATE_TIMESTEPS) and np.isfinite(g.ratio).all() for g in gate.values())
assert all(g.passed == all(p.passed for p in g.per_t) for g in gate.values()), "the gate is the intersection over t"
assert all("last block" in g.rule for g in gate.values()), "the gate scores the block where its premise holds"
assert np.allclose(gate[14].ratio, middle[14].ratio), "h = 14 has two blocks: its middle block is its last"
glue("gate_n", len(x_gate)), glue("gate_passed", ", ".join(f"h = {h}" for h in passed) or "no height")
glue("gate_failed", ", ".join(f"h = {h}" for h in failed) or "none")
ratios = lambda gs: [r for g in gs.values() for r in g.ratio]
glue("gate_worst", max(ratios(gate))), glue("gate_best", min(ratios(gate)))
glue("mid_worst", max(ratios(middle))), glue("mid_best", min(ratios(middle)));
""")
md("n7a2f003", r"""
Passed: {glue:md}`gate_passed`; failed: {glue:md}`gate_failed`. On the last block, across heights and noise levels,
the ratio runs from {glue:text}`gate_best:.2f` to {glue:text}`gate_worst:.2f`; on the middle block, not gated, from
{glue:text}`mid_best:.2f` to {glue:text}`mid_worst:.2f`. (The earlier version's shared model, scored on the middle
block, had a median ratio of 1.18 and a worst of 1.94.)
""")

# ---------------------------------------------------------------------------------------------- 3. block by block
md("3db295d4", r"""
## 3. Block by block

A sample grows from the top. Each block starts from fresh noise at $t = T$ and gets $S$ reverse steps, conditioned
on the finished rows above, then is clipped and written into the image; it is never revised. The steps are the
*trailing* steps of lesson 02 (`timestep_sequence`: $S$ evaluations spread over the noisy part, none wasted at
$t = 1$), and each step is lesson 02's `reverse_step`: DDIM, ancestral or DPM-Solver++(2M)
{cite}`lu2022dpmsolverpp`, with $\hat x_0$ clipped to $[-1, 1]$ when `clip_x0` is set. So a block costs exactly $S$
network evaluations and a sample $K \cdot S$. The whole per-block sampler:
""")
code("n7a3f001", r"""
ardiff.show(blockwise._block)
""")

# ---------------------------------------------------------------------------------------------- 4. the grid
md("92b9aef8", r"""
## 4. Quality against steps per block: the grid

For every height $h \in \{2, 4, 7, 14, 28\}$ and steps per block $S \in$ {glue:md}`steps_list`: FID-MNIST of the
samples against as many test digits, beside the real floor and the FID of noise, in `claims.Ledger`s that
bootstrap every difference. The instruments are equal for every row:

- **trailing spacing** and **$\hat x_0$ clipped** at every step, block-wise and reference alike;
- **the best standard sampler per setting, on both sides.** A pilot draws {glue:text}`pilot_n` samples with each of
  DDIM, ancestral and DPM-Solver++ at every setting up to {glue:text}`pilot_cap` evaluations per image, block-wise
  and the DDPM alike, on its own seed, scored against its own held-out test digits (the last of the test set), and
  picks the lowest FID. Above that cap a height keeps the pick of its largest piloted $S$. Picking on separate
  samples keeps the grid's FIDs free of the pilot's luck;
- **the reference** is `mnist-ddpm` at the same $S$ with its pilot's sampler ($h = 28$: one block);
- **the same noise:** every setting draws with one seed, so sample $i$ of every row starts from the same noise on
  the first block's rows, and the bootstrap resamples the rows in pairs;
- **the cost cap.** A block-wise sample costs $K \cdot S = (28/h)\,S$ evaluations. Settings up to
  {glue:text}`max_nfe` evaluations per image draw $n$ = {glue:text}`n` samples; the costly corner above it, up to
  {glue:text}`corner_max_nfe`, draws {glue:text}`corner_n` only.

**Two splits, against the winner's curse.** Each height's "best setting" is the lowest FID among up to seven. Chosen
and scored on the same samples, it would be the luckiest of seven draws, biased low, and so would the DDPM's best
that every height is compared with. So each setting's samples are split before anything is chosen: the first
{glue:text}`corner_n` (the **selection split**, against the first {glue:text}`corner_n` test digits) choose each
height's best setting and the DDPM's; the other {glue:text}`conf_n` (the **confirmation split**, against the next
{glue:text}`conf_n` test digits) test them. Every verdict about a chosen setting is read on the confirmation split.

**The question the article raises, made precise.** "Few steps per block suffice" is a claim that quality stops
improving early. For each height: from which $S$ on is its FID within $\delta$ of its own FID at its largest $S$?
$\delta$ is one margin for every height, in FID units, stated here before measuring: {glue:text}`margin_pct:.0f`% of
the real floor at the same $n$, here $\delta$ = {glue:text}`plateau_margin:.1f`. Every setting is compared on the
selection split (where the costly corner has samples too) by one-sided non-inferiority tests in a fixed sequence from
the most steps down, stopping at the first failure (`blockwise.plateau_steps`); the heights' sequences are corrected
together (Bonferroni: each at $\alpha = 0.05 / m$ for $m$ heights). When the first test already fails, there is
"no plateau shown below" the largest $S$. A plateau alone does not make few steps *suffice*: section 6 asks whether
the plateau's quality matches the DDPM's.
""")
code("cb5912a0", r'''
clf = zoo.load("mnist-classifier", device=device)
n, n_c, n_p = profile.bw_n, profile.bw_corner_n, profile.bw_pilot_n
assert n > n_c, "the confirmation split needs samples beyond the selection split's first n_c"
noise = lambda m: torch.randn(m, 1, 28, 28, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
x_train = load_mnist("train", limit=n)[0]
# the selection split: every setting's first n_c samples, against the first n_c test digits (and the plateau test)
first = Ledger(FidMnist(clf, n=n_c), noise=noise(n_c), paired=True)
# the confirmation split: samples n_c..n of the settings up to the NFE cap, against test digits n_c..n
rest = Ledger(Fid(clf, x_test[n_c:n], x_train[n_c:n]), noise=noise(n - n_c), paired=True)
pilot_fid = Fid(clf, x_test[-n_p:], load_mnist("train", limit=n_p)[0])   # the pilot's own held-out test digits
CLIP, SPACING, FALLBACK = True, "trailing", "dpm-solver++"       # the same for every row, both sides
LABEL = {"ddpm": "ancestral", "ddim": "DDIM", "dpm-solver++": "DPM-Solver++"}
nfe = lambda h, S: blockwise.nfe(h, S) if h < 28 else S
row = lambda h, S: f"h = {h}, S = {S}" if h < 28 else f"DDPM, S = {S}"
settings = [(h, S) for h in HEIGHTS for S in profile.bw_steps if nfe(h, S) <= profile.bw_corner_max_nfe]
skipped = [row(h, S) for h in HEIGHTS for S in profile.bw_steps if (h, S) not in settings]
picks, grid = {}, {}                          # (h, S) -> the pilot's sampler; row -> all its samples


def draw(h, S, m, seed=7, method=None):
    """m samples at height h (28: mnist-ddpm), S steps per block, x0 clipped, with the pilot's sampler (or method);
    and the seconds. One seed for every setting: sample i starts from the same noise on block 0's rows."""
    g, method = torch.Generator(device).manual_seed(seed), method or picks[(h, S)]
    with timer(device) as tm:
        if h == 28:
            x = sample(ddpm, schedule, (m, 1, 28, 28), steps=S, method=method, generator=g, clip_x0=CLIP,
                       spacing=SPACING)
        else:
            x = blockwise.sample(models[h], schedule, m, h, S, generator=g, method=method, clip_x0=CLIP,
                                 spacing=SPACING)
    return x.float().cpu(), tm["seconds"]


print(f"{len(settings)} settings; not run (over {profile.bw_corner_max_nfe} evaluations): {', '.join(skipped) or 'none'}")
glue("n", n), glue("corner_n", n_c), glue("conf_n", n - n_c), glue("max_nfe", profile.bw_max_nfe)
glue("corner_max_nfe", profile.bw_corner_max_nfe), glue("steps_list", "{" + ", ".join(map(str, profile.bw_steps)) + "}")
glue("margin_pct", 100 * profile.bw_margin), glue("plateau_margin", profile.bw_margin * first.fid.floor)
glue("pilot_n", n_p), glue("pilot_cap", profile.bw_pilot_max_nfe);
''')
code("n7a4f001", r"""
# The pilot: each sampler at every setting up to the pilot's cap, block-wise and the DDPM, seed 11 (the grid: 7)
pilot, spent = {}, [0.0, 0]                      # spent: seconds and image-passes, the pace that budgets the grid
for h in HEIGHTS:
    for S in profile.bw_steps:
        if nfe(h, S) <= profile.bw_pilot_max_nfe:
            for m in METHODS:
                x, seconds = draw(h, S, n_p, seed=11, method=m)
                pilot[(h, S, m)] = pilot_fid(x)
                spent = [spent[0] + seconds, spent[1] + nfe(h, S) * n_p]
            picks[(h, S)] = min(METHODS, key=lambda m: pilot[(h, S, m)])
        else:                                                       # above the cap: the pick of the S before it
            before = [s for s in profile.bw_steps if s < S]
            picks[(h, S)] = picks[(h, before[-1])] if before else FALLBACK
for h in HEIGHTS:
    print(f"{'DDPM' if h == 28 else f'h = {h}':>6}: " + "  ".join(
        f"S = {S}: {LABEL[picks[(h, S)]]}" + ("" if (h, S, FALLBACK) in pilot else "*") for S in profile.bw_steps))
print("* above the pilot's cap: the pick of the S before it (DPM-Solver++ when there is none)")
wins = {m: sum(picks[(h, S)] == m for h, S, mm in pilot if mm == m) for m in METHODS}
assert set(picks) == {(h, S) for h in HEIGHTS for S in profile.bw_steps} and set(picks.values()) <= set(METHODS)
assert spent[1] > 0, "the pilot ran no setting: nothing sets the pace of the grid"
glue("pilot_wins", ", ".join(f"{LABEL[m]} {v}" for m, v in wins.items()));
""")
code("n7a4f002", r'''
def run(part):
    """Draw each setting of the part, timed (n samples up to the NFE cap, n_c above it), and file its samples: the
    first n_c in the selection split, the rest in the confirmation split."""
    for i in part:
        h, S = settings[i]
        m = n_c if nfe(h, S) > profile.bw_max_nfe else n
        x, seconds = draw(h, S, m)
        grid[row(h, S)], info = x, dict(h=h, S=S, method=picks[(h, S)])
        first.add(row(h, S), x[:n_c], seconds * n_c / m, nfe(h, S), **info)
        if m > n_c:
            rest.add(row(h, S), x[n_c:], seconds * (m - n_c) / m, nfe(h, S), **info)


cost = [nfe(h, S) * (n_c if nfe(h, S) > profile.bw_max_nfe else n) for h, S in settings]   # image-passes
parts = blockwise.split_by_cost(cost, 6)           # six cells, their boundaries set by cumulative cost
minutes = [sum(cost[i] for i in p) * spent[0] / spent[1] / 60 for p in parts]   # at the pilot's pace
print("estimated minutes per cell of the grid: " + ", ".join(f"{v:.1f}" for v in minutes))
assert max(minutes) <= 20, "a cell of the grid would come near the 30-minute cell limit of run-lessons: use more parts"
run(parts[0])
''')
for i, cid in enumerate(("n7a4f003", "n7a4f004", "n7a4f005", "n7a4f006", "n7a4f008"), start=1):
    code(cid, f"run(parts[{i}])                                      # the grid, part {i + 1} of 6")
code("fae05a2c", r"""
first.bootstrap(draws=profile.fid_draws)             # the spread of every FID difference below, in both splits
rest.bootstrap(draws=profile.fid_draws)
print(first.table())
assert set(first.rows) == {row(h, S) for h, S in settings}, "a setting was not measured"
assert set(rest.rows) == {row(h, S) for h, S in settings if nfe(h, S) <= profile.bw_max_nfe}, "a split is missing"
assert all(r["evals"] == blockwise.passes(r["h"], r["S"]) for r in first.rows.values()), "NFE is K·S"
""")
code("e3f51f60", r"""
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for h in HEIGHTS:
    style = dict(color=color("DDPM"), ls="--", label="DDPM (h = 28)") if h == 28 else dict(ls="-", label=f"h = {h}")
    rs = sorted((r for r in first.rows.values() if r["h"] == h), key=lambda r: r["S"])
    for ax, key in zip(axes, ("evals", "S")):
        ax.plot([r[key] for r in rs], [r["fid"] for r in rs], marker="o", **style)
for ax, x in zip(axes, ("network evaluations per image", "steps per block S")):
    ax.axhline(first.fid.floor, color=color("real"), ls=":", lw=1)
    ax.axhline(first.noise_fid, color=color("noise"), ls=":", lw=1)
    plain_log_axis(ax, "x"), ax.set_yscale("log"), ax.set_xlabel(x), ax.grid(alpha=0.3, which="both")
    ax.set_ylabel(f"FID-MNIST (n = {first.n}, selection split)")
axes[0].axvline(profile.bw_max_nfe, color="0.5", lw=0.8)
axes[0].set_title("quality against cost (right of the line: no confirmation split)", fontsize=10)
axes[1].set_title("quality against steps per block", fontsize=10), axes[0].legend(fontsize=7)
fig.tight_layout()
""", tags=["hide-input"])
code("7ff93ffc", r"""
# each height's best setting within the NFE cap, chosen on the selection split (scored later on the confirmation split)
capped = lambda h: [row(h, S) for S in profile.bw_steps if row(h, S) in rest.rows]
best = {h: first.best(capped(h)) for h in HEIGHTS if first.scored(capped(h))}
# the plateau: one margin for every height, a fixed sequence from each height's largest S down, Bonferroni over heights
delta = profile.bw_margin * first.fid.floor
tested = [h for h in HEIGHTS if h == 28 or h in passed]           # a height that failed its gate is not tested
plateau = {}                                                       # h -> (S_p, or None below the top; the top S)
for h in tested:
    mine = [S for S in profile.bw_steps if row(h, S) in first.rows]
    if not first.rows[row(h, mine[-1])]["not_digits"]:
        diffs = {S: first.difference(row(h, S), row(h, mine[-1])) for S in mine[:-1]}
        plateau[h] = (blockwise.plateau_steps(diffs, delta, alpha=0.05 / len(tested))[0], mine[-1])


def plateau_words(h):
    if h not in tested:
        return "not judged (its gate failed)"
    if h not in plateau:
        return "not measured (its largest S makes no digits)"
    S_p, top = plateau[h]
    return f"from S = {S_p} (of {top})" if S_p else f"no plateau shown below S = {top}"


def best_words(h):
    r, c = first.rows[best[h]], rest.rows[best[h]]
    return (f"{'DDPM' if h == 28 else f'h = {h}'}: S = {r['S']} ({LABEL[r['method']]}, {r['evals']} evaluations), "
            f"FID {r['fid']:.1f} selecting, {c['fid']:.1f} confirming")


for h in HEIGHTS:
    print((best_words(h) if h in best else f"h = {h}: no setting makes digits") + f"; plateau {plateau_words(h)}")
assert all(p[0] is None or p[0] < p[1] for p in plateau.values()) and all(best[h] in capped(h) for h in best)
glue("best_per_h_words", "; ".join(best_words(h) for h in best)), glue("plateau_m", len(tested))
glue("plateau_words", "; ".join(f"{'DDPM' if h == 28 else f'h = {h}'}: {plateau_words(h)}" for h in HEIGHTS));
""")
md("n7a4f007", r"""
Each height's best setting within the cap, chosen on the selection split and scored on both:
{glue:md}`best_per_h_words`. Only the confirming FIDs enter the verdicts: the selecting ones belong to the luckiest
of up to seven settings. The pilot picked {glue:md}`pilot_wins` times among the piloted settings.

The plateaus, within $\delta$ = {glue:text}`plateau_margin:.1f` FID of each height's own largest $S$ (at $n$ =
{glue:text}`corner_n`; each height's sequence at level 0.05 divided by the {glue:text}`plateau_m` heights tested):
{glue:md}`plateau_words`. Whether a smaller block plateaus at fewer steps than the whole image is a different claim,
about the difference of two plateau points, and this lesson does not test it.
""")

# ---------------------------------------------------------------------------------------------- 5. pictures
md("n7a5f001", r"""
## 5. Samples at each height's best setting, and a digit growing

Below, free samples (the first 24 of the confirmation split) at each height's best setting, the DDPM at the
bottom; then one digit per height, block by block, at the same settings; then completions: the top half of test
digits kept (`keep_blocks`) and the rest generated.
""")
code("n7a5f002", r"""
fig, axes = plt.subplots(len(best), 1, figsize=(10, 0.75 * len(best) + 0.6))
for ax, (h, k_) in zip(np.atleast_1d(axes), best.items()):
    show_images(rest.samples[k_][:24], nrow=24, ax=ax)
    r = rest.rows[k_]
    ax.set_title(f"{k_.replace('DDPM', 'DDPM (h = 28)')}: {LABEL[r['method']]}, {r['evals']} evaluations, "
                 f"FID {r['fid']:.1f} (confirmation split)", fontsize=8, loc="left")
fig.tight_layout()
""", tags=["hide-input"])
code("955063bd", r"""
grow = [h for h in BLOCKWISE_HEIGHTS[::-1] if h in best]          # 14, 7, 4, 2
fig, axes = plt.subplots(len(grow), 1, figsize=(9, 1.2 * len(grow) + 0.2))
for ax, h in zip(np.atleast_1d(axes), grow):
    S = rest.rows[best[h]]["S"]
    _, grown = blockwise.sample(models[h], schedule, 1, h, S, generator=torch.Generator(device).manual_seed(3),
                                method=picks[(h, S)], clip_x0=CLIP, return_blocks=True)
    show_images(torch.cat(grown), nrow=len(grown), ax=ax)
    ax.set_title(f"h = {h}, S = {S}: the image after each of its {len(grown)} blocks", fontsize=8, loc="left")
fig.tight_layout()
""", tags=["hide-input"])
code("f9b0f06f", r"""
S7 = rest.rows[best[7]]["S"] if 7 in best else profile.bw_steps[-1]
kept = x_test[:8].to(device)
comp = blockwise.sample(models[7], schedule, 8, 7, S7, generator=torch.Generator(device).manual_seed(4),
                        context=kept, keep_blocks=2, method=picks[(7, S7)], clip_x0=CLIP)
assert torch.equal(comp[:, :, :14], kept[:, :, :14]), "a completion changed the kept rows"
show_images(torch.cat([kept, comp]), nrow=8, title=f"test digits · completions of their top 14 rows (h = 7, S = {S7})");
""")

# ---------------------------------------------------------------------------------------------- 6. cost
md("n7a6f001", r"""
## 6. Cost at matched quality, under two cost models

The article's speed claim is about time at equal quality, so we first match quality. The reference is the DDPM's
best setting, {glue:md}`ref_best`, chosen on the selection split like every height's best. A block-wise setting
**matches** it when, on the confirmation split, its FID is worse by less than $\delta$ = {glue:text}`q_margin:.1f`
(the same rule as the plateau's: {glue:text}`margin_pct:.0f`% of the real floor at that $n$), by a one-sided
non-inferiority test. For each height whose gate passed, the tests run in a **fixed sequence** from its largest $S$
within the cap down, stopping at the first failure (`blockwise.plateau_steps` again): its cheapest matching setting
is the last one passed, found without testing every setting and keeping the cheapest that happened to pass. The
DDPM's own sequence, from its best down, finds the cheapest DDPM setting that matches it, {glue:md}`ddpm_match`,
which every height is costed against. The {glue:text}`match_m` sequences are corrected together (Bonferroni). The
cost is counted three ways:

- **the U-Net actually used**: every block step is a full-image pass, so $K \cdot S$ passes, times the FLOPs of
  one pass (`metrics.flops`);
- **a block-local causal transformer with a KV cache**, as in ACDiT and BD3-LM: a *hypothetical* network that this
  lesson does not train, costed by an *estimate* whose assumptions `blockwise.passes` writes out (below). A block
  step costs about its block's share of a pass plus attention to the cached rows. We take attention's share of a
  pass as $f$ = {glue:text}`f_share:.2f` (784 pixel tokens at width 256); the DDPM on the same transformer costs
  $S$ passes. Its verdicts say what *would* follow if such a network matched quality at the same $S$ as our U-Net;
- **measured wall time** of the U-Net samplers, in two regimes: latency (batch 1) and throughput (batch
  {glue:text}`time_batch`), each the median of 5 timed calls (`ardiff.timing`). Every step is one full pass of the
  same network, so {glue:text}`time_steps` steps are timed and scaled to the whole chain (`Timing.scaled`).

Both sides sample with the pilot's pick of three samplers at every setting (section 4), so neither gets a better
instrument than the other.
""")
code("n7a6f002", r"""
ardiff.show(blockwise.passes)
""")
code("n7a6f003", r'''
F_SHARE = 0.34                      # attention's share of a transformer pass: 784 pixel tokens, width 256
assert 28 in best, "the DDPM makes no digits at any S within the cap: there is no reference"
ref_best, S_best = best[28], first.rows[best[28]]["S"]               # chosen on the selection split
q_margin = profile.bw_margin * rest.fid.floor                       # the plateau's rule, on the confirmation split
alpha_m = 0.05 / (len(passed) + 1)                                  # Bonferroni: the heights' sequences and the DDPM's


def cheapest_match(h):
    """The cheapest setting of h matching ref_best on the confirmation split, by a fixed sequence of non-inferiority
    tests from h's largest S within the cap down (the DDPM's from its best down); None when the first fails."""
    Ss = [S for S in profile.bw_steps if row(h, S) in rest.rows and (h < 28 or S <= S_best)]
    S_m = blockwise.plateau_steps({S: rest.difference(row(h, S), ref_best) for S in Ss}, q_margin, alpha_m)[0]
    return None if S_m is None else row(h, S_m)


ddpm_match = cheapest_match(28) or ref_best            # its first test is ref_best against itself: d = 0, sd = 0
matched = {h: k_ for h in passed if (k_ := cheapest_match(h))}
S_d = rest.rows[ddpm_match]["S"]
t1, y1 = torch.zeros(1, dtype=torch.long, device=device), torch.zeros(1, dtype=torch.long, device=device)
flop = {28: flops(ddpm, torch.zeros(1, 1, 28, 28, device=device), t1)}
flop.update({h: flops(models[h], torch.zeros(1, 3, 28, 28, device=device), t1, y1) for h in BLOCKWISE_HEIGHTS})
kv = lambda h, S: blockwise.passes(h, S, model="kv-cache", attention_share=F_SHARE)
cost = {h: {"U-Net": blockwise.passes(h, rest.rows[k_]["S"]) * flop[h] / (S_d * flop[28]),
            "KV-cache estimate": kv(h, rest.rows[k_]["S"]) / kv(28, S_d)} for h, k_ in matched.items()}
print(f"reference: {ref_best} (FID {rest.rows[ref_best]['fid']:.1f}, confirmation split); matched within "
      f"{q_margin:.1f} by {ddpm_match}, {S_d} passes of {flop[28] / 1e6:.0f} MFLOPs")
for h, k_ in matched.items():
    print(f"h = {h:>2}: {k_} (FID {rest.rows[k_]['fid']:.1f}): cost / the DDPM's = "
          + ", ".join(f"{m} {v:.2f}" for m, v in cost[h].items()))
print("no matching setting shown: " + (", ".join(f"h = {h}" for h in passed if h not in matched) or "none"))
assert all(abs(blockwise.passes(h, S) - nfe(h, S)) < 1e-9 for h, S in settings), "U-Net passes are K·S"
assert all(flop[h] >= flop[28] > 0 for h in BLOCKWISE_HEIGHTS), "a block model is the DDPM with 2 more input channels"
glue("ref_best", ref_best), glue("f_share", F_SHARE), glue("time_batch", profile.bw_time_batch)
glue("time_steps", profile.bw_time_steps), glue("q_margin", q_margin), glue("ddpm_match", ddpm_match)
glue("match_m", len(passed) + 1);
''')
code("n7a6f004", r'''
def block_steps(h, method):
    """fn(b): the timed part of a block-wise sample, bw_time_steps steps of h's last block for b images."""
    K = 28 // h
    return lambda b: blockwise.sample(models[h], schedule, b, h, profile.bw_time_steps, method=method, clip_x0=CLIP,
                                      context=torch.zeros(b, 1, 28, 28, device=device) if K > 1 else None,
                                      keep_blocks=K - 1)


ddpm_steps = lambda b: sample(ddpm, schedule, (b, 1, 28, 28), steps=profile.bw_time_steps, method=picks[(28, S_d)],
                              clip_x0=CLIP)
wall = {}
for h, k_ in matched.items():
    r = rest.rows[k_]
    sp = timing.compare_speed(block_steps(h, r["method"]), ddpm_steps, names=(k_, ddpm_match), device=device,
                              batch_sizes=(1, profile.bw_time_batch), memory_cap_gb=8.0)
    why = "every step is one full pass of the same U-Net"
    a = {g: tm.scaled(r["evals"] / profile.bw_time_steps, why) for g, tm in sp.a.items()}
    b = {g: tm.scaled(S_d / profile.bw_time_steps, why) for g, tm in sp.b.items()}
    ratio = {g: a[g].seconds_per_image / b[g].seconds_per_image for g in a}
    wall[h] = (ratio, *timing.slower_claim(a, b, names=(k_, ddpm_match)))
    print(f"h = {h}: {wall[h][2]}")
assert all(set(w[0]) == set(timing.REGIMES) for w in wall.values()), "both regimes are timed"
''')

# ---------------------------------------------------------------------------------------------- 7. seams, compounding
md("8369d8a5", r"""
## 7. Seams and compounding

**Seams.** A block is generated after the rows above it are fixed, so its first row must continue the row above.
For every sample we take the mean absolute jump between consecutive rows at the rows that start a block and at all
other rows, and divide the ratio of the two by the same ratio for real test digits (`blockwise.seam_ratio`): 1
means no seam. It is measured at each height's best setting, on the confirmation split, with the bootstrap spread
over images.

**Compounding, tested directly.** A block is never revised, so an early mistake is inherited by every later block
(the exposure bias that Diffusion Forcing {cite}`chen2024diffusionforcing` addresses). The direct test compares the
*same* model and sampler with two kinds of rows above each block: its own (free running, `blockwise.sample`) and the
real ones of held-out test digits (teacher forcing, `blockwise.teacher_forced`). With the same seed, block $k$ of
image $i$ starts from the same noise in both. For each inked block $k \ge 1$ (block 0 has no context and is the
same in both), $d_k$ is the Fréchet distance of the block's raw pixels to test digits, free minus teacher-forced,
with a paired bootstrap spread (`blockwise.compounding`).

Compounding is a *trend*: free blocks falling further behind the further down the image they are. A gap of the same
size at every block is a weaker model, not compounding, and a test of every block would ask many questions where the
claim makes one. So the test is **one per height**: the least-squares slope of $d_k$ against $k$, with its spread
from the same bootstrap draws (each draw resamples the same images for every block); a slope above zero is
compounding. The per-block $d_k$ are shown, not tested. It is run at $S$ = {glue:text}`tf_steps`, for the heights
whose blocks have fewer pixels than 0.6 $n$ (a bootstrap resample holds about 63% distinct images):
{glue:md}`tf_heights`. Seams, the compounding trends and the quality claims are decided together in section 8,
with Holm's correction.
""")
code("a6d0ed11", r"""
real = x_test[:n]                                  # the grid's test digits: the reference of compounding
seam = {h: blockwise.seam_ratio(rest.samples[best[h]], x_test[n_c:n], h, draws=profile.fid_draws)
        for h in best if 1 < h < 28}               # the confirmation split, against its own test digits
print(f"{'best setting':<16} {'seam ratio':>16}   (1 = real digits' boundary jumps)")
for h, (v, sd) in seam.items():
    print(f"{best[h]:<16} {v:>8.2f} ± {sd:.2f}")
assert all(np.isfinite(v) and sd > 0 for v, sd in seam.values())
""")
code("41c57547", r"""
TF, S_tf = slice(2000, 2000 + n), profile.bw_tf_steps    # held-out digits whose rows condition teacher forcing
compound = {}
for h in [h for h in BLOCKWISE_HEIGHTS if h * 28 < 0.6 * n and row(h, S_tf) in rest.rows]:
    free = grid[row(h, S_tf)]                             # seed 7, as below: block k of image i from the same noise
    forced = blockwise.teacher_forced(models[h], schedule, x_test[TF].to(device), h, S_tf, method=picks[(h, S_tf)],
                                      generator=torch.Generator(device).manual_seed(7), clip_x0=CLIP,
                                      spacing=SPACING).cpu()
    assert torch.allclose(forced[..., :h, :], free[..., :h, :], atol=1e-4), "block 0 must pair (same noise, no context)"
    inked = [k for k in range(1, 28 // h) if real[..., k * h:(k + 1) * h, :].std() > 0.3]   # not the empty margins
    compound[h] = c = blockwise.compounding(free, forced, real, h, blocks=inked, draws=profile.fid_draws)
    trend = "" if c["trend"] is None else f"; slope {c['trend'].value:+.2f} ± {c['trend'].sd:.2f} per block"
    print(f"h = {h}, S = {S_tf}: free − teacher-forced pixel Fréchet distance by block: "
          + ", ".join(f"{k}: {d:+.2f} ± {s:.2f}" for k, d, s in zip(c["blocks"], c["diff"], c["sd"])) + trend)
glue("tf_steps", S_tf), glue("tf_heights", ", ".join(f"h = {h}" for h in compound) or "none");
""")
code("3acdde85", r"""
fig, ax = plt.subplots(figsize=(6.5, 3))
for h, c in compound.items():
    x = (np.array(c["blocks"]) + 0.5) * h / 28
    bars = ax.errorbar(x, c["diff"], yerr=2 * c["sd"], fmt="o", capsize=2, label=f"h = {h}")
    if c["trend"] is not None:                         # the tested slope, as a dashed line
        fit = np.polyval(np.polyfit(c["blocks"], c["diff"], 1), c["blocks"])
        ax.plot(x, fit, "--", lw=1, color=bars[0].get_color())
ax.axhline(0, color=color("real"), lw=0.8), ax.set_xlabel("block centre, fraction of the height (top to bottom)")
ax.set_ylabel("pixel Fréchet distance,\nfree − teacher-forced (± 2 sd)"), ax.grid(alpha=0.3)
if compound:
    ax.legend(fontsize=7)
""", tags=["hide-input"])

# ---------------------------------------------------------------------------------------------- 8. claims
md("13e87670", r"""
## 8. The claims table

Each claim of the article, the measurement, and a verdict computed from the numbers, per block height. Every
verdict about a height passes through that height's gate (`gates.judged`): a height that failed it reads "not
judged", and none of its tests enters a family. Three families of tests, each at family-wise $\alpha = 0.05$:

- **Holm** (`Ledger.confirm`, Holm's step-down correction over all of them): each height's best FID against the
  DDPM's best (both chosen on the selection split, compared on the confirmation split), each height's seams, and
  each height's compounding trend;
- **the plateaus** (section 4) and **matched quality** (section 6): one fixed sequence per height, Bonferroni across
  the heights.

"Few steps suffice" needs both a plateau by $S \le 16$ and a setting with $S \le 16$ that matches the DDPM's best.
A time verdict names its cost model, and "a tiny fraction" means at most a quarter of the DDPM's cost, in every
regime for wall time. The KV-cache row is hypothetical: it costs a network this lesson does not train, so its
verdicts read "would be". $h = 28$ is plain diffusion; its numbers appear as the reference.
""")
code("5f4e3286", r"""
claims, extra = {}, {}
for h in passed:                                    # no claim enters the family for a height that failed its gate
    if h in best:
        claims[f"h = {h}: best vs the DDPM's best"] = (best[h], ref_best, "fid", True)
    if h in seam:
        extra[f"h = {h}: seams"] = (Difference(seam[h][0] - 1, seam[h][1]), True)
    if h in compound and compound[h]["trend"] is not None:
        extra[f"h = {h}: compounding trend"] = (compound[h]["trend"], True)   # slope > 0: compounding
confirmed = rest.confirm(claims, extra=extra) if claims or extra else {}
per_h = lambda fn: "; ".join(f"h = {h}: {gates.judged(lambda h=h: fn(h), gate[h])}" for h in BLOCKWISE_HEIGHTS)


def steps_words(h):
    if h not in plateau:
        return plateau_words(h)
    S_p, top = plateau[h]
    S_m = rest.rows[matched[h]]["S"] if h in matched else None
    if S_p is None or S_p > 16:
        return f"not supported: {plateau_words(h)}"
    if S_m is None or S_m > 16:
        return f"not supported: plateau from S = {S_p}, but no setting with S ≤ 16 shown to match the DDPM's best"
    return f"supported: plateau from S = {S_p}, the DDPM's best matched from S = {S_m}"


def quality_words(h):
    name = f"h = {h}: best vs the DDPM's best"
    return verdict_words(confirmed[name], best[h], ref_best) if name in confirmed else "no setting makes digits"


def cost_words(h, model):
    if h not in matched:
        return f"not supported: no setting shown to match {ref_best} within {q_margin:.1f} FID"
    v = cost[h][model] if model in cost[h] else max(wall[h][0].values())     # wall: the worse regime
    said = ", ".join(f"{g} {r:.2f}x" for g, r in wall[h][0].items()) if model == "wall" else f"{v:.2f}x"
    word = "supported" if v <= 0.25 else "less, not a tiny fraction" if v < 1 else "not supported"
    if model == "KV-cache estimate":                   # a network this lesson does not train: hypothetical
        word = "would not be supported" if word == "not supported" else f"would be {word}"
    return f"{word} ({said})"
""")
code("92ce2a7b", r"""
def seam_words(h):
    v = confirmed.get(f"h = {h}: seams")
    return ("not measured" if v is None else f"{verdict_words(v, 'smoother', '', better='smoother than real digits', worse='seams', tie='no seam shown')}"
            f" ({seam[h][0]:.2f} ± {seam[h][1]:.2f})")


def compound_words(h):
    v = confirmed.get(f"h = {h}: compounding trend")
    if v is None:
        return "not measured (too many pixels per block for n, or fewer than two inked blocks)"
    said = f"slope {compound[h]['trend'].value:+.2f} ± {compound[h]['trend'].sd:.2f} per block"
    return verdict_words(v, "", "", better=f"not observed: the gap shrinks down the image ({said})",
                         worse=f"observed: the gap grows down the image ({said})", tie=f"not shown: no trend ({said})")


match = f"cheapest setting matching {ref_best} within {q_margin:.1f} FID (fixed sequence), cost ÷ {ddpm_match}'s"
rows = [("'Requires few steps (1–16) per block' (undistilled samplers)",
         f"plateau within {delta:.1f} FID of the largest S (n = {n_c}), and a match of the DDPM's best, both by S = 16",
         per_h(steps_words)),
        ("(ours) Quality: each height's best vs the DDPM's best", f"FID on the confirmation split, n = {n - n_c}, Holm",
         per_h(quality_words)),
        ("'Same quality in a tiny fraction of the time': the U-Net used", f"{match}: passes × FLOPs",
         per_h(lambda h: cost_words(h, "U-Net"))),
        ("... the same, on a KV-cached transformer (hypothetical)", f"{match}: estimated passes, f = {F_SHARE}",
         per_h(lambda h: cost_words(h, "KV-cache estimate"))),
        ("... the same, measured wall time (U-Net)", f"{match}: median s/image per regime",
         per_h(lambda h: cost_words(h, "wall"))),
        ("'High coherence: each block is consistent with the last'", "seam ratio at each best setting, Holm",
         per_h(seam_words)),
        ("(ours) Errors compound over later blocks",
         f"slope of free − teacher-forced pixel FD over blocks, S = {S_tf}, Holm", per_h(compound_words))]
verdicts = {claim: v for claim, _, v in rows}
sequences = f"plateaus and matched quality: fixed sequences, Bonferroni over {len(tested)} and {len(passed) + 1}"
display(Markdown(claims_table(rows, note=f"Profile `{profile.name}` on {device.type}. {rest.note()}; {sequences}")))
""")
code("n7a8f001", r"""
# the prose below quotes these; every verdict of a height that failed its gate is 'not judged'
assert all(f"h = {h}: not judged" in v for v in verdicts.values() for h in failed), "a failed gate must block its verdicts"
assert not any(k_.startswith(f"h = {h}:") for k_ in confirmed for h in failed), "a failed height entered the Holm family"
assert all(v in ("better", "worse", "tie") or v.startswith("not judged") for v in confirmed.values())
assert all(f"h = {h}: {quality_words(h)}" in verdicts[rows[1][0]] for h in passed), "the table and Holm disagree"
assert all(f"h = {h}: {compound_words(h)}" in verdicts[rows[6][0]] for h in passed), "the table and Holm disagree"
assert all("would" in part or "no setting shown" in part or "not judged" in part
           for part in verdicts[rows[3][0]].split("; ")), "the KV-cache verdicts are hypothetical"
for key, (claim, _, v) in zip(("v_steps", "v_quality", "v_unet", "v_kv", "v_wall", "v_seams", "v_compound"), rows):
    glue(key, v)
glue("ref_best_fid", rest.rows[ref_best]["fid"]), glue("floor", rest.fid.floor), glue("noise_fid", rest.noise_fid)
glue("multiplicity", rest.multiplicity or "no claim was tested: every gate failed");
""")
code("n7a8f002", r"""
from ardiff.train import device_name
glue("render_minutes", (time.perf_counter() - started) / 60)
glue("render_where", f"profile {profile.name}, {device_name(device)}");
""")
md("5085102a", r"""
## What we learned

All FIDs are FID-MNIST on the confirmation split, at n = {glue:text}`conf_n` (real floor {glue:text}`floor:.1f`,
noise {glue:text}`noise_fid:.0f`), unless they say otherwise; each block model was fine-tuned from `mnist-ddpm` for
its own height.

- **The gate** (ε-MSE on the last block's pixels, where the block model sees at least what the DDPM sees, no worse
  than the DDPM's at four noise levels): passed by {glue:md}`gate_passed`; failed by {glue:md}`gate_failed`. Only
  heights that passed get verdicts. The middle block's ratios, shown beside the gate's, describe and do not gate.
- **Quality.** Each height's best setting within the cost cap, chosen on the first {glue:text}`corner_n` samples and
  scored on the other {glue:text}`conf_n`: {glue:md}`best_per_h_words`. The DDPM's best, {glue:md}`ref_best`, scores
  {glue:text}`ref_best_fid:.1f`. Against it ({glue:md}`multiplicity`): {glue:md}`v_quality`.
- **"Few steps (1–16) per block suffice"**, read as "quality has plateaued by $S \le 16$, at a quality that matches
  the DDPM's best", for undistilled samplers: {glue:md}`v_steps`. The plateaus, for every height and the DDPM:
  {glue:md}`plateau_words`. Whether smaller blocks plateau earlier than the whole image was not tested. The article's
  4-step figures come from distilled generators, which this lesson does not train.
- **"The same quality in a tiny fraction of the time"** depends on the cost model. With the U-Net used here, every
  block step is a full pass: {glue:md}`v_unet`. On a KV-cached transformer, which this lesson does not train, the
  estimate says what would follow at the same steps: {glue:md}`v_kv`. Measured wall time (U-Net):
  {glue:md}`v_wall`. (Matched quality: within {glue:text}`q_margin:.1f` FID of the DDPM's best, which
  {glue:md}`ddpm_match` already reaches; both sides sample with the pilot's pick of three samplers.)
- **Coherence:** {glue:md}`v_seams`.
- **Compounding**, tested as a trend down the image against teacher forcing at $S$ = {glue:text}`tf_steps`:
  {glue:md}`v_compound`.
- **What changed from the earlier version.** It called "few steps suffice" and "a tiny fraction of the time"
  refuted, and compounding observed at $h = 7$, from a shared model that failed its gate, a grid that stopped at
  $S = 16$ with one unclipped sampler, and a test picked from several criteria. The verdicts above replace them.

**Back to:** lesson 03 (one pixel at a time) and lesson 02 ($h = 28$, the whole image). **Next:** lesson 08 turns
the order itself into a random variable.
""")

# ---------------------------------------------------------------------------------------------- exercises
md("2953f74c", r"""
## Exercises

Each exercise has a cell to fill in and a worked solution below it. The solutions run with every build of
the book and assert their answers, so they cannot go stale.
""")
md("aa2345b5", r"""
```{admonition} Exercise 7.1: what does a completion cost?
:class: tip

A completion keeps the first blocks of a real digit and generates the rest. **Predict** how many times the network
is called to complete a batch of digits from their top 14 rows with $h = 7$ and $S = 8$, and how that compares
with a free sample at the same $h$ and $S$. **Then count** the calls: register a forward hook on `models[7]`
(`register_forward_hook`) that records each call, run `blockwise.sample(..., context=..., keep_blocks=2)`,
and remove the hook.
```
""")
code("b92867a6", r"""
# Exercise 7.1: your code here. Count the calls with a forward hook on models[7] during blockwise.sample(..., keep_blocks=2).
# (A worked solution follows; in the book it is behind the toggle below.)
""")
code("442cf64d", r"""
# Solution to exercise 7.1
calls = []
hook = models[7].register_forward_hook(lambda module, args, out: calls.append(len(args[0])))   # one entry per call
try:
    blockwise.sample(models[7], schedule, 4, 7, 8, generator=torch.Generator(device).manual_seed(0),
                     context=x_test[:4].to(device), keep_blocks=2, method="dpm-solver++", clip_x0=True)
finally:
    hook.remove()
predicted = (28 // 7 - 2) * 8                        # (K - kept blocks) blocks, S steps each
print(f"predicted {predicted} calls; counted {len(calls)}, each on a batch of {calls[0]} digits; "
      f"a free sample at h = 7, S = 8 makes {blockwise.nfe(7, 8)}")
assert len(calls) == predicted == blockwise.nfe(7, 8, keep_blocks=2) == blockwise.nfe(7, 8) // 2
glue("ex_calls", len(calls));
""", tags=["hide-cell"])
md("n7a9f001", r"""
```{admonition} Exercise 7.2: a block model that starts as the DDPM
:class: tip

Section 1 said that a block model built by `blockwise.from_ddpm(ddpm)`, before any fine-tuning, *is* the DDPM at
$h = 28$. **Check** it: from the same noisy digits, compare its $\varepsilon$ at $h = 28$ (one block, no context)
with the DDPM's. **Then predict** how this untrained block model does on the gate at $h = 7$: better or worse than
the DDPM, at small and at large $t$, and why. **Measure** it with `gates.block_gate` on 64 of the gate's digits, and
compare with the shipped `mnist-blockwise-h7`.
```
""")
code("n7a9f002", r"""
# Exercise 7.2: your code here. blockwise.from_ddpm(ddpm); its eps at h = 28 vs ddpm's; then gates.block_gate at h = 7.
# (A worked solution follows; in the book it is behind the toggle below.)
""")
code("n7a9f003", r"""
# Solution to exercise 7.2
start = blockwise.from_ddpm(ddpm).eval()
x_t = q_sample(x_gate[:16].to(device), 500, schedule, generator=torch.Generator(device).manual_seed(1))
tt, y28 = torch.full((16,), 500, device=device), torch.full((16,), blockwise.BLOCK_ROWS.index(28), device=device)
ctx28, cur28 = blockwise.block_masks(torch.zeros_like(tt), torch.full_like(tt, 28), 28, device)
with torch.no_grad():
    gap = (start(blockwise.denoiser_input(x_t, x_t, ctx28, cur28), tt, y28) - ddpm(x_t, tt)).abs().max().item()
untrained = gates.block_gate(start, ddpm, schedule, x_gate[:64], 7)
shipped = gates.block_gate(models[7], ddpm, schedule, x_gate[:64], 7)
for name, g in (("from_ddpm, not fine-tuned", untrained), ("mnist-blockwise-h7", shipped)):
    print(f"{name:<26} ε-MSE ratio at t = {', '.join(map(str, g.timesteps))}: " + ", ".join(f"{r:.2f}" for r in g.ratio))
print(f"h = 28: largest |ε_block - ε_DDPM| = {gap:.1e}")
assert gap < 1e-4, "zero-weight mask channels: the block model at h = 28 is the DDPM"
assert np.isfinite(untrained.ratio).all() and np.isfinite(shipped.ratio).all()
glue("ex_gap", gap), glue("ex_untrained_max", max(untrained.ratio)), glue("ex_shipped_max", max(shipped.ratio));
""", tags=["hide-cell"])
md("n7a9f004", r"""
**Why.** Before fine-tuning, the block model reads channel 0 as the DDPM would, and on the gate's last block at
$h = 7$ that channel holds clean rows above a noisy bottom quarter: an image the DDPM never saw, clean in one part
and noisy in another, at a noise level its $t$ gives for all of it. Its worst ratio is
{glue:text}`ex_untrained_max:.2f` times the DDPM's own error; after fine-tuning the worst is
{glue:text}`ex_shipped_max:.2f`. At $h = 28$ the input is $x_t$ itself and the two agree to
{glue:text}`ex_gap:.1e`.
""")
md("n7a9f005", r"""
```{admonition} Exercise 7.3: the KV-cache estimate by hand
:class: tip

Under the KV-cache cost model, a step of block $k$ (of $K$) costs $c_k = \frac{1-f}{K} + f\,\frac{k+1}{K^2}$ full
passes, and each finished block but the last is run once more to write the cache. **Compute** by hand the cost of
$h = 7$, $S = 8$ with $f = 0.34$, and compare it with the U-Net's $K \cdot S$ and with `blockwise.passes`. **Then
find** the block height at which the estimate costs the least, with $S = 8$ and with $S = 2$, and explain why the
answers differ.
```
""")
code("n7a9f006", r"""
# Exercise 7.3: your code here. sum over k of (S + [k < K-1]) * c_k; then blockwise.passes(h, S, model="kv-cache", attention_share=0.34).
# (A worked solution follows; in the book it is behind the toggle below.)
""")
code("n7a9f007", r"""
# Solution to exercise 7.3
f, S, K = 0.34, 8, 4
by_hand = sum((S + (k < K - 1)) * ((1 - f) / K + f * (k + 1) / K ** 2) for k in range(K))
library = blockwise.passes(7, S, model="kv-cache", attention_share=f)
print(f"h = 7, S = 8: by hand {by_hand:.3f} passes, library {library:.3f}, U-Net {blockwise.passes(7, S):.0f}")
assert abs(by_hand - library) < 1e-9 and blockwise.passes(7, S) == K * S
kv_by, falls = {}, {}                                # S -> {h: passes}, from one block (h = 28) to 28 (h = 1)
for steps in (8, 2):
    kv_by[steps] = {h: blockwise.passes(h, steps, model="kv-cache", attention_share=f) for h in (28, 14, 7, 4, 2, 1)}
    print(f"KV-cache estimate, S = {steps}: " + ", ".join(f"h = {h}: {v:.2f}" for h, v in kv_by[steps].items()))
    v = list(kv_by[steps].values())
    falls[steps] = all(a > b for a, b in zip(v, v[1:]))
    # a straight line in 1/K with slope (f (S + 1) - 2) / 2: one sign for every K
    assert falls[steps] == (f * (steps + 1) > 2) and (falls[steps] or all(a < b for a, b in zip(v, v[1:])))
cheapest = {steps: min(kv, key=kv.get) for steps, kv in kv_by.items()}
glue("ex_kv_h7", library), glue("ex_kv_min_h", cheapest[8]), glue("ex_kv_min", kv_by[8][cheapest[8]])
glue("ex_kv_28", kv_by[8][28]), glue("ex_kv_min_h2", cheapest[2])
glue("ex_kv_trend", "falls steadily" if falls[8] else "rises steadily");
""", tags=["hide-cell"])
md("n7a9f008", r"""
**Why.** The estimate is a straight line in $1/K$. The steps cost $S\,[(1-f) + f\frac{K+1}{2K}]$: a block step
attends only to the rows above it and its own, about half the image on average, so more blocks save attention. The
cache writes cost $\frac{K-1}{K}(1-\frac{f}{2})$, less than one pass in all, and more with more blocks. Together
that is a constant plus $\frac{1}{K} \cdot \frac{f(S+1) - 2}{2}$. When $f(S+1) > 2$, as at $S = 8$, the saving wins
and the cost {glue:md}`ex_kv_trend` as $h$ shrinks, from {glue:text}`ex_kv_28:.2f` passes at $h = 28$ to
{glue:text}`ex_kv_min:.2f` at the cheapest height, $h$ = {glue:text}`ex_kv_min_h`. When $f(S+1) < 2$, as at
$S = 2$, the writes win and the cheapest height is $h$ = {glue:text}`ex_kv_min_h2`. Either way every height costs
about $S$ passes: $h = 7$ at $S = 8$ costs {glue:text}`ex_kv_h7:.2f` against the U-Net's 32.
""")

nb = new_notebook(cells=CELLS, metadata={
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "pygments_lexer": "ipython3"}})
nbformat.validate(nb)
nbformat.write(nb, OUT)
print(f"wrote {OUT.name}: {len(CELLS)} cells")
