"""`agbm predict-scene`: one AGBM map of a whole scene of your own imagery, by sliding windows.

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

The model saw 256 x 256 chips, so the scene is predicted in overlapping windows. A CNN
sees least context at a window's edges, so each window's prediction is weighted by a taper
that falls smoothly towards its edges (but not at the scene's border, where no neighbour
takes over), and the weighted sum is divided by the summed weights: no seams show where
windows meet. Windows in which no month has any data are skipped.

Memory does not grow with the scene's height: windows are read with windowed reads and
predicted in raster order; the weighted sums live in a strip one window plus one output
block tall across the scene's width (512 rows x 10,980 columns of float32 sums and weights,
~45 MB, for a whole Sentinel-2 tile); rows that no later window touches are written out as
soon as they are final.

Usage::

    agbm predict-scene --s1 scene/S1.tif --s2 'scene/S2_{MM}.tif' --checkpoint model.pt \\
        --out scene/agbm.tif [--window 256] [--overlap 64] [--tta flips] [--batch-size 8]

Output: float32 AGBM (t/ha, >= 0) on the input grid, a tiled (256 x 256), deflate-
compressed GeoTIFF written under a temporary name and renamed when complete. Pixels with no
observation in any month (S1 -9999 and S2 without data in all 12) are NaN, the file's no-data
value: the model would only invent biomass there.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.windows import Window
from tqdm import tqdm

from agbm.data import (
    AGBM_CONVENTIONS,
    CHANNELS,
    MONTHS,
    RAW_DTYPES,
    S1_BANDS,
    S1_NODATA,
    S2_BANDS,
    S2_NODATA_CLOUD,
    DataError,
    InputConventions,
    normalise,
)
from agbm.io import output_folder, remove_stale_temporaries, replacing
from agbm.predict import (
    TTA,
    add_inference_options,
    load_for_inference,
    predict_batch,
    shared_conventions,
)
from agbm.runtime import autocast_dtype

#: The placeholder that marks a per-month file pattern.
MONTH_FIELD = "{MM}"
#: Window sides must be multiples of the encoder's total stride.
WINDOW_MULTIPLE = 32
#: Output tile side; finished rows are written in whole rows of tiles, so that each
#: compressed tile is written once.
BLOCK = 256

#: `image` float32 `[B, 12, 15, h, w]` and `present` bool `[B, 12]` (CPU tensors) -> AGBM
#: `[B, 1, h, w]`: the model as an argument, so that the engine runs with any predictor.
Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
T = TypeVar("T")


# --- input --------------------------------------------------------------------------------------


def _s1_observed(raw: np.ndarray) -> np.ndarray:
    """bool `[h, w]`: the pixels of an S1 image `[4, h, w]` with any band not -9999."""
    return (raw != S1_NODATA).any(axis=0)


def _s2_observed(raw: np.ndarray) -> np.ndarray:
    """bool `[h, w]`: the pixels of an S2 image `[11, h, w]` with data: CLP not 255 and not all
    bands 0 (stacks often fill a missing month with zeros)."""
    return (raw[-1] != S2_NODATA_CLOUD) & raw.any(axis=0)


@dataclass(frozen=True)
class Satellite:
    """How one satellite's bands are read: how many, in which dtype, when a month has data."""

    name: str
    bands: int
    dtype: np.dtype
    #: The pixels of a month's image `[bands, h, w]` that hold an observation.
    observed: Callable[[np.ndarray], np.ndarray]

    def as_raw(self, raw: np.ndarray) -> np.ndarray:
        """`raw` in the layout's dtype; a user's float or signed S2 is clipped to the uint16
        range first (negative reflectance, which some processors write, becomes 0)."""
        if np.issubdtype(self.dtype, np.integer) and raw.dtype != self.dtype:
            limits = np.iinfo(self.dtype)
            raw = np.clip(raw, limits.min, limits.max)
        return raw.astype(self.dtype, copy=False)


