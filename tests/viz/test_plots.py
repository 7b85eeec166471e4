"""Figures: the per-chip panels and the training curve."""

from __future__ import annotations

from pathlib import Path

from agbm.training.history import plot_history
from agbm.viz import plot_chip
from tests.helpers import PNG, fake_sample


def test_figures_are_written_as_png(tmp_path: Path) -> None:
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text(
        "epoch,train_loss,val_rmse,lr,seconds,chips_per_s\n1,50,60,1e-3,1,1\n2,40,nan,1e-4,1,1\n"
    )
    plot_history(csv_path, tmp_path / "loss.png")
    sample = fake_sample(0)
    image, target = sample["image"].numpy(), sample["target"][0].numpy()
    plot_chip(image, target, target + 1, "abc", tmp_path / "chip.png")
    plot_chip(image, None, target, "abc", tmp_path / "chip_no_target.png")
    for name in ("loss.png", "chip.png", "chip_no_target.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
