C = {}
C["f21fd6b8"] = '''### Training stability

The study calls autoregressive training "sensitive" and diffusion training "very stable". Stability is a spread, so
each family's recipe is retrained at a short budget (`python -m ardiff sweep NAME`): {glue:text}`sweep_seeds` seeds at
its own learning rate and warm-up, and learning rates 4 and 16 times it at seed 0, counting the runs that diverge.
Each run is scored on 500 held-out test cats: the ε-loss for the DDPM (the same draws of $t$ and $\\epsilon$ for every
run), bits/dim for the PixelCNN.

A short run compares two families fairly only if it takes both a comparable share of the way: a model still on its
first plateau varies for other reasons than one nearly done. So a run's **progress** runs from the untrained
model's score $u$ to the converged score $c$ of the shipped model, $(u - s) / (u - c)$, whatever the unit
(`ardiff.sweeps.summarise`), and each family's budget takes it past its warm-up and most of the way:
{glue:text}`ddpm_steps` steps for the DDPM, {glue:text}`pcnn_steps` for the PixelCNN. The **gate**: both families' seeds
average at least 70% of the way, or the verdict is "not judged".

Two tests then make the verdict (`ardiff.sweeps.verdict`). **Learning rate:** the family with more diverged runs is
the more sensitive. **Seeds:** a seed-to-seed spread is read against the distance the seeds still have to go,
$\\operatorname{sd}(s) / (\\bar s - c)$, and the two families' relative spreads are compared by an F test at
$\\alpha = 0.05$. With {glue:text}`sweep_seeds` seeds each, equal spreads still give a ratio of 2 or more, either
way, {glue:text}`f2_chance:.0%` of the time, so only a larger ratio is evidence. The verdict is "supported" when the
tests that find a difference find the PixelCNN the more sensitive, "contradicted" when they find the DDPM so, and
"mixed" when they disagree.'''

C["f0f29302"] = '''from scipy.stats import f as f_dist

stab = {}
for family, name in (("autoregressive", "cats-pixelcnn"), ("diffusion", "cats-ddpm")):
    e = sweeps.load(name)
    stab[family] = {**sweeps.summarise(e), "entry": e, "name": name}
ar, dm = stab["autoregressive"], stab["diffusion"]
sv = sweeps.verdict(ar, dm)
print(f"{'family':<15} {'steps':>5} {'untrained':>9} {'seeds: mean ± sd':>19} {'converged':>9} {'progress':>8} "
      f"{'sd / left':>9}   progress at lr x4, x16")
for family, st in stab.items():
    e = st["entry"]
    lrs = ", ".join("diverged" if v is None else f"{v:.2f}" for v in st["lr_progress"].values())
    print(f"{family:<15} {e['steps']:>5} {e['untrained']:>9.4f} {st['seed_mean']:>10.4f} ± {st['seed_sd']:.4f} "
          f"{st['converged']:>9.4f} {st['progress']:>8.2f} {st['seed_rel_sd']:>9.3f}   {lrs}")
print(sv["words"])
for st in stab.values():                               # invariants of the sweep files, not findings
    assert st["seeds"] == len(st["entry"]["seeds"]) >= 5 and st["entry"]["complete"]
    assert set(st["lr_progress"]) == {4.0, 16.0}
n_seeds = ar["seeds"]
chance = 2 * f_dist(n_seeds - 1, n_seeds - 1).sf(4.0)    # P(sd ratio >= 2 either way | equal spreads)
glue("sweep_seeds", n_seeds), glue("ddpm_steps", dm["entry"]["steps"]), glue("pcnn_steps", ar["entry"]["steps"])
glue("f2_chance", chance), glue("stab_p", sv["p"] if sv["p"] is not None else float("nan"))
glue("prog_dm", dm["progress"]), glue("prog_ar", ar["progress"]);'''

C["4446c76f"] = '''fig, axes = plt.subplots(1, 2, figsize=(13, 3))
for ax, (family, st) in zip(axes, stab.items()):
    entry = st["entry"]
    for run in entry["runs"]:
        if not run["diverged"]:
            s_, l_ = map(np.array, zip(*run["history"]))
            label = run["run"].split("sweep-")[1]
            ax.plot(s_, l_, lw=1, label=label, color="0.55" if label.startswith("seed") else None)
    ax.set_yscale("log"), ax.set_title(f"{st['name']}: {entry['steps']} steps per run (seeds in grey)", fontsize=9)
    ax.set_xlabel("step"), ax.set_ylabel("training loss"), ax.grid(alpha=0.3), ax.legend(fontsize=7, ncol=2)
fig.tight_layout()'''

