"""A label's footprint mean: what a label is compared with, on a chip or on a map.

A label (`agbm.labels.frame`) measures the mean biomass over a disc of `radius_m` metres
around its point, not the value of the one pixel under it: GEDI's 25 m footprint spans
several 10 m pixels. Its footprint mean is a prediction's mean over that disc, each pixel
weighted by the share of the disc on it. Two backends compute it:

- `footprint_means_on_chip(pred, labels)`: on a prediction tensor `[B, 1, H, W]` in torch,
  for labels placed on its chip (`agbm.labels.chips.label_array`: row, col, radius in
  pixels). The share of the disc on each pixel is sub-sampled (`SUBSAMPLES`^2 points a
  pixel), batched, on the model's device and differentiable: the footprint loss and
  validation of `agbm train` use it, and `agbm calibrate` on chips with labels.
- `footprint_means_on_map(map_path, labels)`: on a map file (agbm's GeoTIFF, a region's
  VRT, another product) for a labels frame: exactextract's exact coverage of each pixel by
  a polygon disc (`QUAD_SEGMENTS` vertices a quarter circle). `agbm evaluate --labels
  --map` uses it.

Both draw one disc: pixel (i, j) spans rows i..i+1 and columns j..j+1 of the grid's affine
transform, the centre is the label's point at its continuous position on that grid
(`agbm.labels.chips.pixel_positions`), and the radius is `radius_m` in the grid's metres
(on a chip `radius_px = radius_m / pixel_m`). On one grid they agree within the sub-
sampling's error: at most 0.05 of the spread (max - min) of the pixel values under the disc
for a disc of 0.5 to 3 px radius, 0.02 for GEDI's 12.5 m on 10 m pixels (measured and
derived in tests/labels/test_footprints.py).

Both treat pixels without data alike: they take no part, and only a disc with no data
under it is NaN. A chip's prediction is NaN only where nothing was observed, and a region's
map has no-data edges that a label may overlap; either way the rest of the disc still
measures the label's footprint, so calibration on chips and `agbm evaluate --labels` on a
map compare a label with one mean.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agbm.compose.grid import utm_epsg
from agbm.data.geotiff import agbm_band, open_map
from agbm.errors import DataError
from agbm.extras import require

if TYPE_CHECKING:  # torch is imported by the chip backend only, when it runs
    import torch

#: Sub-samples per pixel side that measure the share of a disc on each pixel (on a chip).
SUBSAMPLES = 8
#: Vertices per quarter circle of a footprint disc (on a map): its area is within 5e-4 of
#: pi r^2.
QUAD_SEGMENTS = 32
_EPS = 1e-8


def label_reach(labels: torch.Tensor) -> int:
    """The half-width in pixels of the window that holds every label's disc. Read it from
    the batch's CPU copy: on a GPU tensor it would make the CPU wait for the device."""
    import torch

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
    sampled, `SUBSAMPLES`^2 points a pixel), 0 off the chip and for padding rows. `labels`:
    `[B, K, 5]` (row, col, radius_px, agbd, agbd_se; NaN rows pad); `size`: the chip's
    (height, width); `reach`: `label_reach(labels)`, computed here when not given."""
    import torch

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


def footprint_means_on_chip(
    pred: torch.Tensor,
    labels: torch.Tensor,
    shift: tuple[int, int] = (0, 0),
    reach: int | None = None,
) -> torch.Tensor:
    """The prediction `pred` `[B, 1, H, W]` averaged over each label's disc (`labels`
    `[B, K, 5]`, as `disc_weights`, moved by `shift` pixels): `[B, K]`. NaN pixels take no
    part (as on a map); a padding row, a disc off the chip and a disc with only NaN pixels
    under it are NaN. `reach`: as `disc_weights`."""
    import torch

    index, weight = disc_weights(labels, tuple(pred.shape[-2:]), shift, reach)
    flat = pred.float().flatten(1)  # [B, H*W]
    values = torch.gather(flat, 1, index.flatten(1)).reshape(index.shape)
    weight = weight * torch.isfinite(values)
    values = torch.where(weight > 0, values, torch.zeros_like(values))  # NaN x 0 is NaN
    total = weight.sum(-1)
    means = (values * weight).sum(-1) / total.clamp(min=_EPS)
    return torch.where(total > 0, means, torch.full_like(means, math.nan))


def footprint_discs(labels: Any, crs: Any) -> Any:
    """The labels' footprint discs (a GeoSeries) in `crs`, drawn in metres: in `crs` itself
    when it is projected, else in the labels' UTM zone and then reprojected (a map in
    degrees, such as ESA CCI Biomass)."""
    pyproj = require("pyproj", "labels")
    target = pyproj.CRS.from_user_input(crs)
    if target.is_projected:
        return labels.to_crs(target).buffer(labels["radius_m"].to_numpy(), QUAD_SEGMENTS)
    centre = labels.geometry.union_all().centroid
    local = labels.to_crs(f"EPSG:{utm_epsg(centre.x, centre.y)}")
    discs = local.buffer(labels["radius_m"].to_numpy(), QUAD_SEGMENTS)
    return discs.to_crs(target)


def footprint_means_on_map(map_path: Path | str, labels: Any) -> np.ndarray:
    """The map at `map_path`'s (its AGBM band's) coverage-weighted mean over each label's
    footprint disc (`labels`: a labels frame, `agbm.labels.frame`), in the labels' order;
    no-data pixels take no part, and a disc with no data under it is NaN."""
    exactextract = require("exactextract", "labels")
    geopandas = require("geopandas", "labels")
    with open_map(map_path) as src:
        if src.crs is None:
            raise DataError(f"{map_path}: the map has no CRS, so the labels cannot be placed on it")
        crs = src.crs.to_wkt()
        discs = geopandas.GeoDataFrame(geometry=footprint_discs(labels, crs), crs=crs)
        if discs.empty:
            return np.zeros(0)
        table = exactextract.exact_extract(agbm_band(src), discs, ["mean"], output="pandas")
    return table["mean"].to_numpy(np.float64)
