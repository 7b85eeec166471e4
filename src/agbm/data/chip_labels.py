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

from agbm.data.bands import MONTHS
from agbm.data.layout import features_path
from agbm.errors import DataError
from agbm.extras import require
from agbm.io import replacing

#: What a chip's labels tensor holds, column by column (`label_array`).
LABEL_FIELDS = ("row", "col", "radius_px", "agbd", "agbd_se")


def labels_folder(root: Path | str, split: str) -> Path:
    """Where a data root keeps its chips' labels."""
    return Path(root) / f"{split}_labels"


def chip_labels_path(root: Path | str, chip_id: str, split: str) -> Path:
    return labels_folder(root, split) / f"{chip_id}_labels.csv"


def chip_grid(root: Path | str, chip_id: str, split: str) -> tuple[Any, Any, tuple[int, int]]:
    """(CRS, transform, (height, width)) of a chip, from the first of its GeoTIFFs there is."""
    rasterio = require("rasterio", "labels")
    for month in range(MONTHS):
        for satellite in ("S2", "S1"):
            path = features_path(root, chip_id, satellite, month, split)
            if path.is_file():
                with rasterio.open(path) as src:
                    if src.crs is None:
                        raise DataError(f"{path}: has no CRS, so no label can be placed on it")
                    return src.crs, src.transform, src.shape
    raise DataError(f"chip {chip_id}: no GeoTIFF in {Path(root) / f'{split}_features'}")


def place_labels(
    labels: Any, grids: Mapping[str, tuple[Any, Any, tuple[int, int]]], source: Path | str
) -> dict[str, Any]:
    """Each chip's labels (a DataFrame of `LABEL_FIELDS` and the label's own columns) from a
    labels frame (`agbm.data.labels`) and the chips' `grids` (`chip_grid`); a label on two
    chips goes to the first. A label outside every chip is a one-line `DataError` naming
    `source`, the labels file: it would silently teach nothing."""
    placed, taken = {}, np.zeros(len(labels), bool)
    by_crs: dict[Any, Any] = {}
    for chip, (crs, transform, (height, width)) in grids.items():
        key = crs.to_wkt()
        if key not in by_crs:
            by_crs[key] = labels.to_crs(crs.to_wkt())
        xy = by_crs[key].geometry
        cols, rows = ~transform @ (xy.x.to_numpy(), xy.y.to_numpy())
        on = ~taken & (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        if on.any():
            frame = labels[on].drop(columns="geometry")
            placed[chip] = frame.assign(
                row=rows[on], col=cols[on], radius_px=frame["radius_m"] / abs(transform.a),
                lon=labels.geometry.x[on], lat=labels.geometry.y[on],
            )  # fmt: skip
            taken |= on
    if not taken.all():
        first = int(np.flatnonzero(~taken)[0])
        point = labels.geometry.iloc[first]
        raise DataError(
            f"{source}: label {first} at {point.x:.5f} E, {point.y:.5f} N lies outside every "
            f"chip ({int((~taken).sum())} such labels); give labels on the chips only"
        )
    return placed


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
