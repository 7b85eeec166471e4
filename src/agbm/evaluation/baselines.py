"""Reference predictors that any learned model must beat, on the same chips and metric.

* the mean: every pixel gets the mean training target (below the loss threshold);
* a per-pixel linear regression on the same inputs: the 12 x 15 normalised values and the
  12 present flags of a pixel, fitted by least squares on a sample of training pixels.

The second is what a remote-sensing analyst would try first; a deep model that cannot beat
it is not worth its GPUs.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from agbm.data.dataset import Sample
from agbm.metrics import average_rmse, chip_rmse

#: The baselines' names, as the demo prints them.
MEAN, LINEAR = "predict the training mean", "per-pixel linear regression"


def pixel_features(image: np.ndarray, present: np.ndarray) -> np.ndarray:
    """`[12, 15, H, W]`, `[12]` -> `[H*W, 12*15 + 12 + 1]` (values, present flags, bias)."""
    months, bands, h, w = image.shape
    values = image.reshape(months * bands, h * w).T
    flags = np.broadcast_to(present.astype(np.float32), (h * w, months))
    return np.hstack([values, flags, np.ones((h * w, 1), np.float32)])


def fit_mean(samples: Iterable[Sample], max_target: float = 400.0) -> float:
    """Mean training target over the pixels the loss counts."""
    total, count = 0.0, 0
    for sample in samples:
        target = sample["target"].numpy()
        valid = target < max_target
        total += float(target[valid].sum())
        count += int(valid.sum())
    return total / count


def fit_linear(
    samples: Iterable[Sample], max_target: float = 400.0, pixels_per_chip: int = 2048, seed: int = 0
) -> np.ndarray:
    """Least-squares weights of the per-pixel linear model (see `pixel_features`)."""
    rng = np.random.default_rng(seed)
    rows, ys = [], []
    for sample in samples:
        x = pixel_features(sample["image"].numpy(), sample["present"].numpy())
        y = sample["target"].numpy().reshape(-1)
        keep = np.flatnonzero(y < max_target)
        keep = rng.choice(keep, size=min(pixels_per_chip, keep.size), replace=False)
        rows.append(x[keep])
        ys.append(y[keep])
    weights, *_ = np.linalg.lstsq(np.vstack(rows), np.concatenate(ys), rcond=None)
    return weights


def predict_linear(weights: np.ndarray, image: np.ndarray, present: np.ndarray) -> np.ndarray:
    """AGBM `[H, W]` (>= 0) of the per-pixel linear model."""
    agbm = pixel_features(image, present) @ weights
    return np.clip(agbm, 0, None).reshape(image.shape[-2:])


def baseline_chip_rmses(train: Iterable[Sample], chips: Iterable[Sample]) -> dict[str, np.ndarray]:
    """Each baseline's RMSE per chip of `chips`, fitted on `train` (each a sample set with
    targets, e.g. `ChipDataset`s; `train` is read twice rather than held in memory): what a
    comparison with a model chip by chip needs, whose spread says how sure a gap is."""
    mean, weights = fit_mean(train), fit_linear(train)
    mean_rmse, linear_rmse = [], []
    for sample in chips:
        target = sample["target"][0].numpy()
        mean_rmse.append(chip_rmse(np.full_like(target, mean)[None], target[None])[0])
        linear = predict_linear(weights, sample["image"].numpy(), sample["present"].numpy())
        linear_rmse.append(chip_rmse(linear[None], target[None])[0])
    return {MEAN: np.array(mean_rmse), LINEAR: np.array(linear_rmse)}


def baseline_scores(train: Iterable[Sample], chips: Iterable[Sample]) -> dict[str, float]:
    """Average RMSE over `chips` of both baselines fitted on `train` (`baseline_chip_rmses`)."""
    return {name: average_rmse(r) for name, r in baseline_chip_rmses(train, chips).items()}