C["cb13c2c5"] = '''### Likelihood

The PixelCNN's bits/dim is exact: $-\\log_2 p(x)$ summed over its 3,072 softmax factors, divided by 3,072. A DDPM
has no exact likelihood, but it has a bound (Ho et al. 2020, eq. 5 {cite}`ho2020ddpm`): with the model's reverse steps
$p_\\theta(x_{t-1} \\mid x_t) = \\mathcal N(\\tilde\\mu_t(x_t, \\hat x_0), \\tilde\\beta_t)$,

$$-\\log p_\\theta(x_0) \\le \\underbrace{D_{KL}\\big(q(x_T \\mid x_0)\\,\\|\\,\\mathcal N(0, I)\\big)}_{L_T}
+ \\sum_{t > 1} \\underbrace{D_{KL}\\big(q(x_{t-1} \\mid x_t, x_0)\\,\\|\\,p_\\theta(x_{t-1} \\mid x_t)\\big)}_{L_{t-1}}
\\underbrace{-\\ \\log p_\\theta(x_0 \\mid x_1)}_{L_0}.$$

Every $L_{t-1}$ is a KL divergence between two Gaussians. The decoder gives each of the $D$ sub-pixels the
Gaussian's mass over its bin of width $2/255$ (Ho et al.'s eq. 13),

$$p_\\theta(x_0 \\mid x_1) = \\prod_{i=1}^{D} \\int_{\\delta_-(x_0^i)}^{\\delta_+(x_0^i)}
\\mathcal N\\big(x;\\ \\hat x_0^i(x_1),\\ \\sigma_1^2\\big)\\,dx, \\qquad
\\delta_\\pm(x) = \\begin{cases} \\pm\\infty & x = \\pm 1 \\\\ x \\pm \\tfrac{1}{255} & \\text{otherwise,} \\end{cases}$$

with $\\hat x_0(x_1)$ the network's estimate of the clean image from the least noisy step, and $\\sigma_1^2$ the
posterior variance $\\tilde\\beta$ of the next step (that of the first is 0; Ho et al.'s code does the same). So the
bound is a likelihood of the same discrete pixels the PixelCNN models (`ardiff.ddpm.nll_bound`).

**Clipped or not.** The reverse step's mean $\\tilde\\mu_t(x_t, \\hat x_0)$ is built from $\\hat x_0$, and Ho et al.'s code
computes the bound with $\\hat x_0$ clipped to $[-1, 1]$, the same clip its sampler uses. Either way the chain is a
valid model of the pixels, so either bound is an upper bound on its own model's $-\\log p$: clipping defines the
model the sampler actually draws from. We compute both, and the verdict uses the clipped one, as the reference code
does.

For the fixed DDPM's 999 KL terms we use an unbiased estimate from {glue:text}`bound_steps` of them, one from each
of {glue:text}`bound_steps` strata of similar width in log SNR (`ardiff.ddpm.snr_strata`), weighted by its stratum's
size. The terms change fastest where the log SNR does, so the least noisy steps and the cosine schedule's last step
get strata of their own; the study's model has only 99 terms, all computed. All are measured on the same
{glue:text}`bound_n` test cats as the PixelCNN, in groups of images with their own random steps and noise, and the
spread is the standard error over the groups.'''

