"""Baselines, figures and the one-command demo."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from agbm.demo import DemoConfig, run_demo
from agbm.evaluation.baselines import fit_linear, fit_mean, pixel_features, predict_linear
from agbm.training.history import plot_history
from agbm.viz import plot_chip

PNG = b"\x89PNG\r\n\x1a\n"


def fake_sample(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    image = rng.random((12, 15, 8, 8), dtype=np.float32)
    present = np.ones(12, dtype=bool)
    present[3] = False
    image[3] = 0
    target = 50 + 200 * image[9, 10] - 80 * image[0, 1]  # linear in two inputs
    target[0, 0] = 5000.0  # an outlier the fit must ignore
    return {
        "image": torch.from_numpy(image),
        "present": torch.from_numpy(present),
        "target": torch.from_numpy(target)[None].float(),
        "chip_id": str(seed),
    }


def test_linear_baseline_recovers_a_linear_target_and_ignores_outliers() -> None:
    samples = [fake_sample(s) for s in range(4)]
    weights = fit_linear(samples, pixels_per_chip=64)
    test = fake_sample(9)
    pred = predict_linear(weights, test["image"].numpy(), test["present"].numpy())
    np.testing.assert_allclose(pred.ravel()[1:], test["target"].numpy().ravel()[1:], atol=1e-2)
    assert pixel_features(test["image"].numpy(), test["present"].numpy()).shape == (64, 193)


def test_mean_baseline_ignores_pixels_at_or_above_the_threshold() -> None:
    sample = {"target": torch.tensor([[[10.0, 30.0], [400.0, 9000.0]]])}
    assert fit_mean([sample]) == pytest.approx(20.0)


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


def test_demo_runs_end_to_end_and_resumes(tmp_path: Path, capsys) -> None:
    # A short run of every step (that the model beats both baselines: tests/test_train.py)
    config = DemoConfig(out=tmp_path, chips=8, test_chips=2, size=32, epochs=1, batch_size=2)
    scores = run_demo(config)
    assert len(scores) == 3 and all(np.isfinite(v) and v > 0 for v in scores.values())
    assert len(list((tmp_path / "pred").glob("*_agbm.tif"))) == 2
    assert len(list((tmp_path / "figures").glob("*.png"))) == 2
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == PNG
    out = capsys.readouterr().out
    assert "per-pixel linear regression" in out and "predict the training mean" in out
    last = (tmp_path / "run" / "last.pt").stat().st_mtime_ns
    run_demo(config)  # everything already there: nothing is retrained
    assert (tmp_path / "run" / "last.pt").stat().st_mtime_ns == last
    assert "== synthetic data" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="other settings .*size 32 -> 64"):
        run_demo(dataclasses.replace(config, size=64))
