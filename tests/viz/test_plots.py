"""Figures: the per-chip panels and the training curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agbm.training.history import plot_history
from agbm.viz import plot_chip
from agbm.viz.plots import choose_month, true_colour
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


def test_the_true_colour_shows_summer_even_when_may_is_clearer() -> None:
    """The demo's figure titled its "summer month" May: the least cloudy of June-August and
    May by mean cloud, whatever the order "best first" promised."""
    image = np.zeros((12, 15, 8, 8), dtype=np.float32)
    image[:, 4:] = 0.05  # every month has S2 ...
    image[:, -1] = 90 / 255  # ... all cloudy
    image[8, -1] = 0.0  # May wholly clear
    image[10, -1, :4] = 0.0  # July half clear
    assert true_colour(image)[1] == "S2 July"
    assert choose_month({8: 1.0, 9: 0.0, 10: 0.0, 11: 0.0}) == 8  # May when summer is cloudy
    assert choose_month({1: 0.2, 3: 0.6}) == 3 and choose_month({}) is None


def test_plot_of_a_missing_or_empty_prediction_folder_is_an_error(
    synth_root: Path, tmp_path: Path, capsys
) -> None:
    """`plot --pred /nonexistent` said "wrote 0 figure(s)" and exited 0."""
    from agbm.cli import main

    args = ["plot", "--data", str(synth_root), "--out", str(tmp_path / "fig")]
    assert main([*args, "--pred", str(tmp_path / "nonexistent")]) == 2
    assert "no such prediction folder" in capsys.readouterr().err
    assert main([*args, "--pred", str(tmp_path)]) == 2
    assert "holds no prediction of a test chip" in capsys.readouterr().err