C["bcd2e114"] = '''xb = to_pixels(x_test[:profile.cats_bound_n])                        # (N, 3, 32, 32) integers 0..255
groups = torch.arange(len(xb)).chunk(min(8, len(xb)))
with torch.no_grad():
    pc = torch.cat([pcnn.bits_per_dim(xb[i].to(device)).cpu() for i in groups]).double()
gen = torch.Generator(device).manual_seed(0)
bound = lambda m, sched, **kw: [ddpm.nll_bound(m, xb[i], sched, generator=gen, **kw) for i in groups]
bounds = {"fixed, x0_hat clipped": bound(fx, fx_sched, timesteps=profile.cats_bound_steps, clip_x0=True),
          "fixed, unclipped": bound(fx, fx_sched, timesteps=profile.cats_bound_steps),
          "study (T = 100)": bound(s2, s2_sched)}
lik = {"PixelCNN": {"mean": pc.mean().item(), "se": torch.stack([pc[i].mean() for i in groups]).std().item() / len(groups) ** 0.5}}
for k_, parts in bounds.items():
    per_group = torch.stack([p["total"].mean() for p in parts])
    gap = torch.stack([p["total"].mean() - pc[i].mean() for p, i in zip(parts, groups)])
    lik[k_] = {"mean": per_group.mean().item(), "se": per_group.std().item() / len(groups) ** 0.5,
               "gap": gap.mean().item(), "gap_se": gap.std().item() / len(groups) ** 0.5,
               **{term: torch.cat([p[term] for p in parts]).mean().item() for term in ("prior", "diffusion", "decoder")}}
print(f"bits/dim on {len(xb)} test cats ({len(groups)} groups; ± standard error over the groups)")
print(f"{'model':<24} {'bits/dim':>16} {'prior L_T':>10} {'KL terms':>9} {'decoder L_0':>12} {'minus PixelCNN':>16}")
print(f"{'PixelCNN (exact)':<24} {lik['PixelCNN']['mean']:>9.3f} ± {lik['PixelCNN']['se']:.3f}")
for k_ in bounds:
    v = lik[k_]
    print(f"{k_ + ' (bound)':<24} {v['mean']:>9.3f} ± {v['se']:.3f} {v['prior']:>10.3f} {v['diffusion']:>9.3f} "
          f"{v['decoder']:>12.3f} {v['gap']:>9.3f} ± {v['gap_se']:.3f}")
assert 0 < lik["PixelCNN"]["mean"] < 8, "a trained PixelCNN must beat 8 bits/dim (a uniform model)"
last = fx_sched.T - 1                                  # always its own stratum (snr_strata), so in every group's terms
last_term = {k_: torch.cat([p["terms"][:, p["t"].index(last)] for p in bounds[k_]]).mean().item()
             for k_ in ("fixed, x0_hat clipped", "fixed, unclipped")}
print("the fixed model's last KL term: " + ", ".join(f"{k_} {v:.3f}" for k_, v in last_term.items()) + " bits/dim")
glue("bound_steps", profile.cats_bound_steps), glue("bound_n", len(xb))
glue("last_term_raw", last_term["fixed, unclipped"]), glue("last_term_clip", last_term["fixed, x0_hat clipped"])
glue("bound_clip", lik["fixed, x0_hat clipped"]["mean"]), glue("bound_raw", lik["fixed, unclipped"]["mean"]);'''

C["d54997ca"] = '''fig, ax = plt.subplots(figsize=(6.5, 2.8))
terms = bounds["study (T = 100)"][0]
ax.semilogy(terms["t"], terms["terms"].mean(0), ".-", color=color("study"), label="study (T = 100): every term")
for k_, marker in (("fixed, unclipped", "."), ("fixed, x0_hat clipped", "x")):
    terms = bounds[k_][0]
    ax.semilogy(np.array(terms["t"]) / 10, terms["terms"].mean(0), marker, color=color("cosine"),
                label=f"{k_} (cosine, T = 1000): sampled terms, t / 10", alpha=0.8)
ax.set_xlabel("step t (fixed model: t / 10)"), ax.set_ylabel("KL term, bits/dim"), ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7), ax.set_title("where the bound's bits are: the first steps, and one degenerate last step", fontsize=9);'''

C["f2c3a735"] = '''Unclipped, the fixed model's last step alone adds {glue:text}`last_term_raw:.2f` bits/dim to its bound; with
$\\hat x_0$ clipped it adds {glue:text}`last_term_clip:.2f`, and the whole bound goes from {glue:text}`bound_raw:.3f`
to {glue:text}`bound_clip:.3f` bits/dim. The cause is one degenerate step. There the cosine schedule clips $\\beta$
to 0.999, so $\\bar\\alpha$ falls a thousandfold in one step, and the KL term weighs the network's small error in
$\\hat\\epsilon$ through the posterior mean $\\tilde\\mu_T$, amplified by
$\\beta_T / (\\sqrt{\\alpha_T} \\sqrt{1 - \\bar\\alpha_T}) \\approx 0.999 / \\sqrt{0.001} \\approx 32$, that is by about 1,000
in the squared error the term measures. At that step $\\hat x_0$ is hundreds of pixel ranges wide (exercise 6.1);
clipped, it is a plausible image, and the step costs almost nothing. The same clip that rescues the sampler rescues
the bound.'''
