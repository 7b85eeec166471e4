"""A run that diverges stops and saves nothing of it; two runs never share a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import agbm.training.trainer as trainer_module
from agbm.cli import main
from agbm.io import hold_folder
from agbm.models import TemporalUNet, save_model
from tests.helpers import read_metrics

SMALL_FLAGS = [
    "--backbone", "resnet18", "--pretrained", "none", "--batch-size", "2", "--folds", "4",
    "--workers", "0", "--no-channels-last",
]  # fmt: skip


def run_args(data: Path, out: Path, epochs: int = 1) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--epochs", str(epochs), *SMALL_FLAGS]


def test_a_loss_that_is_not_finite_stops_the_run_naming_epoch_and_step(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`--lr inf` or any NaN loss trained on, wrote best.pt with NaN weights, and predict
    then wrote NaN maps."""
    out = tmp_path / "run"
    real, calls = trainer_module.rmse_loss, []

    def nan_at_the_fifth_step(pred, target, max_target):  # epoch 1 has 3 steps
        calls.append(1)
        loss = real(pred, target, max_target)
        return loss * torch.nan if len(calls) == 5 else loss

    monkeypatch.setattr(trainer_module, "rmse_loss", nan_at_the_fifth_step)
    assert main(run_args(tiny_data, out, epochs=2)) == 2
    err = capsys.readouterr().err
    assert "training diverged: the loss is not finite at epoch 2, step 2 of 3" in err
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1  # the good epoch kept
    assert len(read_metrics(out)) == 1


def test_a_validation_score_that_is_not_finite_writes_no_checkpoint(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(trainer_module.Trainer, "validate", lambda self: float("nan"))
    out = tmp_path / "run"
    assert main(run_args(tiny_data, out)) == 2
    assert "validation RMSE of epoch 1 is nan" in capsys.readouterr().err
    assert not (out / "best.pt").exists() and not (out / "last.pt").exists()


def test_a_second_run_in_a_folder_in_use_is_refused(tiny_data: Path, tmp_path: Path, capsys):
    """Two `train --out R` at once both ran, interleaving metrics.csv."""
    out = tmp_path / "run"
    out.mkdir()
    with hold_folder(out, "agbm train"):
        assert main(run_args(tiny_data, out)) == 2
        assert "is in use by another running agbm train" in capsys.readouterr().err
        assert not (out / "metrics.csv").exists()
    assert main(run_args(tiny_data, out)) == 0  # once it is free, it runs
    assert not (out / ".agbm.lock").exists()


def test_a_checkpoint_with_weights_that_are_not_finite_predicts_nothing(
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16))
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    save_model(tmp_path / "nan.pt", model)
    args = ["predict", "--data", str(tiny_data), "--out", str(tmp_path / "pred")]
    assert main([*args, "--checkpoint", str(tmp_path / "nan.pt"), "--workers", "0"]) == 2
    assert "weights that are not finite" in capsys.readouterr().err
    assert not list((tmp_path / "pred").glob("*.tif"))


def test_the_progress_bar_shows_the_epochs_loss(tiny_data: Path, tmp_path: Path, capsys) -> None:
    """`loss=` was refreshed every 10th step of the run, so a short epoch never showed it."""
    assert main(run_args(tiny_data, tmp_path / "run")) == 0
    assert "loss=" in capsys.readouterr().err
