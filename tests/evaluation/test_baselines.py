"""The baselines a model must beat."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agbm.evaluation.baselines import fit_linear, fit_mean, pixel_features, predict_linear
from tests.helpers import fake_sample


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
