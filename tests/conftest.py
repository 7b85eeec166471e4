"""Shared fixtures: one small synthetic data set per test session, copied when a test edits it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agbm.data.synth import generate


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only synthetic data set: 6 train and 2 test chips of 64x64."""
    root = tmp_path_factory.mktemp("synth")
    generate(root, chips=6, test_chips=2, seed=7, size=64)
    return root


@pytest.fixture
def scratch_root(synth_root: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic data set that a test may damage."""
    return Path(shutil.copytree(synth_root, tmp_path / "data"))
