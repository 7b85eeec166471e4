"""GeoTIFFs in and out: one checked read, one policy for a file's dtype, one way to write.

Reading: `open_raster` opens a file and checks its band count, `read_window` reads all its
bands (or a window of them) and refuses NaN or infinity, and every fault is a `DataError`
naming the file. `as_sensor_dtype` is the one policy for a file that stores a sensor's
values in another type than the layout's (S1 float32, S2 uint16), for chips and scenes
alike: values that type holds are kept; negative S2 reflectance (noise below zero that some
processors write, and the challenge's uint16 files hold as 0) becomes 0; anything else (a
fraction where whole numbers x 10,000 belong, a value past 65,535) is refused.

Mosaics: `write_mosaic_vrt` joins files on one grid (a region's tiles) into one GDAL VRT.

Writing: `write_geotiff` writes every raster agbm makes (maps, composed months, synthetic
chips) through `agbm.io.replacing`, tiled and deflate-compressed where the raster is large
enough for tiles to matter, with its no-data value, band names and tags; `cog=True` makes a
cloud-optimised GeoTIFF (GDAL's COG driver, with overviews) for a map meant to be viewed.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import rasterio
import rasterio.crs
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from agbm.data.bands import Sensor
from agbm.errors import DataError, reason
from agbm.extras import require
from agbm.io import replacing, temporary_path

#: Tile side of the files written tiled (and the smallest raster worth tiling).
TILE = 256


def open_raster(
    path: Path, bands: int, files: contextlib.ExitStack, what: str = ""
) -> DatasetReader:
    """Open a GeoTIFF (closed with `files`), checking it exists and has `bands` bands;
    `what` says what the file should hold, for the message. GDAL would list the file's
    folder on each open, looking for sidecar files that chips and stacks do not have; a
    challenge folder holds every chip's files (~200,000 in train_features), and the listing
    took half of a chip's read (docs/benchmarks.md, "Data loading")."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with warnings.catch_warnings(), rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = files.enter_context(rasterio.open(path))
    except RasterioError as exc:
        raise DataError(f"{path}: unreadable GeoTIFF ({reason(exc)})") from None
    if src.count != bands:
        extra = f" ({what})" if what else ""
        raise DataError(f"{path}: has {src.count} band(s), expected {bands}{extra}")
    return src


def open_map(path: Path | str) -> DatasetReader:
    """A map (an agbm map or region VRT, or any program's raster) opened for reading, or a
    one-line `DataError` naming it."""
    try:
        return rasterio.open(path)
    except RasterioError as exc:
        raise DataError(f"{path}: not a readable map ({reason(exc)})") from None


def agbm_band(src: DatasetReader) -> Any:
    """The AGBM band (band 1) of an open map (`open_map`'s) as exactextract's raster: a map
    with bounds or the spread has more bands, which exactextract would otherwise sum each.
    A read that fails (a truncated file) is a one-line `DataError` naming the map."""
    exactextract = require("exactextract", "labels")

    class Band(exactextract.raster.RasterioRasterSource):
        def read_window(self, x0: int, y0: int, nx: int, ny: int) -> Any:
            try:
                return super().read_window(x0, y0, nx, ny)
            except RasterioError as exc:
                fault = f"{src.name}: unreadable or truncated map ({reason(exc)})"
                raise DataError(fault) from None

    return Band(src, band_idx=1)


def read_window(path: Path, src: DatasetReader, window: Window | None = None) -> np.ndarray:
    """All bands `[bands, h, w]` of `src` (or of one window), with read errors and
    non-finite values named by file."""
    try:
        raw = src.read(window=window)
    except RasterioError as exc:
        raise DataError(f"{path}: unreadable or truncated GeoTIFF ({reason(exc)})") from None
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        where = (
            ""
            if window is None
            else f" in rows {window.row_off}...{window.row_off + window.height}, columns "
            f"{window.col_off}...{window.col_off + window.width}"
        )
        raise DataError(
            f"{path}: NaN or infinite values{where} (mark no data as -9999 in S1, CLP 255 in S2)"
        )
    return raw


def read_raster(path: Path, bands: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """A whole GeoTIFF as `[bands, H, W]`, checked: band count, size (when given), finite."""
    with contextlib.ExitStack() as files:
        array = read_window(path, open_raster(path, bands, files))
    if size is not None and array.shape[1:] != tuple(size):
        raise DataError(f"{path}: size {array.shape[1:]} differs from the chip's {tuple(size)}")
    return array


def as_sensor_dtype(raw: np.ndarray, sensor: Sensor, path: Path) -> np.ndarray:
    """`raw` in `sensor`'s layout dtype by the one policy of this module's docstring, or a
    `DataError` naming the file and what its values cannot be."""
    dtype = sensor.dtype
    if raw.dtype == dtype or raw.size == 0:
        return raw.astype(dtype, copy=False)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        whole = np.issubdtype(raw.dtype, np.integer) or bool((raw == np.round(raw)).all())
        if whole and raw.max() <= info.max:
            return np.clip(raw, info.min, None).astype(dtype)  # below-zero reflectance: 0
        wanted = f"whole numbers 0..{info.max} (reflectance x 10,000)"
    else:
        limit = 2**24 if np.issubdtype(raw.dtype, np.integer) else np.finfo(dtype).max
        if np.abs(raw).max() <= limit:
            return raw.astype(dtype)
        wanted = f"{dtype} values"
    raise DataError(
        f"{path}: its {raw.dtype} values cannot all be held as {sensor.name}'s {wanted}"
    )


def geotiff_profile(
    shape: tuple[int, int],
    count: int,
    dtype: str | np.dtype,
    crs: Any = None,
    transform: Any = None,
    nodata: float | None = None,
    tiled: bool | None = None,
) -> dict[str, Any]:
    """The creation options of every GeoTIFF agbm writes: tiled and deflate-compressed
    (floating-point predictor for floats), BigTIFF when needed, once the raster spans a
    tile (`tiled` None) or when asked (`tiled` True); plain strips with `tiled` False, as
    the challenge's own chip files are. Georeferenced when `crs` and `transform` are given."""
    dtype = np.dtype(dtype)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": shape[0],
        "width": shape[1],
        "count": count,
        "dtype": dtype.name,
        "nodata": nodata,
    }
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    if tiled or (tiled is None and min(shape) >= TILE):
        profile.update(
            tiled=True,
            blockxsize=TILE,
            blockysize=TILE,
            compress="deflate",
            predictor=3 if dtype.kind == "f" else 2,
            BIGTIFF="IF_SAFER",
        )
    return profile


