"""Shared fixtures: the real data beside the checkout, and one real local Ray cluster per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("XRDGEN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _data_dir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared data set '{name}' lives in ../shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def mp40_dir() -> Path:
    """1,953 Materials Project structures as three CSVs with a `cif` column."""
    return _data_dir("mp40")


@pytest.fixture(scope="session")
def lab17_dir() -> Path:
    """17 measured Cu Kα patterns, each with its structure.cif."""
    return _data_dir("lab17")


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster (2 CPUs, like CI) shared by every test that asks for it."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
