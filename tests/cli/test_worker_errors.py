"""A bad file read in a DataLoader worker reaches the user as its own one-line message."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from agbm.cli import main
from agbm.data import features_path, list_chips
from tests.helpers import write_tif


def damage(root: Path, split: str, how: str) -> Path:
    """Spoil one S2 file of the split's first chip the way a user's download can."""
    path = next(
        features_path(root, list_chips(root, split)[0], "S2", m, split)
        for m in range(12)
        if features_path(root, list_chips(root, split)[0], "S2", m, split).is_file()
    )
    if how == "truncated":  # the reproduction: head -c 300
        path.write_bytes(path.read_bytes()[:300])
    elif how == "random":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    else:  # an S1-like file where S2 belongs
        write_tif(path, np.zeros((4, 32, 32), dtype=np.float32))
    return path


CASES = ["truncated", "random", "bands"]


def assert_one_line(err: str, path: Path) -> None:
    """One error line naming the file (beside the progress bar's), no traceback in it."""
    (line,) = [line for line in err.splitlines() if ": error: " in line]
    assert path.name in line and "Traceback" not in err and "worker process" not in err


@pytest.mark.parametrize("how", CASES)
def test_train_with_workers_says_which_file_in_one_line(
    how: str, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(shutil.copytree(tiny_data, tmp_path / "data"))
    bad = damage(root, "train", how)
    args = ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--workers", "2"]
    small = ["--backbone", "resnet18", "--pretrained", "none", "--epochs", "1", "--folds", "4"]
    assert main([*args, *small, "--batch-size", "2", "--full"]) == 2
    assert_one_line(capsys.readouterr().err, bad)


@pytest.mark.parametrize("how", CASES)
def test_predict_with_workers_says_which_file_in_one_line(
    how: str, trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, checkpoint = trained
    root = Path(shutil.copytree(data, tmp_path / "data"))
    bad = damage(root, "test", how)
    args = ["predict", "--data", str(root), "--out", str(tmp_path / "pred"), "--workers", "2"]
    assert main([*args, "--checkpoint", str(checkpoint)]) == 2
    assert_one_line(capsys.readouterr().err, bad)
