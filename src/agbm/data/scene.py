"""A scene of the user's own imagery: 12 monthly S1 and S2 images on one grid, read by window.

Input: the 12 monthly Sentinel-1 and Sentinel-2 images of the scene, in the units, band
order and no-data conventions of the BioMassters chips (see `agbm.data`), months running
from 00 = September to 11 = August. Each satellite comes in one of two forms:

* a band stack: one GeoTIFF holding all months, month-major (month 0's bands, then month
  1's, ...). S1: 48 bands = 12 x (VV_asc, VH_asc, VV_desc, VH_desc), backscatter in dB,
  -9999 = no data. S2: 132 bands = 12 x (B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12, CLP),
  reflectance x 10,000 and cloud probability (CLP) 0..100; CLP 255 = no data, and a pixel
  whose bands are all 0 (a zero-filled month) is no data too.
* per-month files: a path pattern containing ``{MM}``, e.g. ``scene/S2_{MM}.tif``, filled
  with 00 ... 11; 4 (S1) or 11 (S2) bands per file, as above. A missing file is a missing
  month, as in the challenge data.

The two satellites may use different forms. All files must share one grid (size, CRS and
transform): reproject beforehand (e.g. with gdalwarp), as silently resampling here would
hide a misregistration. A month counts as present in a window when its S1 or S2 holds data
there, so a month with no data anywhere (missing files, or an empty month in a stack) is
absent everywhere, exactly as a missing file is in training.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from affine import Affine
from rasterio.io import DatasetReader
from rasterio.windows import Window

from agbm.data.bands import MONTHS, S1, S2, Sensor
from agbm.data.calendar import tagged_year
from agbm.data.conventions import AGBM_CONVENTIONS, InputConventions
from agbm.data.geotiff import as_sensor_dtype, open_raster, read_window
from agbm.data.normalise import normalise
from agbm.errors import DataError

#: The placeholder that marks a per-month file pattern.
MONTH_FIELD = "{MM}"


class MonthlyImages:
    """One satellite's 12 months, from a band stack or per-month files, read by window."""

    def __init__(self, spec: str | Path, sensor: Sensor, files: contextlib.ExitStack) -> None:
        self.sensor = sensor
        self.stack: tuple[Path, DatasetReader] | None = None
        self.months: list[tuple[Path, DatasetReader] | None] = []
        bands = sensor.count
        if MONTH_FIELD not in str(spec):
            what = (
                f"{sensor.name} stack: {MONTHS} months x {bands} bands, month-major; "
                f"per-month files need a {MONTH_FIELD} pattern"
            )
            self.stack = (Path(spec), open_raster(Path(spec), MONTHS * bands, files, what))
            return
        what = f"one month of {sensor.name}"
        for month in range(MONTHS):
            path = Path(str(spec).replace(MONTH_FIELD, f"{month:02d}"))
            src = open_raster(path, bands, files, what) if path.is_file() else None
            self.months.append((path, src) if src is not None else None)
        if not any(self.months):
            raise DataError(f"{spec}: no {sensor.name} file for any month {MONTH_FIELD}=00..11")

    @property
    def files(self) -> list[tuple[Path, DatasetReader]]:
        """Every open file with its path."""
        return [self.stack] if self.stack else [f for f in self.months if f]

    def read(self, window: Window) -> list[np.ndarray | None]:
        """Raw `[bands, h, w]` of each month in the window, in the sensor's layout dtype
        (None: no file for that month)."""
        if self.stack:
            path, src = self.stack
            raw = as_sensor_dtype(read_window(path, src, window), self.sensor, path)
            return list(raw.reshape(MONTHS, self.sensor.count, *raw.shape[1:]))
        return [
            None if f is None else as_sensor_dtype(read_window(*f, window), self.sensor, f[0])
            for f in self.months
        ]


def _same_transform(a: Affine, b: Affine) -> bool:
    """Equal to a thousandth of a pixel: tools write one grid with different float noise."""
    pixel = min(math.hypot(a.a, a.d), math.hypot(a.b, a.e))
    return a.almost_equals(b, precision=1e-3 * pixel)


