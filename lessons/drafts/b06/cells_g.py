C = {}
C["25c5287b"] = '''## 5. The study's table, with numbers

Each row holds the study's words, what we measured, and a verdict computed from the measurements by rules fixed
before measuring:

- **Representatives.** The diffusion side is the fixed model under its card's protocol ({glue:md}`rep_diff`), chosen
  before measuring: not its lowest FID, which would be biased low, and not the study's matched start, which uses
  the training cats' statistics.
- **Gates first.** A family verdict needs models that work: each side's sampler must make cats at all, neither
  collapsed nor "not cats" (FID below half that of noise and diversity above half the real cats';
  `ardiff.gates.makes_digits`, written for digits and applied to cats), or its rows read "not judged". It is a weak
  gate: neither family comes near the floor at this budget (section 4's ratios), so the verdicts compare two small,
  working but imperfect models, and say nothing about the families at their best.
- **Confirmatory claims** (the matched start, the fixes against both study rows, quality on each measure, and the
  likelihood difference) are decided together, with Holm's correction at a family-wise $\\alpha = 0.05$
  (`Ledger.confirm`).
- **Speed at equal quality.** A diffusion sampler counts as matching the PixelCNN when it is no worse by more than
  a margin on *both* measures: on FID by a quarter of the PixelCNN's distance to the floor ({glue:text}`speed_margin:.1f`
  here), on the spectral distance by a quarter of its distance to that floor, each a non-inferiority test at a
  one-sided $\\alpha = 0.05$ divided by the number of candidates. The cheapest match (fewest network evaluations) and the
  PixelCNN are then timed again side by side, their repeats interleaved (`ardiff.timing.compare_speed`), in both
  regimes; a regime shows a difference when the two interquartile ranges do not overlap (`ardiff.timing.slower_claim`).
- **Quality on two measures.** When FID and the spectral distance disagree, or one finds a difference and the other
  none, the verdict is "mixed" and says which measure favours which (`ardiff.claims.measures_verdict`).'''

C["ab75758c"] = '''from ardiff.claims import Difference, measures_verdict

pc_row = ledger.rows["PixelCNN"]
claims = {"the matched start improves the study's model": ("study, matched start", "study (T = 100)", "fid", True),
          "the fixes improve on the study": (rep, "study (T = 100)", "fid", True),
          "the fixes improve on the study with the matched start": (rep, "study, matched start", "fid", True),
          "quality, FID": (rep, "PixelCNN", "fid", True),
          "quality, spectral distance": (rep, "PixelCNN", "spectral", True)}
fb = lik["fixed, x0_hat clipped"]
lik_claim = "likelihood: the DDPM's clipped bound against the PixelCNN's exact value"
confirmed = ledger.confirm(claims, extra={lik_claim: (Difference(fb["gap"], fb["gap_se"]), True)})
rows_c = ledger.claim_rows(claims, confirmed, fmt={"fid": ".1f", "spectral": ".3f"}, measures={"spectral": "spectral distance"})
rows_c.append((lik_claim, f"bits/dim, bound − exact = {fb['gap']:.3f} ± {fb['gap_se']:.3f} (standard error)",
               {"better": "the DDPM's bound is lower", "worse": "the PixelCNN's exact value is lower",
                "tie": "no difference shown"}[confirmed[lik_claim]]))
display(Markdown(claims_table(rows_c, ledger.note())))
q_word, q_said = measures_verdict({"FID": confirmed["quality, FID"],
                                   "spectral distance": confirmed["quality, spectral distance"]}, "diffusion", "the PixelCNN")
words = {"better": "better", "worse": "worse", "tie": "not shown to be better"}
for key, claim, (a, b) in (("start", "the matched start improves the study's model", ("study, matched start", "study (T = 100)")),
                           ("fix", "the fixes improve on the study", (rep, "study (T = 100)")),
                           ("rest", "the fixes improve on the study with the matched start", (rep, "study, matched start"))):
    glue(f"{key}_diff", f"{ledger.difference(a, b):.1f}"), glue(f"{key}_verdict", words.get(confirmed[claim], confirmed[claim]))
glue("start_verdict", {"better": "improves the FID", "worse": "makes the FID worse",
                       "tie": "shows no difference in FID"}.get(confirmed["the matched start improves the study's model"], "is not judged"));'''