S1 = Satellite("S1", len(S1_BANDS), RAW_DTYPES["S1"], _s1_observed)
S2 = Satellite("S2", len(S2_BANDS), RAW_DTYPES["S2"], _s2_observed)


def _open(path: Path, bands: int, what: str, files: contextlib.ExitStack) -> DatasetReader:
    """Open a GeoTIFF (closed with `files`), checking it exists and has `bands` bands."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        src = files.enter_context(rasterio.open(path))
    except RasterioError as exc:
        raise DataError(f"{path}: unreadable GeoTIFF ({exc})") from exc
    if src.count != bands:
        raise DataError(f"{path}: has {src.count} band(s), expected {bands} ({what})")
    return src


def _read(path: Path, src: DatasetReader, window: Window) -> np.ndarray:
    """One window of all bands, with read errors and non-finite values named by file."""
    try:
        raw = src.read(window=window)
    except RasterioError as exc:
        raise DataError(f"{path}: unreadable or truncated GeoTIFF ({exc})") from exc
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        raise DataError(
            f"{path}: NaN or infinite values in rows {window.row_off}..."
            f"{window.row_off + window.height}, columns {window.col_off}..."
            f"{window.col_off + window.width} (mark no data as -9999 in S1, CLP 255 in S2)"
        )
    return raw


class MonthlyImages:
    """One satellite's 12 months, from a band stack or per-month files, read by window."""

    def __init__(self, spec: str | Path, satellite: Satellite, files: contextlib.ExitStack) -> None:
        self.satellite = satellite
        self.stack: tuple[Path, DatasetReader] | None = None
        self.months: list[tuple[Path, DatasetReader] | None] = []
        bands = satellite.bands
        if MONTH_FIELD not in str(spec):
            what = (
                f"{satellite.name} stack: {MONTHS} months x {bands} bands, month-major; "
                f"per-month files need a {MONTH_FIELD} pattern"
            )
            self.stack = (Path(spec), _open(Path(spec), MONTHS * bands, what, files))
            return
        what = f"one month of {satellite.name}"
        for month in range(MONTHS):
            path = Path(str(spec).replace(MONTH_FIELD, f"{month:02d}"))
            self.months.append((path, _open(path, bands, what, files)) if path.is_file() else None)
        if not any(self.months):
            raise DataError(f"{spec}: no {satellite.name} file for any month {MONTH_FIELD}=00..11")

    @property
    def files(self) -> list[tuple[Path, DatasetReader]]:
        """Every open file with its path."""
        return [self.stack] if self.stack else [f for f in self.months if f]

    def read(self, window: Window) -> list[np.ndarray | None]:
        """Raw `[bands, h, w]` of each month in the window (None: no file for that month)."""
        if self.stack:
            raw = _read(*self.stack, window)
            return list(raw.reshape(MONTHS, self.satellite.bands, *raw.shape[1:]))
        return [None if f is None else _read(*f, window) for f in self.months]


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
        files = s1.files + s2.files
        _check_one_grid(files)
        ref = files[0][1]
        self.height, self.width = ref.shape
        self.crs, self.transform = ref.crs, ref.transform

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
            sat = source.satellite
            stack = np.zeros((MONTHS, sat.bands, h, w), dtype=sat.dtype)
            for month, raw in enumerate(source.read(window)):
                seen = sat.observed(raw) if raw is not None else None
                if seen is not None and seen.any():
                    stack[month], acquired[index, month] = sat.as_raw(raw), True
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


