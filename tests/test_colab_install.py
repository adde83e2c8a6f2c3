"""The lessons' setup cell installs ardiff without replacing a torch the runtime already has (Colab ships its own).

pip keeps an installed requirement that satisfies the range it is asked for, unless told to upgrade. So what
decides it is ardiff's declared dependencies (pyproject.toml) and the flags of the setup cell's %pip line. This
test installs, offline, a package with exactly those dependencies into a fresh venv that already has a different
torch in range, with a newer torch on offer, and checks that torch is untouched; and that a torch below the range
is replaced, so that the check can fail. The other dependencies are empty stand-in wheels at their lowest allowed
versions: only the resolver is under test, not the packages.
"""
import base64
import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import pytest

from ardiff import profiles

from conftest import ROOT


def _wheel(folder: Path, name: str, version: str, requires=()) -> Path:
    """An empty but valid wheel (one module, METADATA with Requires-Dist, WHEEL, RECORD)."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {f"{name.replace('-', '_')}/__init__.py": f'__version__ = "{version}"\n',
             f"{dist}.dist-info/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
                 name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: ardiff-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    out = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return out


def _lowest(req: str) -> tuple[str, str]:
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9.]+)", req.strip())
    assert m, f"dependency {req!r} is not of the form 'name>=version'; teach this test its lowest version"
    return m[1], m[2]


@pytest.fixture(scope="module")
def offline_index(tmp_path_factory):
    """A folder of wheels: ardiff with pyproject's dependencies, each dependency at its lowest allowed version,
    and torch at 2.0.0 (below the range), 2.5.0 and 2.13.0."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    folder = tmp_path_factory.mktemp("wheels")
    deps = project["dependencies"]
    _wheel(folder, "ardiff", project["version"], deps)
    for req in deps:
        name, low = _lowest(req)
        if name != "torch":
            _wheel(folder, name, low)
    torch_low = _lowest(next(r for r in deps if r.startswith("torch")))[1]
    assert torch_low.split(".")[:2] == ["2", "1"], "the torch range moved: update the versions this test installs"
    for v in ("2.0.0", "2.5.0", "2.13.0"):
        _wheel(folder, "torch", v)
    return folder


def _install_over(tmp_path, index: Path, torch_version: str) -> str:
    env = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(env)], capture_output=True, text=True, timeout=300)
    if made.returncode != 0:
        pytest.skip(f"this Python cannot make a venv with pip (ensurepip): {made.stderr[-300:]}")
    pip = [str(env / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-index",
           "--find-links", str(index)]
    subprocess.run(pip + [f"torch=={torch_version}"], check=True, capture_output=True, text=True, timeout=300)
    # the setup cell's own flags, with the package taken from the offline folder instead of git
    flags = re.search(r'%pip install (.*?)"ardiff @', profiles.SETUP_CELL)[1].split()
    proc = subprocess.run(pip + flags + ["ardiff"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    show = subprocess.run([str(env / "bin" / "python"), "-c",
                           "import torch, ardiff; print(torch.__version__, ardiff.__version__)"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.split()
    return show[0]


def test_setup_cell_never_forces_a_reinstall():
    line = re.search(r"%pip install .*", profiles.SETUP_CELL)[0]
    assert not re.search(r"(^|\s)(-U|--upgrade|--force-reinstall|--ignore-installed|-I)(\s|$)", line), line


def test_install_keeps_a_torch_in_range(tmp_path, offline_index):
    assert _install_over(tmp_path, offline_index, "2.5.0") == "2.5.0"


def test_install_replaces_a_torch_below_the_range(tmp_path, offline_index):
    assert _install_over(tmp_path, offline_index, "2.0.0") == "2.13.0"
