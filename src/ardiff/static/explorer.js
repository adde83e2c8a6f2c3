// The kernel-free noise-schedule explorer of ardiff (see ardiff/widgets.py).
// The schedule maths mirrors ardiff/schedules.py in float64 (a test compares the two with node);
// the images are noised as x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, with x0 and eps sent by Python.

function ardiffBetasFromAlphaBar(alphaBar, T, maxBeta) {
  const betas = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    betas[t] = Math.min(1 - alphaBar((t + 1) / T) / alphaBar(t / T), maxBeta);
  }
  return betas;
}

// Betas of a schedule: kind is "linear", "cosine" or "sigmoid"; p holds its parameters.
function ardiffBetas(kind, T, p) {
  if (kind === "linear") {
    const b = new Float64Array(T);
    for (let t = 0; t < T; t++) b[t] = T === 1 ? p.beta_start : p.beta_start + (p.beta_end - p.beta_start) * t / (T - 1);
    return b;
  }
  if (kind === "cosine") {
    const s = p.s;
    return ardiffBetasFromAlphaBar(u => Math.cos((u + s) / (1 + s) * Math.PI / 2) ** 2, T, p.max_beta);
  }
  if (kind === "sigmoid") {
    const sig = z => 1 / (1 + Math.exp(-z));
    const vs = sig(p.start / p.tau), ve = sig(p.end / p.tau);
    return ardiffBetasFromAlphaBar(u => (ve - sig((u * (p.end - p.start) + p.start) / p.tau)) / (ve - vs), T, p.max_beta);
  }
  throw new Error("unknown schedule " + kind);
}

// alphas_cumprod[t] = prod_{s <= t} (1 - beta_s), accumulated in log space as schedules.py does.
function ardiffAlphasCumprod(betas) {
  const a = new Float64Array(betas.length);
  let logA = 0;
  for (let t = 0; t < betas.length; t++) { logA += Math.log1p(-betas[t]); a[t] = Math.exp(logA); }
  return a;
}

function ardiffDecode(b64, signed) {
  const raw = atob(b64), out = signed ? new Int8Array(raw.length) : new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function ardiffExplorer(root, data) {
  const $ = sel => root.querySelector(sel);
  const images = data.images.map(im => ({
    ...im, x0: ardiffDecode(im.x0, false), eps: ardiffDecode(im.eps, true),
  }));
  const ref = ardiffAlphasCumprod(ardiffBetas("linear", 1000, {beta_start: 1e-4, beta_end: 0.02}));

  function params() {
    const v = name => parseFloat($(`[data-p="${name}"]`).value);
    return {
      beta_start: 10 ** v("log_beta_start"), beta_end: 10 ** v("log_beta_end"),
      s: v("s"), start: v("start"), end: v("end"), tau: v("tau"), max_beta: 0.999,
    };
  }

  function drawCurve(canvas, values, T, t, lo, hi, label, refValues) {
    const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
    const L = 44, R = 8, Tp = 18, B = 26;
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px sans-serif"; ctx.fillStyle = "#333"; ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1;
    const X = u => L + u * (W - L - R), Y = v => Tp + (1 - (Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (H - Tp - B);
    for (let k = 0; k <= 4; k++) {
      const v = lo + (hi - lo) * k / 4;
      ctx.beginPath(); ctx.moveTo(L, Y(v)); ctx.lineTo(W - R, Y(v)); ctx.stroke();
      ctx.fillText(String(Math.round(v * 100) / 100), 4, Y(v) + 4);
    }
    ctx.fillText(label, L, 12);
    ctx.fillText("0", L - 3, H - 8); ctx.fillText("T-1", W - R - 18, H - 8); ctx.fillText("t", (L + W) / 2, H - 8);
    const line = (vals, color, dash) => {
      ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 2; ctx.beginPath();
      const n = vals.length;
      for (let i = 0; i < n; i++) { const x = X(n === 1 ? 0 : i / (n - 1)), y = Y(vals[i]); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); }
      ctx.stroke(); ctx.setLineDash([]);
    };
    if (refValues) line(refValues, "#bbb", [4, 3]);
    line(values, "#1f77b4", []);
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 1.5;
    const xt = X(T === 1 ? 0 : t / (T - 1));
    ctx.beginPath(); ctx.moveTo(xt, Tp); ctx.lineTo(xt, H - B); ctx.stroke();
  }

  function drawImage(canvas, im, abar) {
    const ctx = canvas.getContext("2d"), n = im.w * im.h, c = im.c;
    const img = ctx.createImageData(im.w, im.h), sa = Math.sqrt(abar), sn = Math.sqrt(1 - abar);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) {
        const j = c === 1 ? i : k * n + i;  // planar CHW
        const x0 = im.x0[j] / 127.5 - 1, eps = im.eps[j] / data.eps_scale;
        const xt = sa * x0 + sn * eps;
        img.data[4 * i + k] = Math.max(0, Math.min(255, Math.round((xt + 1) * 127.5)));
      }
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function update() {
    const kind = $("[data-p=kind]").value, T = parseInt($("[data-p=T]").value);
    root.querySelectorAll("[data-for]").forEach(el => { el.style.display = el.dataset.for === kind ? "" : "none"; });
    const tSlider = $("[data-p=t]");
    const frac = parseFloat(tSlider.value) / parseFloat(tSlider.max || 1);
    tSlider.max = T - 1;
    if (root.dataset.lastT !== String(T)) { tSlider.value = Math.round(frac * (T - 1)); root.dataset.lastT = T; }
    const t = parseInt(tSlider.value);
    const p = params(), betas = ardiffBetas(kind, T, p), abar = ardiffAlphasCumprod(betas);
    const logSnr = Array.from(abar, a => Math.log(a) - Math.log1p(-a));
    const refLog = Array.from(ref, a => Math.log(a) - Math.log1p(-a));
    root.querySelectorAll("[data-v]").forEach(el => {
      const name = el.dataset.v, input = $(`[data-p="${name}"]`);
      el.textContent = name.startsWith("log_") ? (10 ** parseFloat(input.value)).toExponential(1) : input.value;
    });
    $("[data-out=readout]").textContent =
      `t = ${t}  ·  β_t = ${betas[t].toExponential(2)}  ·  ᾱ_t = ${abar[t].toFixed(4)}  ·  ` +
      `√ᾱ_t = ${Math.sqrt(abar[t]).toFixed(3)}  ·  log SNR_t = ${logSnr[t].toFixed(2)}`;
    drawCurve($("[data-out=abar]"), abar, T, t, 0, 1, "ᾱ_t   (dashed: DDPM linear, T = 1000)", ref);
    drawCurve($("[data-out=logsnr]"), logSnr, T, t, -12, 10, "log SNR_t", refLog);
    images.forEach((im, i) => drawImage($(`[data-out=img${i}]`), im, abar[t]));
  }

  root.querySelectorAll("input, select").forEach(el => el.addEventListener("input", update));
  update();
}

if (typeof module !== "undefined") module.exports = {ardiffBetas, ardiffAlphasCumprod};