# --- windows and blending -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiling:
    """The windows over a `shape` (height, width) scene: `size` (h, w), top-left corners
    `rows` x `cols`, neighbours overlapping by at least `overlap`."""

    shape: tuple[int, int]
    size: tuple[int, int]
    overlap: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    def corners(self) -> list[tuple[int, int]]:
        """Top-left pixels of all windows, in raster order (the order blending relies on)."""
        return [(r, c) for r in self.rows for c in self.cols]

    def weights(self, row: int, col: int) -> np.ndarray:
        """Blending weights of the window at (`row`, `col`), cropped to the scene: tapered
        towards each side that lies inside the scene, flat towards the scene's border."""
        (height, width), (h, w) = self.shape, self.size
        rows = taper(h, self.overlap, row > 0, row + h < height)[: height - row]
        cols = taper(w, self.overlap, col > 0, col + w < width)[: width - col]
        return np.outer(rows, cols)


def _starts(length: int, size: int, stride: int) -> tuple[int, ...]:
    """Window starts along one axis, from 0 to `length - size` in equal steps of at most
    `stride`: equal overlaps keep every window edge inside a neighbour's full-weight middle
    (a last window merely moved back to the edge could overlap its neighbour by nearly all
    of it, putting that neighbour's edge in its ramp)."""
    if length <= size:
        return (0,)
    steps = math.ceil((length - size) / stride)
    return tuple(round(k * (length - size) / steps) for k in range(steps + 1))


def plan_tiling(height: int, width: int, window: int = 256, overlap: int = 64) -> Tiling:
    """Windows of `window` pixels overlapping by at least `overlap` over a `height x width` scene.

    Along a side shorter than `window` the window shrinks to the side rounded up to a multiple
    of 32: a small scene costs no more than its own size.
    """
    if window <= 0 or window % WINDOW_MULTIPLE:
        raise ValueError(f"--window must be a positive multiple of {WINDOW_MULTIPLE}, not {window}")
    if not 0 <= overlap < window:
        raise ValueError(
            f"--overlap must be in 0..{window - 1} (less than --window), not {overlap}"
        )
    stride = window - overlap
    h, w = (min(window, math.ceil(n / WINDOW_MULTIPLE) * WINDOW_MULTIPLE) for n in (height, width))
    rows, cols = _starts(height, h, stride), _starts(width, w, stride)
    return Tiling((height, width), (h, w), overlap, rows, cols)


def taper(size: int, overlap: int, start: bool = True, end: bool = True) -> np.ndarray:
    """1-D window weights `[size]`: raised-cosine ramps over `overlap` pixels at the `start`
    and `end` (a side without a ramp has no neighbour to blend with and keeps full weight).

    Pixel centres sit half a pixel inside a ramp, so every weight is positive, and two windows
    overlapping by exactly `overlap` have weights summing to 1 across their overlap.
    """
    index = np.arange(size) + 0.5
    distance = np.minimum(np.where(start, index, np.inf), np.where(end, size - index, np.inf))
    ramp = np.minimum(distance / overlap, 1.0) if overlap else np.ones(size)
    return (np.sin(np.pi / 2 * ramp) ** 2).astype(np.float32)


class StripBlender:
    """Weighted prediction sums and summed weights of a horizontal strip of the scene.

    Windows must arrive in raster order: once a window starting at row r arrives, the rows
    above r are final and can be released. Since rows are released in whole output blocks,
    the strip needs `window + BLOCK` rows, whatever the scene's height.
    """

    def __init__(self, rows: int, width: int) -> None:
        self.top = 0  # scene row of the strip's first row
        self.total = np.zeros((rows, width), dtype=np.float32)
        self.weight = np.zeros((rows, width), dtype=np.float32)

    def add(self, row: int, col: int, pred: np.ndarray, weights: np.ndarray) -> None:
        """Add a window's prediction and weights `[h, w]` at scene pixel (`row`, `col`)."""
        h, w = pred.shape
        r = row - self.top
        if r < 0 or r + h > len(self.total):
            raise ValueError(f"window at row {row} is outside the strip (windows out of order?)")
        self.total[r : r + h, col : col + w] += pred * weights
        self.weight[r : r + h, col : col + w] += weights

    def release(self, until: int) -> tuple[int, np.ndarray]:
        """Blend the strip's rows above scene row `until` and drop them; returns the scene row of
        the first and the rows `[n, width]`, NaN where no window added weight."""
        top, n = self.top, until - self.top
        if n <= 0:
            return top, self.total[:0]
        weight = self.weight[:n]
        rows = np.full(weight.shape, np.nan, dtype=np.float32)
        np.divide(self.total[:n], weight, out=rows, where=weight > 0)
        for acc in (self.total, self.weight):
            acc[:-n] = acc[n:]  # NumPy copies overlapping slices correctly
            acc[-n:] = 0.0
        self.top = until
        return top, rows


