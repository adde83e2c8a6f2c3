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


# Lessons whose stored outputs predate issue 13's setup cell (each needs a full re-render on the CPU to take it);
# they keep the previous cell, which installs from the same repository, until then.
SETUP_CELL_PENDING = set()


def test_every_lesson_starts_with_the_setup_cell():
    """Each lesson's first code cell is the one setup cell: the repository of _config.yml, this package's version
    (setup() warns a reader whose imported ardiff differs), and the lesson's dataset."""
    import ardiff

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert profiles.REPOSITORY == url
    for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code").source
        if path.name in SETUP_CELL_PENDING:
            assert f'%pip install -q "ardiff @ git+{url}"' in first and "ardiff.profiles.setup(" in first, path.name
            continue
        dataset = re.search(r'setup\(dataset="(\w+)"', first)
        assert dataset, f"{path.name}: no setup(dataset=...) call"
        want = profiles.SETUP_CELL.format(repository=url, dataset=dataset[1], version=ardiff.__version__)
        assert first == want, f"{path.name}: setup cell out of date; it should read:\n{want}"


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


def test_setup_prints_profile_device_and_dataset_without_machine_paths(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ARDIFF_DATA", str(tmp_path))
    prof, dev = profiles.setup("mnist", profile="quick", device="cpu")
    out = capsys.readouterr().out
    assert prof.name == "quick" and dev.type == "cpu"
    assert "profile: quick" in out and "device:  cpu" in out and "mnist from the local data folder" in out
    assert str(tmp_path) not in out
    monkeypatch.delenv("ARDIFF_DATA")
    monkeypatch.setenv("ARDIFF_CACHE", str(tmp_path))
    profiles.setup("mnist", profile="quick", device="cpu")
    out = capsys.readouterr().out
    assert "mnist from the cache" in out and str(tmp_path) not in out


def test_package_version_is_one_number():
    import ardiff
    assert ardiff.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _run_setup_cell(version):
    """The setup cell as a lesson runs it (ardiff is importable here, so the %pip line never runs)."""
    cell = profiles.SETUP_CELL.format(repository=profiles.REPOSITORY, dataset="photos", version=version)
    pip_line = f'    %pip install -q "ardiff @ git+{profiles.REPOSITORY}"\n'
    assert pip_line in cell
    exec(compile(cell.replace(pip_line, "    raise\n"), "setup-cell", "exec"), {})


def test_setup_cell_reports_a_version_mismatch_with_what_to_do(capsys):
    """The check runs in the cell itself, so that an install older than the check still gets the message."""
    import ardiff

    _run_setup_cell("0.0.1")
    out = capsys.readouterr().out
    assert "This notebook is for ardiff 0.0.1" in out and f'pip install -U "ardiff @ git+{profiles.REPOSITORY}"' in out
    assert "Restart session" in out and "profile:" in out
    _run_setup_cell(ardiff.__version__)
    assert "This notebook is for" not in capsys.readouterr().out


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


def test_plain_log_axis_labels_ticks_as_plain_numbers():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ardiff.plot import plain_log_axis

    fig, ax = plt.subplots()
    ax.plot([5, 10, 20, 50], [0.1, 0.2, 0.5, 1.0])
    plain_log_axis(ax), plain_log_axis(ax, "y")
    fig.canvas.draw()
    assert ax.get_xscale() == ax.get_yscale() == "log"
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and 5 <= t.get_position()[0] <= 50]
    assert shown == ["5", "10", "20", "50"]
    assert {"0.1", "0.2", "0.5", "1"} <= {t.get_text() for t in ax.get_yticklabels()}
    with pytest.raises(ValueError, match="axis must be"):
        plain_log_axis(ax, "z")
    plt.close(fig)


def test_palette_gives_one_colour_per_schedule_and_method():
    from ardiff.plot import PALETTE, color

    assert color("cosine, T=1000") == color("cosine") == PALETTE["cosine"]
    assert color("CIFAR study linear 1e-4→0.05, T=100") == PALETTE["study"] != color("DDPM linear 1e-4→0.02, T=1000")
    assert color("DDIM, 50 steps") == PALETTE["DDIM"] != color("DDPM, 1000 steps") == PALETTE["DDPM"]
    assert color("pixelcnn") == PALETTE["PixelCNN"] and color("mnist-blockwise") == PALETTE["block-wise"]
    assert color("cats-ddpm-s2 (study)") == PALETTE["study"] and color("mnist-ddpm (whole image)") == PALETTE["DDPM"]
    assert color("DPM-Solver++ 10") == color("dpm-solver++") == PALETTE["DPM-Solver++"] != PALETTE["DDIM"]
    assert color("ancestral, 50 steps") == PALETTE["DDPM"] and color("Wiener denoiser") == PALETTE["Wiener"]
    assert len(set(PALETTE.values())) == len(PALETTE)                  # no colour means two things
    for other in ("VAE", "denoiser", "unreal"):          # whole words only
        with pytest.raises(ValueError, match="name must contain one of"):
            color(other)
