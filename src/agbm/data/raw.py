"""Reading the layout's GeoTIFFs: one chip's raw months, its target, a prediction.

Everything that is wrong with the files raises :class:`DataError` naming the file and the
fault: a model trained on silently patched garbage is worse than a run that stops.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.crs

from agbm.data.bands import MONTHS, SENSORS
from agbm.data.conventions import AGBM_CONVENTIONS, InputConventions
from agbm.data.geotiff import as_sensor_dtype, read_raster
from agbm.data.layout import (
    check_split,
    features_path,
    has_targets,
    list_chips,
    prediction_path,
    target_path,
)
from agbm.errors import DataError


@dataclass(frozen=True)
class RawChip:
    """A chip's 12 months as its files hold them (months without a file are zeros).

    This, not the normalised image, is what the loaders move: the uint16 S2 bands take half
    the bytes of float32, and normalising on the training device (`normalise`) takes no CPU
    time in the loader workers.
    """

    s1: np.ndarray  # float32 [12, 4, H, W], dB, -9999 = no data
    s2: np.ndarray  # uint16 [12, 11, H, W], CLP 255 = no data
    acquired: np.ndarray  # bool [2, 12]: which S1 / S2 monthly files exist

    @property
    def present(self) -> np.ndarray:
        """bool `[12]`: months with an S1 or an S2 file."""
        return self.acquired.any(axis=0)


def read_raw_chip(root: Path | str, chip_id: str, split: str = "train") -> RawChip:
    """Read one chip's 12 months of S1 and S2 files, checking each file; a file whose size
    differs from most of the chip's files is the one named."""
    root = Path(root)
    check_split(root, split)
    rasters: dict[tuple[int, int], np.ndarray] = {}
    paths: dict[tuple[int, int], Path] = {}
    for month in range(MONTHS):
        for index, sensor in enumerate(SENSORS):
            path = features_path(root, chip_id, sensor.name, month, split)
            if path.is_file():
                raw = as_sensor_dtype(read_raster(path, sensor.count), sensor, path)
                rasters[index, month], paths[index, month] = raw, path
    if not rasters:
        raise DataError(
            f"chip {chip_id}: no S1 or S2 file for any month in {root / f'{split}_features'}"
        )
    sizes = collections.Counter(r.shape[1:] for r in rasters.values())
    size, count = sizes.most_common(1)[0]
    for key, raster in rasters.items():
        if raster.shape[1:] != size:
            raise DataError(
                f"{paths[key]}: size {raster.shape[1:]} differs from the {size} of "
                f"{count} other file(s) of chip {chip_id}"
            )
    acquired = np.zeros((len(SENSORS), MONTHS), dtype=bool)
    stacks = []
    for index, sensor in enumerate(SENSORS):
        stack = np.zeros((MONTHS, sensor.count, *size), dtype=sensor.dtype)
        for month in range(MONTHS):
            if (index, month) in rasters:
                stack[month], acquired[index, month] = rasters[index, month], True
        stacks.append(stack)
    return RawChip(*stacks, acquired)


def read_chip(
    root: Path | str,
    chip_id: str,
    split: str = "train",
    conventions: InputConventions = AGBM_CONVENTIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Read and normalise one chip's 12 months.

    Returns `image` float32 `[12, 15, H, W]` (S1 bands then S2 bands, each in [0, 1] with the
    default conventions, no data as 0) and `present` bool `[12]`, False for a month with
    neither S1 nor S2 file (its image is all zeros). A month with only one of the two has the
    other's bands at 0. Normalising is torch's work, imported here: reading a chip's files
    (`read_raw_chip`, what `agbm chips` and the labels wing do) loads no torch.
    """
    import torch

    from agbm.data.normalise import normalise

    chip = read_raw_chip(root, chip_id, split)
    arrays = (torch.from_numpy(a) for a in (chip.s1, chip.s2, chip.acquired))
    image = normalise(*arrays, conventions)
    return image.numpy(), chip.present


def read_target(root: Path | str, chip_id: str, split: str = "train") -> np.ndarray:
    """A chip's AGBM target, float32 `[H, W]` in t/ha."""
    path = target_path(root, chip_id, split)
    if not path.is_file():
        raise DataError(f"{path}: target file missing for chip {chip_id}")
    return read_raster(path, 1)[0].astype(np.float32, copy=False)


def read_prediction(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A prediction file's AGBM `[H, W]`, checked: one finite band of the chip's `shape`."""
    if not path.is_file():
        raise DataError(f"{path}: prediction missing")
    return read_raster(path, 1, tuple(shape))[0]


def chip_prediction(pred_dir: Path, chip_id: str, shape: tuple[int, ...]) -> np.ndarray:
    """The chip's checked prediction in `pred_dir`, or a `DataError` naming the chip."""
    path = prediction_path(pred_dir, chip_id)
    if not path.is_file():
        raise DataError(f"chip {chip_id}: prediction {path} is missing")
    try:
        return read_prediction(path, shape)
    except DataError as exc:
        raise DataError(f"chip {chip_id}: malformed prediction: {exc}") from exc


@dataclass(frozen=True)
class RawSource:
    """A split of a raw BioMassters root (GeoTIFFs), read by `agbm.data`."""

    root: Path
    split: str

    def __post_init__(self) -> None:
        check_split(self.root, self.split)

    def chip_ids(self) -> list[str]:
        return list_chips(self.root, self.split)

    def has_targets(self) -> bool:
        return has_targets(self.root, self.split)

    def read_raw(self, chip_id: str) -> RawChip:
        return read_raw_chip(self.root, chip_id, self.split)

    def read_target(self, chip_id: str) -> np.ndarray:
        return read_target(self.root, chip_id, self.split)

    def georeference(self, chip_id: str) -> dict:
        """CRS and transform of the chip's first input file (empty when it has none)."""
        with self._first_file(chip_id) as src:
            return {"crs": src.crs, "transform": src.transform} if src.crs else {}

    def acquired(self, chip_id: str) -> np.ndarray:
        """bool `[2, 12]`: which S1 / S2 monthly files exist (nothing read)."""
        return np.array(
            [
                [
                    features_path(self.root, chip_id, sensor.name, m, self.split).is_file()
                    for m in range(MONTHS)
                ]
                for sensor in SENSORS
            ]
        )

    def has_target(self, chip_id: str) -> bool:
        return target_path(self.root, chip_id, self.split).is_file()

    def size(self, chip_id: str) -> tuple[int, int]:
        """(height, width) of the chip's first input file."""
        with self._first_file(chip_id) as src:
            return src.height, src.width

    def _first_file(self, chip_id: str) -> rasterio.DatasetReader:
        for month in range(MONTHS):
            for sensor in SENSORS:
                path = features_path(self.root, chip_id, sensor.name, month, self.split)
                if path.is_file():
                    return rasterio.open(path)
        raise DataError(f"chip {chip_id}: no S1 or S2 file for any month in {self.root}")
