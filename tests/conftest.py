"""Shared paths to real data: the bundled ORNL module files and, when present, the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED_ORNL = REPO / "data" / "ornl-leaf"
SHARED_DATA = REPO.parent / "shared" / "data"
MODULE_FILES = {
    "0_3c": BUNDLED_ORNL / "module123-irdischarge-65ah-0_3c.csv",
    "1_0c": BUNDLED_ORNL / "module123-irdischarge-65ah-1_0c.csv",
    "2_0c": BUNDLED_ORNL / "module123-irdischarge-65ah-2_0c.csv",
    "2_75c": BUNDLED_ORNL / "module123-irdischarge-65ah-2_75c.csv",
}


def shared(*parts: str) -> Path:
    """A file of the shared data folder; the test is skipped where that folder is absent (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path