def _check_one_grid(files: Sequence[tuple[Path, DatasetReader]]) -> None:
    """Raise a `DataError` naming the first file whose size, CRS or transform differs."""
    (first, ref), *others = files
    for path, src in others:
        checks = (
            ("size", src.shape, ref.shape, src.shape == ref.shape),
            ("CRS", src.crs, ref.crs, src.crs == ref.crs),
            (
                "transform",
                tuple(src.transform)[:6],
                tuple(ref.transform)[:6],
                _same_transform(ref.transform, src.transform),
            ),
        )
        for what, theirs, ours, same in checks:
            if not same:
                raise DataError(
                    f"{path}: {what} {theirs} differs from {ours} of {first}; all S1 and S2 "
                    "images must share one grid (reproject them, e.g. with gdalwarp)"
                )


class Scene:
    """The S1 and S2 months of one scene on their common grid, read as normalised windows."""

    def __init__(self, s1: MonthlyImages, s2: MonthlyImages) -> None:
        self.sources = (s1, s2)
        #: Every open file of the scene, with its path.
        self.files = s1.files + s2.files
        _check_one_grid(self.files)
        ref = self.files[0][1]
        self.height, self.width = ref.shape
        self.crs, self.transform = ref.crs, ref.transform
        self.year = _one_year(self.files)

    def read(
        self,
        row: int,
        col: int,
        out: np.ndarray,
        conventions: InputConventions = AGBM_CONVENTIONS,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fill `out` (zeros, `[12, 15, h, w]`) with the window whose top-left pixel is (`row`,
        `col`), normalised by `conventions`; return `present` bool `[12]`, the months holding
        data there, and `observed` bool `[h, w]`, the pixels with an observation in any month
        (False in the padding).

        Where the window hangs over the scene's bottom or right edge (only in a scene smaller
        than a window), the scene is mirrored into it, giving the model plausible context.
        """
        h, w = min(out.shape[-2], self.height - row), min(out.shape[-1], self.width - col)
        window = Window(col, row, w, h)
        acquired = np.zeros((len(self.sources), MONTHS), dtype=bool)
        observed = np.zeros(out.shape[-2:], dtype=bool)
        stacks = []
        for index, source in enumerate(self.sources):
            sensor = source.sensor
            stack = np.zeros((MONTHS, sensor.count, h, w), dtype=sensor.dtype)
            for month, raw in enumerate(source.read(window)):
                seen = sensor.observed(raw) if raw is not None else None
                if seen is not None and seen.any():
                    stack[month], acquired[index, month] = raw, True
                    observed[:h, :w] |= seen
            stacks.append(torch.from_numpy(stack))
        out[..., :h, :w] = normalise(*stacks, torch.from_numpy(acquired), conventions).numpy()
        present = acquired.any(axis=0)
        if (h, w) != out.shape[-2:]:
            pad = ((0, 0), (0, 0), (0, out.shape[-2] - h), (0, out.shape[-1] - w))
            out[:] = np.pad(out[..., :h, :w], pad, mode="reflect")
        return present, observed


@contextlib.contextmanager
def open_scene(s1: str | Path, s2: str | Path) -> Iterator[Scene]:
    """Open a scene's S1 and S2 (stacks or `{MM}` patterns), checking bands and grid."""
    with contextlib.ExitStack() as files:
        yield Scene(MonthlyImages(s1, S1, files), MonthlyImages(s2, S2, files))


def _one_year(files: list[tuple[Path, DatasetReader]]) -> int | None:
    """The year the scene's files are tagged with (agbm's composed stacks are), None when
    none is; a one-line `DataError` naming two files of different years."""
    known = [(path, tagged_year(src.tags(), path)) for path, src in files]
    known = [(path, year) for path, year in known if year is not None]
    for path, year in known[1:]:
        if year != known[0][1]:
            raise DataError(
                f"{path} is of {year} and {known[0][0]} of {known[0][1]}: a scene is one "
                "year's months"
            )
    return known[0][1] if known else None
