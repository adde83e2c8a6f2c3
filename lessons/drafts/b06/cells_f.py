C = {}
C["f21fd6b8"] = '''### Training stability

The study calls autoregressive training "sensitive" and diffusion training "very stable". Stability is a spread, so
each family's recipe is retrained at a short budget (`python -m ardiff sweep NAME`): {glue:text}`sweep_seeds` seeds at
its own learning rate and warm-up, and learning rates 4 and 16 times it at seed 0. Each run is scored on 500 held-out
test cats: the ε-loss for the DDPM (the same draws of $t$ and $\\epsilon$ for every run), bits/dim for the PixelCNN.

A short run compares two families fairly only if it takes both a comparable share of the way: a model still on its
first plateau varies for other reasons than one nearly done. So a run's **progress** runs from the untrained
model's score $u$ to the converged score $c$ of the shipped model, $(u - s) / (u - c)$, whatever the unit
(`ardiff.sweeps.summarise`), and each family's budget takes it past its warm-up and most of the way:
{glue:text}`ddpm_steps` steps for the DDPM, {glue:text}`pcnn_steps` for the PixelCNN. (Both families beat trivial
baselines early, a per-pixel histogram or a linear denoiser; the untrained model is the one starting point the two
share.) The **gate**: both families' seeds average at least 70% of the way, or the verdict is "not judged". The
shares are not equal (below): the DDPM's seeds get further, which is why spreads are read against the distance left.

**The test.** A seed-to-seed spread is read against the distance the seeds still have to go,
$\\operatorname{sd}(s) / (\\bar s - c)$, and the two families' relative spreads are compared by an F test at
$\\alpha = 0.05$ (`ardiff.sweeps.verdict`). With {glue:text}`sweep_seeds` seeds each, equal spreads still give a ratio of
2 or more, either way, {glue:text}`f2_chance:.0%` of the time, so only a larger ratio is evidence. The claim is
"supported" if the PixelCNN's spread is the larger, "contradicted" if the DDPM's is, and "not supported" if the test
finds no difference. **Learning rates** are described, not tested (one run per rate): a raised rate *fails* when its
run diverges or keeps less than half the seeds' progress, since a run stuck at the untrained loss has failed as
surely as one whose loss overflowed.'''

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
for st in stab.values():                               # invariants of the shipped sweeps, not findings
    e = st["entry"]
    assert e["complete"] and len(e["runs"]) == len(e["seeds"]) + len(e["lr_factors"]) and len(e["seeds"]) >= 5
n_seeds = len(ar["entry"]["seeds"])
chance = 2 * f_dist(n_seeds - 1, n_seeds - 1).sf(4.0)    # P(sd ratio >= 2 either way | equal spreads)
glue("sweep_seeds", n_seeds), glue("ddpm_steps", dm["entry"]["steps"]), glue("pcnn_steps", ar["entry"]["steps"])
glue("f2_chance", chance), glue("prog_dm", dm["progress"]), glue("prog_ar", ar["progress"]);'''

C["4446c76f"] = '''fig, axes = plt.subplots(1, 2, figsize=(13, 3))
style = {"lr4x": "--", "lr16x": ":"}
for ax, (family, st) in zip(axes, stab.items()):
    entry, c = st["entry"], color("PixelCNN" if family == "autoregressive" else "DDPM")
    for run in entry["runs"]:
        label = run["run"].split("sweep-")[1]
        if run["diverged"]:                            # no loss curve survives a NaN: named in the legend
            ax.plot([], [], "x", color=c, label=f"{label}: diverged")
            continue
        s_, l_ = map(np.array, zip(*run["history"]))
        seed = label.startswith("seed")
        ax.plot(s_, l_, lw=0.8 if seed else 1.5, color="0.6" if seed else c, ls=style.get(label, "-"),
                label="seeds (grey)" if label == "seed0" else None if seed else label)
    ax.set_yscale("log"), ax.set_title(f"{st['name']}: {entry['steps']} steps per run", fontsize=9)
    ax.set_xlabel("step"), ax.set_ylabel("training loss"), ax.grid(alpha=0.3), ax.legend(fontsize=7)
fig.tight_layout()'''

C["bcd2e114"] = '''xb = to_pixels(x_test[:profile.cats_bound_n])                        # (N, 3, 32, 32) integers 0..255
groups = torch.arange(len(xb)).chunk(min(20, len(xb)))              # 20 groups: a standard error on 19 df
with torch.no_grad():
    pc = torch.cat([pcnn.bits_per_dim(xb[i].to(device)).cpu() for i in groups]).double()
gen = torch.Generator(device).manual_seed(0)
bound = lambda m, sched, **kw: [ddpm.nll_bound(m, xb[i], sched, generator=gen, **kw) for i in groups]
bounds = {"fixed, x0_hat clipped": bound(fx, fx_sched, timesteps=profile.cats_bound_steps, clip_x0=True),
          "fixed, unclipped": bound(fx, fx_sched, timesteps=profile.cats_bound_steps),
          "study (T = 100)": bound(s2, s2_sched)}
