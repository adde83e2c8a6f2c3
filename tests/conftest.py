"""Shared test fixtures: the real data folder (../shared/data) when it sits beside the checkout."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data(monkeypatch):
    """Point ARDIFF_DATA at ../shared/data, or skip when this checkout has none beside it."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"no real data at {SHARED_DATA}")
    monkeypatch.setenv("ARDIFF_DATA", str(SHARED_DATA))
    return SHARED_DATA
