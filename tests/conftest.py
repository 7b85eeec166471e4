"""Shared fixtures: small synthetic data sets and trained tiny models, built once per test
run (once for all pytest-xdist workers), copied when a test edits them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from filelock import FileLock

from agbm.cli import main
from agbm.data.synth import generate


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name` filled by `build(folder)` once per test run. Under pytest-xdist the
    workers share their base temp's parent, so the first one to get there builds it under a
    lock and the others wait and reuse it: a tiny model is trained once, not once a worker."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = factory.mktemp(name)
        build(folder)
        return folder
    folder = factory.getbasetemp().parent / name
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only synthetic data set: 6 train and 2 test chips of 64x64."""
    build = partial(generate, chips=6, test_chips=2, seed=7, size=64)
    return built_once(tmp_path_factory, "synth", build)


@pytest.fixture
def scratch_root(synth_root: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic data set that a test may damage."""
    return Path(shutil.copytree(synth_root, tmp_path / "data"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = partial(generate, chips=8, test_chips=2, seed=5, size=32)
    return built_once(tmp_path_factory, "tiny", build)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic data set and a checkpoint trained on it for one epoch via the CLI."""
    root = built_once(tmp_path_factory, "e2e", _train_one_epoch)
    return root / "data", root / "run" / "last.pt"


def _train_one_epoch(root: Path) -> None:
    data = root / "data"
    generate(data, chips=8, test_chips=3, seed=11, size=32)
    args = ["train", "--data", str(data), "--out", str(root / "run"), "--backbone", "resnet18",
            "--pretrained", "none", "--epochs", "1", "--batch-size", "2", "--folds", "4",
            "--workers", "0", "--no-channels-last"]  # fmt: skip
    assert main(args) == 0


@pytest.fixture(scope="session")
def learned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic set of 48 train chips of 32 px and the tiny model that learned it (the
    agbm recipe, 8 epochs, fold 0 of 4 held out: `train_tiny`): the model the learning and
    the calibration tests share. Returns (data, run folder)."""
    from bench.adaptation import train_tiny

    def build(root: Path) -> None:
        generate(root / "data", chips=48, test_chips=0, seed=3, size=32)
        train_tiny(root / "data", root / "run", 8)

    root = built_once(tmp_path_factory, "learned", build)
    return root / "data", root / "run"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs one worker per core), each worker computes on one
    thread: two workers of torch's default two threads each would fight for two cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
