"""The loss and the challenge metric against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agbm.metrics import average_rmse, chip_rmse, rmse_loss


def test_loss_ignores_pixels_at_or_above_max_target() -> None:
    target = torch.tensor([[[[10.0, 20.0], [400.0, 1500.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    pred = torch.tensor([[[[13.0, 24.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    # chip 0: errors 3 and 4 on the two valid pixels -> sqrt((9 + 16) / 2); chip 1: 1
    expected = (math.sqrt(12.5) + 1.0) / 2
    assert rmse_loss(pred, target, max_target=400.0).item() == pytest.approx(expected, rel=1e-6)


def test_loss_skips_chips_without_valid_pixels_and_keeps_gradients() -> None:
    target = torch.tensor([[[[500.0]]], [[[2.0]]]])
    pred = torch.zeros(2, 1, 1, 1, requires_grad=True)
    loss = rmse_loss(pred, target)
    assert loss.item() == pytest.approx(2.0, rel=1e-6)
    loss.backward()
    assert pred.grad[0].item() == 0.0 and pred.grad[1].item() == pytest.approx(-1.0, rel=1e-4)
    empty = rmse_loss(pred, torch.full_like(pred, 999.0))
    assert empty.item() == 0.0 and empty.requires_grad


def test_perfect_prediction_has_finite_gradient() -> None:
    target = torch.rand(2, 1, 4, 4) * 100
    pred = target.clone().requires_grad_(True)
    rmse_loss(pred, target).backward()
    assert torch.isfinite(pred.grad).all()


def test_challenge_metric_is_mean_of_per_chip_rmse_over_all_pixels() -> None:
    pred = np.array([[[0.0, 0.0]], [[1.0, 3.0]]])
    truth = np.array([[[3.0, 4.0]], [[1.0, 1000.0]]])
    per_chip = chip_rmse(pred, truth)
    np.testing.assert_allclose(per_chip, [math.sqrt(12.5), math.sqrt(997.0**2 / 2)])
    assert average_rmse(per_chip) == pytest.approx(per_chip.mean())
    with pytest.raises(ValueError):
        average_rmse(np.array([]))