def describe(
    dst: Any, band_names: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
) -> None:
    """Name an open file's bands and add its tags (what a reader of the file sees)."""
    for index, name in enumerate(band_names or (), start=1):
        dst.set_band_description(index, name)
    if tags:
        dst.update_tags(**tags)


@contextlib.contextmanager
def geotiff_writer(
    path: Path,
    profile: dict[str, Any],
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    cog: bool = False,
) -> Any:
    """An open GeoTIFF to write into piece by piece (`dst.write(..., window=...)`), renamed
    onto `path` only when the block completes; with `cog`, turned into a cloud-optimised
    GeoTIFF (GDAL's COG driver, deflate, overviews) before the rename."""
    path = Path(path)
    with replacing(path) as tmp:
        # The plain file the COG is copied from: a temporary too, removed like any other.
        first = temporary_path(path.with_name(f"{path.name}.part")) if cog else tmp
        try:
            with rasterio.open(first, "w", **profile) as dst:
                describe(dst, band_names, tags)
                yield dst
            if cog:
                predictor = 3 if np.dtype(profile["dtype"]).kind == "f" else 2
                rasterio.shutil.copy(
                    first,
                    tmp,
                    driver="COG",
                    compress="DEFLATE",
                    predictor=predictor,
                    blocksize=TILE,
                    BIGTIFF="IF_SAFER",
                )
        finally:
            if cog:
                first.unlink(missing_ok=True)


def write_geotiff(
    path: Path,
    array: np.ndarray,
    crs: Any = None,
    transform: Any = None,
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    cog: bool = False,
    tiled: bool | None = None,
) -> None:
    """Write `array` `[bands, H, W]` (or `[H, W]`) as a GeoTIFF, atomically (see
    `geotiff_writer` and `geotiff_profile`)."""
    array = array[None] if array.ndim == 2 else array
    shape, count = array.shape[1:], array.shape[0]
    profile = geotiff_profile(shape, count, array.dtype, crs, transform, nodata, tiled)
    with geotiff_writer(path, profile, band_names, tags, cog) as dst:
        dst.write(array)


#: GDAL's names of the raster types agbm writes.
_GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32"}


@dataclass(frozen=True)
class MosaicPart:
    """One file of a mosaic and where it lies in it: its top-left pixel (row, col)."""

    path: Path
    row: int
    col: int
    height: int
    width: int


def write_mosaic_vrt(
    path: Path,
    parts: Sequence[MosaicPart],
    shape: tuple[int, int],
    crs: Any,
    transform: Any,
    count: int,
    dtype: str | np.dtype,
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """A GDAL VRT mosaic of `parts` (files on one grid, each at its place) over a raster of
    `shape`, atomically: what GDAL, rasterio and QGIS open as one file, with no pixel
    copied. Paths are stored relative to the VRT, so the folder can move; pixels no part
    covers are `nodata`; `tags` are the dataset's metadata. (GDAL's gdalbuildvrt does this;
    its command line and Python bindings are not among agbm's dependencies, and the format
    is a short XML.)"""
    path = Path(path)
    root = ElementTree.Element("VRTDataset", rasterXSize=str(shape[1]), rasterYSize=str(shape[0]))
    if tags:
        metadata = ElementTree.SubElement(root, "Metadata")
        for key, value in tags.items():
            ElementTree.SubElement(metadata, "MDI", key=key).text = value
    ElementTree.SubElement(root, "SRS").text = rasterio.crs.CRS.from_user_input(crs).to_wkt()
    a, b, c, d, e, f = tuple(transform)[:6]
    ElementTree.SubElement(root, "GeoTransform").text = ", ".join(map(repr, (c, a, b, f, d, e)))
    kind = _GDAL_TYPES[np.dtype(dtype).name]
    for band in range(1, count + 1):
        node = ElementTree.SubElement(root, "VRTRasterBand", dataType=kind, band=str(band))
        if nodata is not None:
            ElementTree.SubElement(node, "NoDataValue").text = repr(float(nodata))
        if band_names:
            ElementTree.SubElement(node, "Description").text = band_names[band - 1]
        for part in parts:
            source = ElementTree.SubElement(
                node, "ComplexSource" if nodata is not None else "SimpleSource"
            )
            name = os.path.relpath(part.path, path.parent)
            ElementTree.SubElement(source, "SourceFilename", relativeToVRT="1").text = name
            ElementTree.SubElement(source, "SourceBand").text = str(band)
            size = {"xSize": str(part.width), "ySize": str(part.height)}
            ElementTree.SubElement(source, "SrcRect", xOff="0", yOff="0", **size)
            ElementTree.SubElement(
                source, "DstRect", xOff=str(part.col), yOff=str(part.row), **size
            )
            if nodata is not None:
                ElementTree.SubElement(source, "NODATA").text = repr(float(nodata))
    with replacing(path) as tmp:
        ElementTree.ElementTree(root).write(tmp, encoding="unicode")