se = lambda v: v.std().item() / len(groups) ** 0.5
lik = {"PixelCNN": {"mean": pc.mean().item(), "se": se(torch.stack([pc[i].mean() for i in groups]))}}
for k_, parts in bounds.items():
    per_group = torch.stack([p["total"].mean() for p in parts])
    gap = torch.stack([p["total"].mean() - pc[i].mean() for p, i in zip(parts, groups)])
    lik[k_] = {"mean": per_group.mean().item(), "se": se(per_group), "gap": gap.mean().item(), "gap_se": se(gap),
               **{term: torch.cat([p[term] for p in parts]).mean().item() for term in ("prior", "diffusion", "decoder")}}
print(f"bits/dim on {len(xb)} test cats ({len(groups)} groups; ± standard error over the groups)")
print(f"{'model':<32} {'bits/dim':>16} {'prior L_T':>10} {'KL terms':>9} {'decoder L_0':>12} {'minus PixelCNN':>16}")
print(f"{'PixelCNN (exact)':<32} {lik['PixelCNN']['mean']:>9.3f} ± {lik['PixelCNN']['se']:.3f}")
for k_ in bounds:
    v = lik[k_]
    print(f"{k_ + ' (bound)':<32} {v['mean']:>9.3f} ± {v['se']:.3f} {v['prior']:>10.3f} {v['diffusion']:>9.3f} "
          f"{v['decoder']:>12.3f} {v['gap']:>9.3f} ± {v['gap_se']:.3f}")
assert 0 < lik["PixelCNN"]["mean"] < 8, "a trained PixelCNN must beat 8 bits/dim (a uniform model)"
last = fx_sched.T - 1                                  # always its own stratum (snr_strata), so in every group's terms
last_term = {k_: torch.cat([p["terms"][:, p["t"].index(last)] for p in bounds[k_]]).mean().item()
             for k_ in ("fixed, x0_hat clipped", "fixed, unclipped")}
share = (last_term["fixed, unclipped"] - last_term["fixed, x0_hat clipped"]) / (lik["fixed, unclipped"]["mean"] - lik["fixed, x0_hat clipped"]["mean"])
print("the fixed model's last KL term: " + ", ".join(f"{k_} {v:.3f}" for k_, v in last_term.items()) +
      f" bits/dim: {share:.0%} of the difference between the two bounds")
glue("bound_steps", profile.cats_bound_steps), glue("bound_n", len(xb)), glue("last_share", share)
glue("last_term_raw", last_term["fixed, unclipped"]), glue("last_term_clip", last_term["fixed, x0_hat clipped"])
glue("bound_clip", lik["fixed, x0_hat clipped"]["mean"]), glue("bound_raw", lik["fixed, unclipped"]["mean"]);'''

C["d54997ca"] = '''fig, ax = plt.subplots(figsize=(6.5, 2.8))
for k_, sched, marker, c in (("study (T = 100)", s2_sched, ".-", color("study")),
                             ("fixed, unclipped", fx_sched, ".", color("cosine")), ("fixed, x0_hat clipped", fx_sched, "x", color("cosine"))):
    terms = bounds[k_][0]
    ax.semilogy(sched.log_snr[torch.tensor(terms["t"])].cpu(), terms["terms"].mean(0), marker, color=c, label=k_, alpha=0.8)
ax.set_xlabel("log SNR of the step (noisier to the left)"), ax.set_ylabel("KL term, bits/dim"), ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7), ax.set_title("where the bound's bits are: the least noisy steps, and one degenerate last step", fontsize=9);'''

C["f2c3a735"] = '''Unclipped, the fixed model's last step alone adds {glue:text}`last_term_raw:.2f` bits/dim to its bound; with
$\\hat x_0$ clipped it adds {glue:text}`last_term_clip:.2f`, and the whole bound goes from {glue:text}`bound_raw:.3f`
to {glue:text}`bound_clip:.3f` bits/dim, {glue:text}`last_share:.0%` of the difference from that one step. It is
degenerate: there the cosine schedule clips $\\beta$ to 0.999, so $\\bar\\alpha$ falls a thousandfold in one step, and
the KL term weighs the network's small error in $\\hat\\epsilon$ through the posterior mean $\\tilde\\mu_T$, amplified by
$\\beta_T / (\\sqrt{\\alpha_T} \\sqrt{1 - \\bar\\alpha_T}) \\approx 0.999 / \\sqrt{0.001} \\approx 32$, that is by about 1,000
in the squared error the term measures. At that step $\\hat x_0$ is hundreds of pixel ranges wide (exercise 6.1);
clipped, it is a plausible image, and the step costs almost nothing. The same clip that rescues the sampler rescues
the bound. (The bound is that of the full 1,000-step ancestral chain with the clip; the FIDs above come from the
50-step chain, a different but related model.)'''
