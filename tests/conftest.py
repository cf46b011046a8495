"""Shared paths to real data: the bundled ORNL module files and, when present, the shared data folder."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")  # before any test imports PyBaMM
os.environ.pop("RELEAF_SOH_MODELS", None)  # the tests read the packaged SOH models, not a user's retrained ones

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


POSTGRES_ENV = "RELEAF_TEST_POSTGRES_URL"


def _postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI run without {POSTGRES_ENV}: .ci/run should have started PostgreSQL")
        pytest.skip(f"no PostgreSQL server ({POSTGRES_ENV} not set; .ci/run starts one)")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database URL: a SQLite file, and a new PostgreSQL database when a server is available."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'plant.db'}"
        return
    import sqlalchemy as sa

    admin = sa.make_url(_postgres_admin_url())
    name = f"releaf_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as con:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
