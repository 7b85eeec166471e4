"""The challenge metric and the loss that optimises it.

BioMassters scores a submission by *average RMSE*: the RMSE over the 65,536 pixels of each
chip, averaged over chips. Training optimises the same quantity per batch, ignoring target
pixels at or above a threshold (400 t/ha): the LiDAR targets hold a few extreme outliers
(thousands of t/ha) whose squared errors would otherwise dominate the gradient.
"""

from __future__ import annotations

import numpy as np
import torch

#: Keeps the gradient of sqrt finite when a chip is predicted perfectly.
_EPS = 1e-8


def rmse_loss(pred: torch.Tensor, target: torch.Tensor, max_target: float = 400.0) -> torch.Tensor:
    """Mean over chips of the per-chip RMSE over pixels whose target is below `max_target`.

    `pred` and `target` are `[B, 1, H, W]`. Ignored pixels are left out (not clipped); a chip
    with no valid pixel does not count. Computed in float32 whatever the autocast dtype.
    """
    pred, target = pred.float().flatten(1), target.float().flatten(1)
    valid = target < max_target
    count = valid.sum(dim=1)
    sq_error = torch.where(valid, (pred - target) ** 2, torch.zeros_like(pred)).sum(dim=1)
    rmse = torch.sqrt(sq_error / count.clamp(min=1) + _EPS)
    # The mean over chips with pixels, as arithmetic rather than indexing: no host sync per
    # step, and a batch without any valid pixel gives 0 with the graph still connected.
    has_pixels = (count > 0).float()
    return (rmse * has_pixels).sum() / has_pixels.sum().clamp(min=1)


def chip_rmse(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> np.ndarray:
    """The challenge's per-chip RMSE over all pixels: `[B, ...]` arrays -> `[B]` float64."""
    pred = torch.as_tensor(pred, dtype=torch.float64).flatten(1)
    target = torch.as_tensor(target, dtype=torch.float64).flatten(1)
    return torch.sqrt(((pred - target) ** 2).mean(dim=1)).numpy()


def average_rmse(per_chip: np.ndarray) -> float:
    """The challenge score: the mean of the per-chip RMSEs."""
    if len(per_chip) == 0:
        raise ValueError("average RMSE of no chips is undefined")
    return float(np.mean(per_chip))
