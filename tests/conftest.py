"""Shared fixtures: the real data beside the checkout, and one real local Ray cluster per session.

The real data live in ../shared beside the checkout (data sets in ../shared/data, or
$XRDGEN_SHARED_DATA; KubeRay schemas in ../shared/schemas) and are never copied here. A test that
needs them asks `shared_data(...)` / `shared_path(...)` (`from conftest import shared_data`): where
they are absent the test is skipped with the reason, and with CI=true it fails instead, so that a
CI run without the data cannot pass by skipping half the suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = Path(os.environ.get("XRDGEN_SHARED_DATA", SHARED / "data"))
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def shared_path(path: Path, where: str = "../shared beside the checkout") -> Path:
    """`path` when it exists; else skip the test (fail it under CI=true), naming what is missing."""
    if path.exists():
        return path
    reason = f"{path} is absent: it lives in {where}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: absent shared data fail the test instead of skipping it)", pytrace=False)
    pytest.skip(reason)


def shared_data(relative: str) -> Path:
    """A data set or file under ../shared/data (e.g. "rruff_dev", "db_metadata/icsd_....json.gz")."""
    return shared_path(SHARED_DATA / relative, "../shared/data beside the checkout")


@pytest.fixture(scope="session")
def mp40_dir() -> Path:
    """1,953 Materials Project structures as three CSVs with a `cif` column."""
    return shared_data("mp40")


@pytest.fixture(scope="session")
def lab17_dir() -> Path:
    """17 measured Cu Kα patterns, each with its structure.cif."""
    return shared_data("lab17")


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster (2 CPUs, like CI) shared by every test that asks for it."""
    import ray

    if not ray.is_initialized():
        # address="local": a private cluster of this session, never one that another process started
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
