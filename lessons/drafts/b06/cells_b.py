C = {}
C["9889fa89"] = '''### Sampling speed

A speed claim names its regime (`ardiff.timing`): **latency** is the wait for one image (batch 1), **throughput** the
cost per image in bulk (a batch of {glue:text}`time_batch`). Every row is timed in both regimes, each as the median of
{glue:text}`time_repeats` timed calls (after an untimed one), with the interquartile range of the calls as its spread.

Timing whole chains that often would take longer than the rest of the lesson, so each diffusion sampler is timed on
{glue:text}`time_steps` of its steps and the time scaled to its chain: every step runs the same network on the same
batch, so every step costs the same. The PixelCNN is timed on its first {glue:text}`pcnn_rows` of 32 rows and scaled
by 32: every row runs the same stacks, and the first rows, with less context above them, are if anything cheaper, so
the estimate errs in the PixelCNN's favour. The naive PixelCNN sampler (the whole network for every sub-pixel) is
timed at batch 1 only. Costs are also counted in network FLOPs per image, which do not depend on the machine
(multiply-adds counted as 2, by `ardiff.metrics.flops`). The fixed DDPM is timed with all 1,000 of its ancestral
steps too, the way the DDPM paper samples.'''

C["22d7ab1b"] = '''B, k, rows_t = profile.cats_time_batch, profile.cats_time_steps, profile.cats_pcnn_time_rows
g = lambda: torch.Generator(device).manual_seed(1)

def steps_of(model, sched, how):            # fn(b): k steps of the sampler on b images
    return lambda b: samplers.sample(model, sched, (b, 3, 32, 32), generator=g(), **{**how, "steps": k})

def rows_of(fast):                          # fn(b): the PixelCNN's first rows_t rows of b images
    def fn(b):
        blank = torch.zeros(b, 3, 32, 32, dtype=torch.long, device=device)
        keep = torch.ones_like(blank, dtype=torch.bool)
        keep[:, :, :rows_t] = False
        return pcnn.sample(x_init=blank, mask=keep, generator=g(), fast=fast)
    return fn

both = timing.REGIMES
jobs = {name: (steps_of(fx, fx_sched, how), how["steps"] / k, both)
        for name, how in {"fixed, DDPM 1000": dict(method="ddpm", steps=1000, **same), **fixed_samplers}.items()}
jobs["study (T = 100)"] = (steps_of(s2, s2_sched, dict(method="ddpm", steps=100)), 100 / k, both)
jobs["PixelCNN"] = (rows_of(True), 32 / rows_t, both)
jobs["PixelCNN, naive"] = (rows_of(False), 32 / rows_t, ("latency",))
speed = {}
for name, (fn, scale, regimes) in jobs.items():
    t = timing.seconds_per_image(fn, batch_sizes=(B,), memory_cap_gb=32.0, repeats=profile.cats_time_repeats,
                                 device=device, regimes=regimes)
    speed[name] = {r: v.scaled(scale, "every step (row) costs the same") for r, v in t.items()}
glue("time_batch", B), glue("time_repeats", profile.cats_time_repeats), glue("time_steps", k), glue("pcnn_rows", rows_t);'''

C["speed-table"] = '''one, t0 = torch.zeros(1, 3, 32, 32, device=device), torch.zeros(1, dtype=torch.long, device=device)
f_s2, f_fx, f_pcnn = flops(s2, one, t0), flops(fx, one, t0), flops(pcnn.net, one)
f_window = flops(pcnn.sample, 1, (3, 32, 32), generator=torch.Generator(device).manual_seed(0))
evals = {"fixed, DDPM 1000": 1000, **{k_: h["steps"] for k_, h in fixed_samplers.items()}, "study (T = 100)": 100,
         "PixelCNN": 3072, "PixelCNN, naive": 3072}
gflop = {k_: e * (f_s2 if k_.startswith("study") else f_fx) / 1e9 for k_, e in evals.items()}
gflop.update({"PixelCNN": f_window / 1e9, "PixelCNN, naive": 3072 * f_pcnn / 1e9})
print(f"{'sampler':<24} {'evals':>6} {'GFLOP/image':>12}   latency, s/image (IQR)     throughput at batch {B}, s/image (IQR)")
for name, t in speed.items():
    cells = [f"{t[r].seconds_per_image:>8.3f} ({t[r].iqr[0]:.3f}-{t[r].iqr[1]:.3f})" if r in t else f"{'-':>8}"
             for r in timing.REGIMES]
    print(f"{name:<24} {evals[name]:>6} {gflop[name]:>12.2f}   {cells[0]:<26} {cells[1]}")
lat, tp = (lambda k_: speed[k_]["latency"].seconds_per_image), (lambda k_: speed[k_]["throughput"].seconds_per_image)
naive_x = speed["PixelCNN, naive"]["latency"].seconds_per_image / lat("PixelCNN")
flop_x, time_x = gflop["fixed, DDPM 50"] / gflop["PixelCNN"], tp("PixelCNN") / tp("fixed, DDPM 50")
assert gflop["PixelCNN, naive"] > gflop["PixelCNN"], "the windowed sampler computes less than the naive one"
assert flop_x > 1, "the prose says the windowed PixelCNN needs fewer FLOPs than DDPM 50"     # counted, not timed
glue("naive_x", naive_x), glue("flop_x", flop_x), glue("time_x", time_x if time_x > 1 else 1 / time_x)
glue("time_words", "*longer*" if time_x > 1 else "*less* time, as the FLOPs predict");'''

