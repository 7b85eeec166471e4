"""Learning a dense map from sparse labels: the footprint loss.

Each label (a GEDI footprint, a field plot) measures the mean biomass over a disc, not the
value of one pixel. So the prediction is averaged over the label's disc, each pixel weighted
by the share of the disc on it (`agbm.labels.footprints.footprint_means_on_chip`, the
footprint mean that `agbm evaluate --labels` takes on maps), and that mean is compared with
the label: an RMSE over labels, not over pixels (Lang et al. 2023; Pauls et al. 2024 learn
canopy height the same way). Labels may be weighted by 1 / `agbd_se`^2 (`--label-weights
se`): precise labels count more. GEDI's geolocation is good to ~10 m, a pixel: with
`--shift-loss` each footprint takes the best of the nine one-pixel shifts of its disc (Pauls
et al. 2024).

Labels come as float `[B, K, 5]` tensors (`agbm.labels.chips.LABEL_FIELDS`: row, col,
radius in pixels, agbd, agbd_se), padded with NaN rows to the batch's K.
"""

from __future__ import annotations

import math

import torch

from agbm.labels.footprints import footprint_means_on_chip

#: The nine one-pixel shifts of `--shift-loss`.
SHIFTS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
_EPS = 1e-8


def label_weights(labels: torch.Tensor, kind: str = "none") -> torch.Tensor:
    """Each label's weight `[B, K]`: 1 ("none"), or 1 / agbd_se^2 ("se"; a label without a
    standard error takes the median weight of those with one)."""
    if kind == "none":
        return torch.ones_like(labels[..., 3])
    if kind != "se":
        raise ValueError(f"`label_weights` must be none or se, not {kind!r}")
    se = labels[..., 4]
    weight = 1 / se.clamp(min=1.0) ** 2  # a se under 1 t/ha is not more precise than that
    known = torch.isfinite(weight)
    fill = weight[known].median() if known.any() else torch.ones((), device=labels.device)
    return torch.where(known, weight, fill)


def footprint_loss(
    pred: torch.Tensor,
    labels: torch.Tensor,
    weights: str = "none",
    shifts: bool = False,
    reach: int | None = None,
) -> torch.Tensor:
    """The weighted RMSE of the footprint means against the labels' agbd over every label of
    the batch; with `shifts`, each label's error is the least of its nine shifted discs'.
    `reach`: as `agbm.labels.footprints.disc_weights`."""
    agbd = labels[..., 3]
    errors = torch.stack([
        (footprint_means_on_chip(pred, labels, s, reach) - agbd) ** 2
        for s in (SHIFTS if shifts else [(0, 0)])
    ])  # fmt: skip
    error = torch.nan_to_num(errors, nan=math.inf).min(dim=0).values
    used = torch.isfinite(error)
    weight = label_weights(labels, weights) * used
    total = (torch.where(used, error, torch.zeros_like(error)) * weight).sum()
    return torch.sqrt(total / weight.sum().clamp(min=_EPS) + _EPS)


def footprint_errors(pred: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """(sum of squared footprint errors, labels counted): what validation pools over chips."""
    error = (footprint_means_on_chip(pred, labels) - labels[..., 3]) ** 2
    used = torch.isfinite(error)
    return float(error[used].sum()), int(used.sum())