# --- the engine ---------------------------------------------------------------------------------

Batch = tuple[list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray]


def _batches(
    scene: Scene, tiling: Tiling, batch_size: int, conventions: InputConventions
) -> Iterator[Batch]:
    """Corners, images `[n, 12, 15, h, w]`, present `[n, 12]` and observed pixels `[n, h, w]`
    of successive window batches."""
    corners = tiling.corners()
    for i in range(0, len(corners), batch_size):
        batch = corners[i : i + batch_size]
        image = np.zeros((len(batch), MONTHS, CHANNELS, *tiling.size), dtype=np.float32)
        reads = [
            scene.read(r, c, out, conventions) for (r, c), out in zip(batch, image, strict=True)
        ]
        present, observed = (np.stack(a) for a in zip(*reads, strict=True))
        yield batch, image, present, observed


def _prefetch(items: Iterator[T]) -> Iterator[T]:
    """`items`, each next one computed in a background thread while the caller works (windows
    are read while the model runs); reading stays in one thread, as GDAL datasets require."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _predict(
    predictor: Predictor, image: np.ndarray, present: np.ndarray, conventions: InputConventions
) -> list[np.ndarray | None]:
    """`[h, w]` predictions of a batch's windows; None for windows without any data."""
    usable = present.any(axis=1)
    preds: list[np.ndarray | None] = [None] * len(image)
    if usable.any():
        x, p = (a if usable.all() else a[usable] for a in (image, present))
        attended = conventions.attended(torch.from_numpy(p))
        agbm = predictor(torch.from_numpy(x), attended)[:, 0].float().cpu().numpy()
        for i, pred in zip(np.flatnonzero(usable), agbm, strict=True):
            preds[i] = pred
    return preds


