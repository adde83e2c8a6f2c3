C = {}
C["25c5287b"] = '''## 5. The study's table, with numbers

Each row holds the study's words, what we measured, and a verdict computed from the measurements by rules fixed
before measuring:

- **Gates first.** A family verdict needs models that work: each family's representative sampler must make cats at
  all, neither collapsed nor "not cats" (FID below half that of noise and diversity above half the real cats';
  `ardiff.gates.makes_digits`, written for digits and applied to cats), or its rows read "not judged".
- **Confirmatory claims** (the matched start, the fixes against both study rows, quality on each measure, and the
  likelihood difference) are decided together, with Holm's correction at a family-wise $\\alpha = 0.05$
  (`Ledger.confirm`).
- **Speed at equal quality.** "Equal quality" is a non-inferiority test with a margin: a diffusion sampler matches the
  PixelCNN when its FID is below the PixelCNN's plus a quarter of the PixelCNN's distance to the floor
  ({glue:text}`speed_margin:.1f` here), at a one-sided $\\alpha = 0.05$ divided by the number of candidates. The cheapest
  match (fewest network evaluations) is timed against the PixelCNN in both regimes; a regime shows a difference when
  the two interquartile ranges do not overlap (`ardiff.timing.slower_claim`).
- **Quality on two measures.** When FID and the spectral distance disagree, or one finds a difference and the other
  none, the verdict is "mixed" and says which measure favours which (`ardiff.claims.measures_verdict`). The diffusion
  side is its best sampler, which favours it a little: the lowest of several FIDs is biased low.'''

C["ab75758c"] = '''from ardiff.claims import Difference, measures_verdict

pc_row = ledger.rows["PixelCNN"]
fam_gates = [gates.makes_digits(f"{k_} makes cats", ledger.rows[k_]["fid"], ledger.noise_fid, ledger.rows[k_]["diversity"])
             for k_ in (best_diff, "PixelCNN")]
claims = {"the matched start improves the study's model": ("study, matched start", "study (T = 100)", "fid", True),
          "the fixes improve on the study": (best_fixed, "study (T = 100)", "fid", True),
          "the fixes improve on the study with the matched start": (best_fixed, "study, matched start", "fid", True),
          "quality, FID": (best_diff, "PixelCNN", "fid", True),
          "quality, spectral distance": (best_diff, "PixelCNN", "spectral", True)}
fb = lik["fixed, x0_hat clipped"]
lik_claim = "likelihood: the DDPM's clipped bound against the PixelCNN's exact value"
confirmed = ledger.confirm(claims, extra={lik_claim: (Difference(fb["gap"], fb["gap_se"]), True)})
rows_c = ledger.claim_rows(claims, confirmed, fmt={"fid": ".1f", "spectral": ".3f"}, measures={"spectral": "spectral distance"})
rows_c.append((lik_claim, f"bits/dim, bound − exact = {fb['gap']:.3f} ± {fb['gap_se']:.3f} (standard error)",
               {"better": "the DDPM's bound is lower", "worse": "the PixelCNN's exact value is lower",
                "tie": "no difference shown"}[confirmed[lik_claim]]))
display(Markdown(gates.gates_table(fam_gates)))
display(Markdown(claims_table(rows_c, ledger.note())))
q_word, q_said = measures_verdict({"FID": confirmed["quality, FID"],
                                   "spectral distance": confirmed["quality, spectral distance"]}, "diffusion", "the PixelCNN")
glue("start_verdict", {"better": "improves the FID", "worse": "makes the FID worse", "tie": "shows no difference in FID"}.get(
    confirmed["the matched start improves the study's model"], "is not judged"))'''

