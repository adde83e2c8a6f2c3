import json
import shutil
import subprocess
from importlib import resources

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from ardiff import NoiseSchedule  # noqa: E402
from ardiff.widgets import EPS_SCALE, make_schedule, schedule_explorer, static_schedule_explorer  # noqa: E402

IMAGES = [torch.linspace(-1, 1, 28 * 28).view(1, 28, 28), torch.zeros(3, 16, 16)]

CASES = [("linear", 1000, {"beta_start": 1e-4, "beta_end": 0.02}),
         ("linear", 100, {"beta_start": 1e-4, "beta_end": 0.05}),
         ("linear", 1, {"beta_start": 1e-3, "beta_end": 1e-3}),
         ("cosine", 1000, {"s": 0.008}), ("cosine", 37, {"s": 0.05}),
         ("sigmoid", 1000, {"start": -3.0, "end": 3.0, "tau": 1.0}),
         ("sigmoid", 250, {"start": -2.0, "end": 4.5, "tau": 0.4})]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_schedule_equals_python():
    """The kernel-free explorer recomputes schedules in JavaScript: it must agree with schedules.py."""
    js = resources.files("ardiff").joinpath("static/explorer.js").read_text()
    calls = [{"kind": k, "T": T, "p": {**p, "max_beta": 0.999}} for k, T, p in CASES]
    prog = js + f"""
const cases = {json.dumps(calls)};
console.log(JSON.stringify(cases.map(c => {{
  const b = ardiffBetas(c.kind, c.T, c.p);
  return [Array.from(b), Array.from(ardiffAlphasCumprod(b))];
}})));"""
    out = json.loads(subprocess.run(["node", "-e", prog], capture_output=True, text=True, check=True).stdout)
    for (kind, T, p), (betas, abar) in zip(CASES, out):
        s = make_schedule(kind, T, **p)
        np.testing.assert_allclose(betas, s.betas.numpy(), rtol=1e-6, err_msg=kind)
        np.testing.assert_allclose(abar, s.alphas_cumprod.numpy(), rtol=1e-5, err_msg=kind)


def test_static_explorer_is_self_contained():
    ex = static_schedule_explorer(IMAGES, labels=["ramp", "grey"], t=10)
    html = ex._repr_html_()
    assert "<script>" in html and "ardiffExplorer(" in html
    for needle in ("http://", "https://", "src=", "require("):  # no CDN, no external file
        assert needle not in html
    payload = ex.payload
    assert json.dumps(payload) in html
    assert [im["c"] for im in payload["images"]] == [1, 3] and payload["eps_scale"] == EPS_SCALE
    # two explorers on one page must not share an element id
    other = static_schedule_explorer(IMAGES)._repr_html_()
    assert html.split('id="')[1].split('"')[0] != other.split('id="')[1].split('"')[0]


def test_static_explorer_noise_is_the_library_noise():
    """The eps sent to the page is the seeded eps of the live explorer, quantised to 1/EPS_SCALE."""
    import base64

    payload = static_schedule_explorer(IMAGES[:1], seed=5).payload
    eps = np.frombuffer(base64.b64decode(payload["images"][0]["eps"]), np.int8).astype(np.float32) / EPS_SCALE
    ref = torch.randn(IMAGES[0].shape, generator=torch.Generator().manual_seed(5)).flatten().numpy()
    inside = np.abs(ref) < 3.9
    assert np.abs(eps[inside] - ref[inside]).max() <= 0.5 / EPS_SCALE + 1e-6


def test_static_explorer_bad_arguments():
    with pytest.raises(ValueError, match=r"images must be \(C, H, W\) tensors"):
        static_schedule_explorer([torch.zeros(2, 8, 8)])
    with pytest.raises(ValueError, match="labels must have one entry per image"):
        static_schedule_explorer(IMAGES, labels=["one"])
    with pytest.raises(ValueError, match=r"t must be in \[0, T-1\]"):
        static_schedule_explorer(IMAGES, T=100, t=100)
    with pytest.raises(ValueError, match="beta_start must be <= beta_end"):
        static_schedule_explorer(IMAGES, beta_start=0.1, beta_end=0.01)
    with pytest.raises(ValueError, match="kind must be 'linear', 'cosine' or 'sigmoid'"):
        make_schedule("quadratic", 10)


def test_live_explorer_redraws_with_the_library():
    box = schedule_explorer(IMAGES, t=5)
    controls = {w.description: w for row in box.children[:2] for w in row.children}
    assert box.state["t"] == 5 and box.state["schedule"].name.startswith("linear")
    controls["schedule"].value = "cosine"
    assert box.state["schedule"].name.startswith("cosine")
    assert controls["beta_start"].layout.display == "none" and controls["s"].layout.display == ""
    controls["T"].value = 100
    assert controls["t"].max == 99 and box.state["schedule"].T == 100
    controls["t"].value = 42
    assert box.state["t"] == 42
    controls["schedule"].value = "linear"
    controls["beta_start"].value = 0.009
    controls["beta_end"].value = 0.005  # now beta_start > beta_end: the error is shown, not raised
    assert "beta_start must be <= beta_end" in box.state["error"]


def test_save_writes_a_standalone_page(tmp_path):
    p = tmp_path / "explorer.html"
    static_schedule_explorer(IMAGES).save(p)
    assert p.read_text().startswith("<!doctype html>")