@contextlib.contextmanager
def _output(path: Path, scene: Scene) -> Iterator[DatasetWriter]:
    """The output GeoTIFF, written under a temporary name and renamed only once complete, so an
    interrupted run never leaves a partial map under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": scene.height,
        "width": scene.width,
        "count": 1,
        "dtype": "float32",
        "nodata": float("nan"),
        "crs": scene.crs,
        "transform": scene.transform,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "predictor": 3,
        "BIGTIFF": "IF_SAFER",
    }
    with replacing(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        yield dst


def _write_rows(dst: DatasetWriter, top: int, rows: np.ndarray) -> None:
    """Write released rows `[n, width]` starting at scene row `top` (nothing when n = 0)."""
    if len(rows):
        dst.write(rows[None], window=Window(0, top, rows.shape[1], len(rows)))


def predict_scene(
    scene: Scene,
    predictor: Predictor,
    out: Path | str,
    tiling: Tiling,
    batch_size: int = 8,
    conventions: InputConventions = AGBM_CONVENTIONS,
) -> None:
    """Predict `scene` window by window with `predictor`, blend and write the map to `out`.
    The windows are made by `conventions`: those of the predictor's models."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, not {batch_size}")
    blender = StripBlender(min(tiling.size[0] + BLOCK, scene.height), scene.width)
    bar = tqdm(total=len(tiling.corners()), desc="predict-scene", unit="window")
    # closing(): on an error too, the reading thread ends before the caller closes the inputs.
    reads = contextlib.closing(_prefetch(_batches(scene, tiling, batch_size, conventions)))
    with _output(Path(out), scene) as dst, bar, reads as batches:
        for corners, image, present, observed in batches:
            preds = _predict(predictor, image, present, conventions)
            for (row, col), pred, seen in zip(corners, preds, observed, strict=True):
                _write_rows(dst, *blender.release(row // BLOCK * BLOCK))
                if pred is not None:
                    # Pixels with no observation in any month get no weight: they end NaN.
                    weights = tiling.weights(row, col)
                    h, w = weights.shape
                    blender.add(row, col, pred[:h, :w], weights * seen[:h, :w])
            bar.update(len(corners))
        _write_rows(dst, *blender.release(scene.height))


def model_predictor(
    models: Sequence[torch.nn.Module],
    device: torch.device,
    tta: str = "flips",
    amp_dtype: torch.dtype | None = None,
) -> Predictor:
    """A `Predictor` running `predict_batch` (ensemble mean, TTA, clamped >= 0) on `device`."""
    if tta not in TTA:
        raise ValueError(f"--tta must be one of {', '.join(TTA)}, not {tta!r}")

    def predict(image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return predict_batch(models, image.to(device), present.to(device), tta, amp_dtype).cpu()

    return predict


# --- command line -------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    with (
        open_scene(args.s1, args.s2) as scene,  # bad inputs fail before models load
        output_folder(args.out.parent),  # and an output that cannot be written
    ):
        remove_stale_temporaries(args.out.parent)  # a killed run's partial map
        tiling = plan_tiling(scene.height, scene.width, args.window, args.overlap)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        models = load_for_inference(args.checkpoint, device)
        predictor = model_predictor(models, device, args.tta, autocast_dtype(args.amp, device))
        conventions = shared_conventions(models)
        predict_scene(scene, predictor, args.out, tiling, args.batch_size, conventions)
    windows = len(tiling.corners())
    print(f"wrote {args.out} ({scene.height} x {scene.width} pixels, {windows} windows)")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """`agbm predict-scene`."""
    parser = subparsers.add_parser(
        "predict-scene",
        help="predict one AGBM map of a whole scene of your own imagery",
        description=(
            "Predict an AGBM map (float32 t/ha GeoTIFF, tiled and compressed, on the input "
            "grid) of a scene of any size from its 12 monthly Sentinel-1 and Sentinel-2 "
            "images, in overlapping windows blended with a smooth taper (no seams). Months run "
            "00 = September ... 11 = August; units and no-data values are those of the "
            "BioMassters chips. Memory holds a batch of windows and a strip of the scene one "
            "window tall, whatever its height. Runs on the GPU when there is one."
        ),
    )
    parser.add_argument(
        "--s1",
        required=True,
        help=(
            "Sentinel-1: a 48-band stack, month-major (12 months x VV_asc, VH_asc, VV_desc, "
            "VH_desc; dB, -9999 = no data), or a per-month pattern with {MM} (e.g. "
            "'scene/S1_{MM}.tif', 4 bands each; a missing file is a missing month)"
        ),
    )
    parser.add_argument(
        "--s2",
        required=True,
        help=(
            "Sentinel-2: a 132-band stack, month-major (12 months x B2, B3, B4, B5, B6, B7, B8, "
            "B8A, B11, B12, CLP; reflectance x 10000, cloud probability 0..100, CLP 255 or "
            "all bands 0 = no data), or a per-month pattern with {MM} (11 bands each); on the "
            "same grid as --s1"
        ),
    )
    parser.add_argument("--out", required=True, type=Path, help="output GeoTIFF")
    parser.add_argument(
        "--window",
        type=int,
        default=256,
        help=f"window side in pixels, a multiple of {WINDOW_MULTIPLE} (default 256)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=64,
        help="minimum overlap of neighbouring windows, blended with the taper (default 64)",
    )
    add_inference_options(parser, "windows")
    parser.set_defaults(func=_run)