C["e1df7ae2"] = '''In bulk, the windowed PixelCNN needs {glue:text}`flop_x:.1f` times *fewer* FLOPs per image than the fixed DDPM's 50
ancestral steps, and takes {glue:text}`time_x:.1f` times {glue:md}`time_words`. FLOPs do not predict the wall time:
the PixelCNN's 3,072 sequential steps each run a small slice of the network on one sub-pixel, which keeps the
processor far below its peak, while each diffusion step is one pass of the whole network over the whole batch,
whose large convolutions keep it busy. The windowed sampler is {glue:text}`naive_x:.0f` times faster than the naive
one at batch 1. Which of these rows to compare for the speed claim needs the quality of each: section 5 picks the
cheapest diffusion sampler whose quality matches the PixelCNN's.'''

C["5fe36fcd"] = '''### Image quality

FID-CIFAR and the spectral distance of {glue:text}`n` samples of every model, against as many test cats, with the
bootstrap spread of each (samples and test cats resampled together). Quality is quoted as **FID minus the real
floor**, the part a model could still remove, with its bootstrap sd, beside the ratio FID / floor.'''

C["152c603d"] = '''ledger.bootstrap(draws=profile.fid_draws)
names = list(ledger.rows)
spec_draws = spec.bootstrap(*[ledger.samples[k_] for k_ in names], draws=profile.fid_draws)
ledger.add_measure("spectral", {k_: spec(ledger.samples[k_]) for k_ in names}, dict(zip(names, spec_draws.T)))
print(ledger.table(extra=("spectral",)))
print(f"spectral distance: real floor {spec_floor:.3f}, noise {spec_noise:.2f} decades\\n")
print(f"{'':<28} {'FID - floor':>16} {'FID / floor':>12}")
for k_ in names:
    r = ledger.rows[k_]
    print(f"{k_:<28} {r['fid'] - fid.floor:>8.1f} ± {np.std(ledger.draws['fid'][k_]):>5.1f} {r['fid'] / fid.floor:>11.2f}x")'''

C["7e93275c"] = '''fig, ax = plt.subplots(figsize=(7, 3.4))
f_real, p_real = rapsd(x_test[:n])
ax.loglog(f_real, p_real, "-", color=color("real"), lw=2, label="test cats")
seen = {}
for k_ in names:                                   # one colour per method; repeats get the next line style
    c = color(k_)
    seen[c] = seen.get(c, -1) + 1
    ax.loglog(*rapsd(ledger.samples[k_]), color=c, ls=["-", "--", ":", "-."][seen[c] % 4], label=k_, lw=1)
ax.set_xlabel("spatial frequency (cycles per pixel)"), ax.set_ylabel("power"), ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7, loc="lower left", ncol=2), ax.set_title("radially averaged power spectra", fontsize=9)
shown = ["study (T = 100)", "study, matched start", *fixed_samplers, "PixelCNN"]
fig, axes = plt.subplots(len(shown) + 1, 1, figsize=(10, 0.75 * (len(shown) + 1)))
for ax, (label, imgs) in zip(axes, [("test cats", x_test[:16]), *[(k_, ledger.samples[k_][:16]) for k_ in shown]]):
    show_images(imgs, nrow=16, ax=ax)
    ax.text(-0.01, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize=8)
fig.subplots_adjust(left=0.22, hspace=0.08);'''

C["dcffb97f"] = '''diffusion = [k_ for k_ in names if ledger.rows[k_]["family"] == "diffusion"]
best_diff = ledger.best(diffusion) if ledger.scored(diffusion) else min(diffusion, key=lambda k_: ledger.rows[k_]["fid"])
q_diff, s_diff = ledger.difference(best_diff, "PixelCNN"), ledger.difference(best_diff, "PixelCNN", "spectral")
print(f"best diffusion ({best_diff}) - PixelCNN: FID {q_diff:.1f}, spectral distance {s_diff:.3f}")'''
