"""Shared fixtures: one small synthetic data set per test session, copied when a test edits it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agbm.cli import main
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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate(root, chips=8, test_chips=2, seed=5, size=32)
    return root


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic data set and a checkpoint trained on it for one epoch via the CLI."""
    root = tmp_path_factory.mktemp("e2e")
    data = root / "data"
    generate(data, chips=8, test_chips=3, seed=11, size=32)
    run = root / "run"
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--backbone",
        "resnet18",
        "--pretrained",
        "none",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--folds",
        "4",
        "--workers",
        "0",
        "--no-channels-last",
    ]
    assert main(args) == 0
    return data, run / "last.pt"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs one worker per core), each worker computes on one
    thread: two workers of torch's default two threads each would fight for two cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
