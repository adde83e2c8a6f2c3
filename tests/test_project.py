"""Project-level checks: dependency lists agree, lessons' setup cells share the one repository URL, profiles."""
import re
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import nbformat
import pytest
import torch
import yaml

from ardiff import profiles

from conftest import ROOT

CONDA_TO_PYPI = {"pytorch": "torch"}


def _split(req: str):
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = dict(_split(r) for r in py["dependencies"] + py["optional-dependencies"]["book"]
                + py["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    got = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for r in dep["pip"]:
                if not r.startswith("-e"):
                    got.update([_split(r)])
            continue
        name, spec = _split(dep.replace("=", "==", 1) if re.match(r"^[^<>=!]+=[^=]", dep) else dep)
        if name not in ("python", "pip"):
            got[CONDA_TO_PYPI.get(name, name)] = spec
    assert got == want
    assert any(isinstance(d, dict) and "-e ." in d["pip"] for d in env["dependencies"])


def test_every_lesson_starts_with_the_setup_cell():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code").source
        assert f'%pip install -q "ardiff @ git+{url}"' in first, f"{path.name}: setup cell out of sync with _config.yml"
        assert "import ardiff" in first and "ardiff.profiles.setup(" in first, path.name


def test_profile_selection(monkeypatch):
    monkeypatch.setenv("ARDIFF_PROFILE", "full")
    assert profiles.get_profile().name == "full"
    monkeypatch.setenv("ARDIFF_PROFILE", "quick")
    assert profiles.get_profile().name == "quick"
    monkeypatch.delenv("ARDIFF_PROFILE")
    assert profiles.get_profile().name == ("full" if torch.cuda.is_available() else "quick")
    monkeypatch.setenv("ARDIFF_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"profile must be one of \['full', 'quick'\].*'fast'"):
        profiles.get_profile()


def test_setup_prints_profile_device_and_dataset(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ARDIFF_DATA", str(tmp_path))
    prof, dev = profiles.setup("mnist", profile="quick", device="cpu")
    out = capsys.readouterr().out
    assert prof.name == "quick" and dev.type == "cpu"
    assert "profile: quick" in out and "device:  cpu" in out and f"ARDIFF_DATA={tmp_path}" in out


def test_import_ardiff_does_not_pull_in_plotting():
    import subprocess
    import sys

    code = "import sys, ardiff; print(any(m in sys.modules for m in ('matplotlib', 'ipywidgets', 'ardiff.widgets')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_image_grid_frames_every_tile():
    import torch
    from ardiff.plot import image_grid

    white = torch.ones(3, 1, 4, 4)  # blank white samples must not merge into a white page
    g = image_grid(white, nrow=2)
    assert g.shape == (2 * 5 + 1, 2 * 5 + 1)
    assert (g[0] == 0.5).all() and (g[:, 0] == 0.5).all() and (g[1:5, 1:5] == 1).all()
    assert (g[6:10, 6:10] == 0.5).all()  # the empty fourth slot stays frame-grey


def test_band_grid_shows_each_band_and_refuses_wrong_names():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pytest
    import torch
    from ardiff.plot import band_grid

    from ardiff.plot import image_grid
    from ardiff.spectral import band_split

    g = torch.Generator().manual_seed(0)
    late = torch.rand(3, 1, 12, 12, generator=g) * 2 - 1
    states = {900: 0.5 * late, 0: late}               # the same content, half as strong early on
    fig = band_grid(states, (0.1, 0.3), n=2, band_names=["low", "mid", "high"], image_label="x")
    assert fig.axes[0].get_title() == "t = 900" and len(fig.axes) == 4 * 2
    assert fig.axes[0].get_ylabel() == "x" and fig.axes[2].get_ylabel() == "low"
    cell = lambda row, col: fig.axes[2 * row + col].get_images()[0].get_array()
    bands = band_split(late[:2], (0.1, 0.3)).float()
    np.testing.assert_allclose(cell(1, 1), image_grid(bands[0].clamp(-1, 1), nrow=2), atol=1e-6)  # low band as is
    high = (bands[2] / bands[2].abs().max()).clamp(-1, 1)                  # one scale per row: its largest swing
    np.testing.assert_allclose(cell(3, 1), image_grid(high, nrow=2), atol=1e-6)
    np.testing.assert_allclose(cell(3, 0), image_grid(0.5 * high, nrow=2), atol=1e-6)
    plt.close(fig)
    with pytest.raises(ValueError, match="band_names"):
        band_grid(states, (0.1, 0.3), n=2, band_names=["low", "high"])
    with pytest.raises(ValueError, match="n = 4"):
        band_grid(states, (0.1, 0.3), n=4)
