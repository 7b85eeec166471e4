"""Sparse labels placed on chips: each chip's labels with pixel positions on its own grid.

Chips in the BioMassters layout may carry labels instead of (or beside) dense targets:
`{split}_labels/{chip}_labels.csv` holds one row per label whose centre lies on the chip,
with `row` and `col` (continuous pixel coordinates on the chip's grid: pixel (i, j) spans
rows i..i+1 and columns j..j+1), `radius_px` (the footprint's radius in pixels), `agbd`
and `agbd_se` (t/ha), and the label's `lon`, `lat`, `date` and `source`. `agbm chips`
writes them; `agbm train --labels FILE` places a labels file on any chips by their
GeoTIFFs' grids (`place_labels`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.transform import array_bounds

from agbm.data.layout import labels_folder
from agbm.data.sources import open_source
from agbm.errors import DataError
from agbm.extras import require
from agbm.io import replacing

#: What a chip's labels tensor holds, column by column (`label_array`).
LABEL_FIELDS = ("row", "col", "radius_px", "agbd", "agbd_se")


def chip_labels_path(root: Path | str, chip_id: str, split: str) -> Path:
    return labels_folder(root, split) / f"{chip_id}_labels.csv"


def chip_grids(
    root: Path | str, chips: Sequence[str], split: str
) -> dict[str, tuple[Any, Any, tuple[int, int]]]:
    """Each chip's (CRS, transform, (height, width)), read through its source: a raw root's
    first GeoTIFF or an `agbm prepare` cache's record, so that labels are placed on a cache
    as on the chips it was made from."""
    source = open_source(root, split)
    grids = {}
    for chip in chips:
        geo = source.georeference(chip)
        if not geo:
            raise DataError(f"chip {chip} in {root}: has no CRS, so no label can be placed on it")
        grids[chip] = (geo["crs"], geo["transform"], tuple(source.size(chip)))
    return grids


def placed_frame(labels: Any, index: np.ndarray, rows: Any, cols: Any, pixel_m: float) -> Any:
    """The chip labels frame of `labels.iloc[index]` at pixel positions `rows`, `cols` on a
    chip of `pixel_m` metre pixels: `LABEL_FIELDS` and the labels' own columns."""
    chosen = labels.iloc[index]
    frame = chosen.drop(columns="geometry")
    return frame.assign(
        row=rows, col=cols, radius_px=frame["radius_m"] / pixel_m,
        lon=chosen.geometry.x.to_numpy(), lat=chosen.geometry.y.to_numpy(),
    )  # fmt: skip


def split_frame(
    labels: Any,
    chips: Sequence[str],
    counts: Sequence[int],
    index: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    pixel_m: Any,
) -> dict[str, Any]:
    """`placed_frame` of each of `chips`, whose `counts` labels come in that order in
    `index` (with their `rows`, `cols` and `pixel_m`): one frame for all, cut in slices,
    costs far less than a frame per chip (a country's labels fill 10^5 chips)."""
    frame = placed_frame(labels, index, rows, cols, pixel_m)
    ends = np.cumsum(counts)
    return {c: frame.iloc[e - n : e] for c, n, e in zip(chips, counts, ends, strict=True)}


def pixel_positions(
    transform: Any, shape: tuple[int, int], x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, on) of points `x`, `y` (in the grid's CRS) on a grid of `transform` and
    `shape`: continuous pixel coordinates, and whether each lies on the grid."""
    cols, rows = ~transform @ (x, y)
    height, width = shape
    return rows, cols, (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)


def check_all_placed(labels: Any, taken: np.ndarray, source: Path | str) -> None:
    """A one-line `DataError` naming `source`, the labels file, when a label (not `taken`)
    lies outside every chip: it would silently teach nothing."""
    if not taken.all():
        first = int(np.flatnonzero(~taken)[0])
        point = labels.geometry.iloc[first]
        raise DataError(
            f"{source}: label {first} at {point.x:.5f} E, {point.y:.5f} N lies outside every "
            f"chip ({int((~taken).sum())} such labels); give labels on the chips only"
        )


def place_labels(
    labels: Any, grids: Mapping[str, tuple[Any, Any, tuple[int, int]]], source: Path | str
) -> dict[str, Any]:
    """Each chip's labels (`placed_frame`) from a labels frame (`agbm.labels.frame`) and the
    chips' `grids` (`chip_grids`); a label on two chips goes to the first; a label outside
    every chip is an error (`check_all_placed`). The labels are projected once per CRS and
    each chip asks a spatial index of them for its own (a country's GEDI footprints on
    the BioMassters' 8,700 chips)."""
    shapely = require("shapely", "labels")
    taken = np.zeros(len(labels), bool)
    found = []  # (chip, its labels' index, rows, cols, pixel size)
    indexed: dict[str, tuple[np.ndarray, np.ndarray, Any]] = {}
    for chip, (crs, transform, (height, width)) in grids.items():
        key = crs.to_wkt()
        if key not in indexed:
            points = labels.geometry.to_crs(key)
            x, y = points.x.to_numpy(), points.y.to_numpy()
            indexed[key] = (x, y, shapely.STRtree(shapely.points(x, y)))
        x, y, tree = indexed[key]
        near = tree.query(shapely.box(*array_bounds(height, width, transform)))
        near = np.sort(near[~taken[near]])
        rows, cols, on = pixel_positions(transform, (height, width), x[near], y[near])
        if on.any():
            found.append((chip, near[on], rows[on], cols[on], abs(transform.a)))
            taken[near[on]] = True
    check_all_placed(labels, taken, source)
    chips, index, rows, cols, pixel_m = zip(*found, strict=True) if found else ([],) * 5
    counts = [len(i) for i in index]
    columns = (np.concatenate(a) if a else np.zeros(0, int) for a in (index, rows, cols))
    return split_frame(labels, chips, counts, *columns, np.repeat(pixel_m, counts))


def write_chip_labels(root: Path | str, split: str, placed: Mapping[str, Any]) -> None:
    """Write each chip's placed labels as its `{chip}_labels.csv`, atomically."""
    folder = labels_folder(root, split)
    folder.mkdir(parents=True, exist_ok=True)
    for chip, frame in placed.items():
        columns = [*LABEL_FIELDS, "lon", "lat", "date", "source"]
        with replacing(chip_labels_path(root, chip, split)) as tmp:
            frame[columns].to_csv(tmp, index=False)


def label_array(frame: Any) -> np.ndarray:
    """float32 `[K, 5]` of a chip's labels (`LABEL_FIELDS`; an unknown se is NaN)."""
    return frame[list(LABEL_FIELDS)].to_numpy(np.float32)


def read_chip_labels(root: Path | str, split: str, chip_ids: Sequence[str]) -> dict[str, Any]:
    """The labels of `chip_ids` kept in the root (`labels_folder`), as `label_array`s; a chip
    without a labels file has none."""
    pandas = require("pandas", "labels")
    out = {}
    for chip in chip_ids:
        path = chip_labels_path(root, chip, split)
        if path.is_file():
            try:
                out[chip] = label_array(pandas.read_csv(path))
            except (ValueError, KeyError) as exc:
                raise DataError(f"{path}: not a chip labels file ({exc})") from None
    return out


def has_chip_labels(root: Path | str, split: str) -> bool:
    """Whether the root's chips carry labels (`agbm chips` made them, or a user placed them)."""
    return labels_folder(root, split).is_dir()