C["57a8b597"] = '''margin = 0.25 * (pc_row["fid"] - fid.floor)
cands = sorted(ledger.scored(list(fixed_samplers)), key=lambda k_: ledger.rows[k_]["evals"])
matched = ledger.as_good_as("PixelCNN", cands, margin=margin, alpha=0.05 / max(1, len(cands)))
match = min(matched, key=lambda k_: ledger.rows[k_]["evals"]) if matched else None
if match:
    sp_word, sp_said = timing.slower_claim(speed["PixelCNN"], speed[match], names=("the PixelCNN", match))
    sp_measured = (f"at equal quality (FID within {margin:.1f} of the PixelCNN's): {match}, {evals[match]} evaluations, "
                   f"against the PixelCNN's 3,072 sequential steps; {sp_said}")
    sp_verdict = f"{sp_word}: " + {"supported": "the PixelCNN is slower in both regimes", "contradicted":
                                   "the PixelCNN is faster in both regimes", "mixed": "the regimes differ",
                                   "not supported": "level in both regimes"}[sp_word]
else:
    sp_measured = f"no diffusion sampler is within {margin:.1f} of the PixelCNN's FID"
    sp_verdict = "not judged at equal quality: no diffusion sampler matches the PixelCNN's FID within the margin"
fb_raw = lik["fixed, unclipped"]
lik_words = {"better": "the DDPM's clipped bound alone is below the PixelCNN's exact value, so the DDPM is the better density model of the two",
             "worse": "the DDPM's bound is above the PixelCNN's exact value, so which is the better density model is not decided",
             "tie": "the bound and the exact value are within the spread"}.get(confirmed[lik_claim], confirmed[lik_claim])
rows = [("sampling speed", "very slow", "moderate", sp_measured, gates.judged(lambda: sp_verdict, *fam_gates)),
        ("image quality", "medium", "high",
         f"FID: {best_diff} {ledger.rows[best_diff]['fid']:.1f}, PixelCNN {pc_row['fid']:.1f} ({ledger.difference(best_diff, 'PixelCNN'):.1f}); "
         f"spectral distance {ledger.rows[best_diff]['spectral']:.3f} vs {pc_row['spectral']:.3f}", gates.judged(lambda: q_said, *fam_gates)),
        ("training stability", "sensitive", "very stable",
         f"progress {ar['progress']:.2f} (PixelCNN) and {dm['progress']:.2f} (DDPM) of the way to converged; diverged at lr x4, x16: "
         f"{sv['diverged']['ar']} and {sv['diverged']['dm']} of 2; seed sd / distance left {ar['seed_rel_sd']:.3f} vs {dm['seed_rel_sd']:.3f}", sv["words"]),
        ("likelihood", "exact", "approximate",
         f"PixelCNN exact {lik['PixelCNN']['mean']:.3f} bits/dim; DDPM bound {fb['mean']:.3f} ± {fb['se']:.3f} with x0_hat clipped "
         f"({fb_raw['mean']:.3f} unclipped), same {len(xb)} test cats", f"supported: an exact value against a bound; {lik_words}")]
display(Markdown(claims_table(rows, f"Profile `{profile.name}` on {device.type}; FID-CIFAR at n = {n}; speed in both regimes "
                              f"(latency batch 1, throughput batch {B}); ± = bootstrap sd of the difference or standard error.",
                              header=("aspect", "study: autoregressive", "study: diffusion", "measured here", "verdict"))))
for key, r in zip(("speed", "quality", "stability", "likelihood"), rows):
    glue(f"{key}_verdict", r[4])
glue("speed_margin", margin), glue("pcnn_fid", pc_row["fid"]), glue("best_diff", best_diff), glue("pcnn_bpd", lik["PixelCNN"]["mean"])
glue("best_diff_fid", ledger.rows[best_diff]["fid"]), glue("study_fid", ledger.rows["study (T = 100)"]["fid"])
assert fb["mean"] > 0 and fb_raw["mean"] > 0 and all(g.passed in (True, False) for g in fam_gates)'''

C["render-time"] = '''glue("render_minutes", (time.perf_counter() - t_lesson) / 60);   # this run's time so far, quoted at the top'''

C["f75aa8d2"] = '''## What we learned

All FIDs are FID-CIFAR at n = {glue:text}`n` (real floor {glue:text}`floor:.1f`, noise {glue:text}`noise_fid:.0f`).

- **The study's model** scores {glue:text}`study_fid:.1f`. Its schedule never trains the network on pure noise
  ($\\bar\\alpha_T =$ {glue:text}`abar_T:.3f`); starting its sampler from the matched Gaussian instead
  {glue:md}`start_verdict`.
- **The book's fixes** (cosine schedule over 1,000 steps, warm-up to a higher learning rate, EMA, lesson 02's U-Net)
  in the same 45 minutes: {glue:md}`best_fixed` (FID {glue:text}`best_fixed_fid:.1f`) is {glue:md}`fix_verdict` than
  the study's model as published (difference {glue:md}`fix_diff`), and {glue:md}`rest_verdict` than the study's
  network given the matched start (difference {glue:md}`rest_diff`): that is what the fixes add beyond the start.
- **Sampling speed** ("very slow" vs "moderate"): {glue:md}`speed_verdict`. Speed is quoted per regime: one image at
  a time (batch 1) and in bulk (batch {glue:text}`time_batch`).
- **Image quality** ("medium" vs "high"): {glue:md}`quality_verdict`. The PixelCNN scores {glue:text}`pcnn_fid:.1f`;
  the best diffusion sampler, {glue:md}`best_diff`, {glue:text}`best_diff_fid:.1f`.
- **Training stability** ("sensitive" vs "very stable"): {glue:md}`stability_verdict`. At their budgets the seeds
  went {glue:text}`prog_dm:.0%` (DDPM) and {glue:text}`prog_ar:.0%` (PixelCNN) of the way from untrained to converged.
- **Likelihood** ("exact" vs "approximate"): {glue:md}`likelihood_verdict`. The PixelCNN's {glue:text}`pcnn_bpd:.3f`
  bits/dim is exact; the fixed DDPM's bound is {glue:text}`bound_clip:.3f` with $\\hat x_0$ clipped and
  {glue:text}`bound_raw:.3f` without, the difference carried by one degenerate last step.

These are small models on a small CPU budget: the verdicts are about them, measured, not about the families at any
scale. **Next:** lesson 07 places one model between the two families, generating block by block.'''