C["57a8b597"] = '''margin, s_margin = 0.25 * (pc_row["fid"] - ledger.rows[real]["fid"]), 0.25 * (pc_row["spectral"] - ledger.rows[real]["spectral"])
cands = sorted(ledger.scored([*fixed_samplers, "study (T = 100)"]), key=lambda k_: ledger.rows[k_]["evals"])
a_ = 0.05 / max(1, len(cands))
matched = [k_ for k_ in cands if ledger.difference(k_, "PixelCNN").not_worse(margin, True, a_)
           and ledger.difference(k_, "PixelCNN", "spectral").not_worse(max(s_margin, 1e-9), True, a_)]
match = matched[0] if matched else None                # the fewest network evaluations
sp_gates = [gates.makes_digits(f"{k_} makes cats", ledger.rows[k_]["fid"], ledger.noise_fid, ledger.rows[k_]["diversity"])
            for k_ in (match or rep, "PixelCNN")]
if match:
    pair = timing.compare_speed(jobs["PixelCNN"][0], jobs[match][0], names=("PixelCNN", match), batch_sizes=(B,),
                                memory_cap_gb=32.0, repeats=profile.cats_time_repeats, device=device)
    why = "every step (row) costs the same"
    t_pc = {r: v.scaled(jobs["PixelCNN"][1], why) for r, v in pair.a.items()}
    t_m = {r: v.scaled(jobs[match][1], why) for r, v in pair.b.items()}
    sp_word, sp_said = timing.slower_claim(t_pc, t_m, names=("the PixelCNN", match))
    sp_measured = (f"at equal quality (no worse by more than {margin:.1f} in FID and {s_margin:.3f} in spectral distance): "
                   f"{match}, {evals[match]} evaluations, against the PixelCNN's 3,072 sequential steps, timed side by side; {sp_said}")
    sp_verdict = f"{sp_word}: " + {"supported": "the PixelCNN is slower in both regimes", "contradicted":
                                   "the PixelCNN is faster in both regimes", "mixed": "the regimes differ",
                                   "not supported": "level in both regimes"}[sp_word]
else:
    sp_measured = f"no diffusion sampler is no worse than the PixelCNN by the margins ({margin:.1f} FID, {s_margin:.3f} spectral)"
    sp_verdict = "not judged at equal quality: no diffusion sampler matches the PixelCNN within the margins"
q_gates = [gates.makes_digits(f"{k_} makes cats", ledger.rows[k_]["fid"], ledger.noise_fid, ledger.rows[k_]["diversity"])
           for k_ in (rep, "PixelCNN")]
display(Markdown(gates.gates_table({g.name: g for g in [*q_gates, *sp_gates]}.values())))
glue("speed_margin", margin), glue("speed_match", str(match));'''

