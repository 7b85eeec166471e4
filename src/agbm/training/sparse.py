"""Learning a dense map from sparse labels: the footprint loss.

Each label (a GEDI footprint, a field plot) measures the mean biomass over a disc, not the
value of one pixel. So the prediction is averaged over the label's disc, each pixel weighted
by the share of the disc on it, and that mean is compared with the label: an RMSE over
labels, not over pixels (Lang et al. 2023; Pauls et al. 2024 learn canopy height the same
way). Labels may be weighted by 1 / `agbd_se`^2 (`--label-weights se`): precise labels
count more. GEDI's geolocation is good to ~10 m, a pixel: with `--shift-loss` each
footprint takes the best of the nine one-pixel shifts of its disc (Pauls et al. 2024).

Labels come as float `[B, K, 5]` tensors (`agbm.labels.chips.LABEL_FIELDS`: row, col,
radius in pixels, agbd, agbd_se), padded with NaN rows to the batch's K.
"""

from __future__ import annotations

import math

import torch

#: Sub-samples per pixel side that measure the share of a disc on each pixel.
SUBSAMPLES = 8
#: The nine one-pixel shifts of `--shift-loss`.
SHIFTS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
_EPS = 1e-8


def label_reach(labels: torch.Tensor) -> int:
    """The half-width in pixels of the window that holds every label's disc. Read it from
    the batch's CPU copy: on a GPU tensor it would make the CPU wait for the device."""
    radius = torch.nan_to_num(labels[..., 2])
    return max(1, math.ceil(float(radius.max()))) if radius.numel() else 1


def disc_weights(
    labels: torch.Tensor,
    size: tuple[int, int],
    shift: tuple[int, int] = (0, 0),
    reach: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat pixel index `[B, K, P*P]`, weight `[B, K, P*P]`) of each label's disc moved by
    `shift` pixels: the share of the disc on each pixel of a P x P window around it (sub-
    sampled, `SUBSAMPLES`^2 points a pixel), 0 off the chip and for padding rows. `reach`:
    `label_reach(labels)`, computed here when not given."""
    height, width = size
    valid = torch.isfinite(labels[..., 3])
    row = torch.nan_to_num(labels[..., 0]) + shift[0]
    col = torch.nan_to_num(labels[..., 1]) + shift[1]
    radius = torch.nan_to_num(labels[..., 2])
    reach = label_reach(labels) if reach is None else reach
    offsets = torch.arange(-reach, reach + 1, device=labels.device)
    side = len(offsets)
    rows = row.floor().long()[..., None, None] + offsets[:, None]  # [B, K, P, 1]
    cols = col.floor().long()[..., None, None] + offsets[None, :]  # [B, K, 1, P]
    sub = (torch.arange(SUBSAMPLES, device=labels.device) + 0.5) / SUBSAMPLES
    ys = rows[..., None, None] + sub[:, None]  # [B, K, P, 1, S, 1]
    xs = cols[..., None, None] + sub[None, :]  # [B, K, 1, P, 1, S]
    dy = ys - row[..., None, None, None, None]
    dx = xs - col[..., None, None, None, None]
    inside = (dy**2 + dx**2) <= radius[..., None, None, None, None] ** 2
    share = inside.float().mean(dim=(-2, -1))  # [B, K, P, P]
    on_chip = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    share = share * on_chip * valid[..., None, None]
    index = rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1)
    flat = (labels.shape[0], labels.shape[1], side * side)
    return index.expand(-1, -1, side, side).reshape(flat), share.reshape(flat)


def footprint_means(
    pred: torch.Tensor,
    labels: torch.Tensor,
    shift: tuple[int, int] = (0, 0),
    reach: int | None = None,
) -> torch.Tensor:
    """The prediction `[B, 1, H, W]` averaged over each label's disc: `[B, K]`, NaN for
    padding rows, discs off the chip and discs on a NaN pixel (a prediction without data;
    one beside the disc, in its window, does not count) (`reach`: as `disc_weights`)."""
    index, weight = disc_weights(labels, tuple(pred.shape[-2:]), shift, reach)
    flat = pred.float().flatten(1)  # [B, H*W]
    values = torch.gather(flat, 1, index.flatten(1)).reshape(index.shape)
    values = torch.where(weight > 0, values, torch.zeros_like(values))  # NaN x 0 is NaN
    total = weight.sum(-1)
    means = (values * weight).sum(-1) / total.clamp(min=_EPS)
    return torch.where(total > 0, means, torch.full_like(means, math.nan))


def label_weights(labels: torch.Tensor, kind: str = "none") -> torch.Tensor:
    """Each label's weight `[B, K]`: 1 ("none"), or 1 / agbd_se^2 ("se"; a label without a
    standard error takes the median weight of those with one)."""
    if kind == "none":
        return torch.ones_like(labels[..., 3])
    if kind != "se":
        raise ValueError(f"--label-weights must be none or se, not {kind!r}")
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
    `reach`: as `disc_weights`."""
    agbd = labels[..., 3]
    errors = torch.stack([
        (footprint_means(pred, labels, s, reach) - agbd) ** 2
        for s in (SHIFTS if shifts else [(0, 0)])
    ])  # fmt: skip
    error = torch.nan_to_num(errors, nan=math.inf).min(dim=0).values
    used = torch.isfinite(error)
    weight = label_weights(labels, weights) * used
    total = (torch.where(used, error, torch.zeros_like(error)) * weight).sum()
    return torch.sqrt(total / weight.sum().clamp(min=_EPS) + _EPS)


def footprint_errors(pred: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """(sum of squared footprint errors, labels counted): what validation pools over chips."""
    error = (footprint_means(pred, labels) - labels[..., 3]) ** 2
    used = torch.isfinite(error)
    return float(error[used].sum()), int(used.sum())