C["table-rows"] = '''fb_raw = lik["fixed, unclipped"]
lik_words = {"better": "the DDPM's clipped bound alone is below the PixelCNN's exact value, so the DDPM is the better density model of the two",
             "worse": "the DDPM's bound is above the PixelCNN's exact value, so which is the better density model is not decided",
             "tie": "the bound and the exact value are within the spread"}.get(confirmed[lik_claim], confirmed[lik_claim])
rows = [("sampling speed", "very slow", "moderate", sp_measured, gates.judged(lambda: sp_verdict, *sp_gates)),
        ("image quality", "medium", "high",
         f"FID: {rep} {ledger.rows[rep]['fid']:.1f}, PixelCNN {pc_row['fid']:.1f} ({ledger.difference(rep, 'PixelCNN'):.1f}); "
         f"spectral distance {ledger.rows[rep]['spectral']:.3f} vs {pc_row['spectral']:.3f} "
         f"({ledger.difference(rep, 'PixelCNN', 'spectral'):.3f})", gates.judged(lambda: q_said, *q_gates)),
        ("training stability", "sensitive", "very stable",
         f"progress {ar['progress']:.2f} (PixelCNN) and {dm['progress']:.2f} (DDPM) of the way to converged; seed sd / distance "
         f"left {ar['seed_rel_sd']:.3f} vs {dm['seed_rel_sd']:.3f}", sv["words"]),
        ("likelihood", "exact", "approximate",
         f"PixelCNN exact {lik['PixelCNN']['mean']:.3f} bits/dim; DDPM bound {fb['mean']:.3f} ± {fb['se']:.3f} with x0_hat clipped "
         f"({fb_raw['mean']:.3f} unclipped), same {len(xb)} test cats", f"supported: an exact value against a bound; {lik_words}")]
display(Markdown(claims_table(rows, f"Profile `{profile.name}` on {device.type}; FID-CIFAR at n = {n}; speed in both regimes "
                              f"(latency batch 1, throughput batch {B}); ± = bootstrap sd of the difference or standard error.",
                              header=("aspect", "study: autoregressive", "study: diffusion", "measured here", "verdict"))))
for key, r in zip(("speed", "quality", "stability", "likelihood"), rows):
    glue(f"{key}_verdict", r[4])
glue("pcnn_fid", pc_row["fid"]), glue("pcnn_bpd", lik["PixelCNN"]["mean"]), glue("study_fid", ledger.rows["study (T = 100)"]["fid"])
assert fb["mean"] > 0 and fb_raw["mean"] > 0 and confirmed[lik_claim] in ("better", "worse", "tie")'''

C["f75aa8d2"] = '''## What we learned

All FIDs are FID-CIFAR at n = {glue:text}`n` (real floor {glue:text}`floor:.1f`, noise {glue:text}`noise_fid:.0f`).

- **The study's model** scores {glue:text}`study_fid:.1f`. Its schedule never trains the network on pure noise
  ($\\bar\\alpha_T =$ {glue:text}`abar_T:.3f`); starting its sampler from the matched Gaussian instead
  {glue:md}`start_verdict` (difference {glue:md}`start_diff`).
- **The book's fixes** (cosine schedule over 1,000 steps, warm-up to a higher learning rate, EMA, lesson 02's U-Net,
  and a clipped sampler) in the same nominal 45 minutes: {glue:md}`rep_diff` (FID {glue:text}`rep_fid:.1f`) is
  {glue:md}`fix_verdict` than the study's model as published (difference {glue:md}`fix_diff`), and
  {glue:md}`rest_verdict` than the study's network given the matched start (difference {glue:md}`rest_diff`): that is
  what the fixes add beyond the start.
- **Sampling speed** ("very slow" vs "moderate"): {glue:md}`speed_verdict`. Speed is quoted per regime: one image at
  a time (batch 1) and in bulk (batch {glue:text}`time_batch`).
- **Image quality** ("medium" vs "high"): {glue:md}`quality_verdict`. The PixelCNN scores {glue:text}`pcnn_fid:.1f`.
- **Training stability** ("sensitive" vs "very stable"): {glue:md}`stability_verdict`. At their budgets the seeds
  went {glue:text}`prog_dm:.0%` (DDPM) and {glue:text}`prog_ar:.0%` (PixelCNN) of the way from untrained to converged.
- **Likelihood** ("exact" vs "approximate"): {glue:md}`likelihood_verdict`. The PixelCNN's {glue:text}`pcnn_bpd:.3f`
  bits/dim is exact; the fixed DDPM's bound is {glue:text}`bound_clip:.3f` with $\\hat x_0$ clipped and
  {glue:text}`bound_raw:.3f` without, {glue:text}`last_share:.0%` of the difference from one degenerate last step.

These are small models on a small CPU budget: the verdicts are about them, measured, not about the families at any
scale. **Next:** lesson 07 places one model between the two families, generating block by block.'''
