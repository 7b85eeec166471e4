"""One AGBM map of a whole scene of your own imagery, by sliding windows.

Input: an `agbm.data.scene.Scene` (the monthly files, in the forms described there).

The model saw 256 x 256 chips, so the scene is predicted in overlapping windows. A CNN
sees least context at a window's edges, so each window's prediction is weighted by a taper
that falls smoothly towards its edges (but not at the scene's border, where no neighbour
takes over), and the weighted sum is divided by the summed weights: no seams show where
windows meet. Windows in which no month has any data are skipped.

Memory does not grow with the scene's height: windows are read with windowed reads and
predicted in raster order; the weighted sums live in a strip one window plus one output
block tall across the scene's width (512 rows x 10,980 columns of float32 sums and weights,
~45 MB, for a whole Sentinel-2 tile, ~67 MB with the spread); rows that no later window
touches are written out as soon as they are final.

Output: float32 AGBM (t/ha, >= 0) on the input grid, a cloud-optimised GeoTIFF (256 x 256
tiles, deflate, overviews) written under a temporary name and renamed when complete. Pixels
with no observation in any month (S1 -9999 and S2 without data in all 12) are NaN, the
file's no-data value: the model would only invent biomass there. With a calibration, the
bounds are bands 2 and 3, and with several members their spread band 4, and the tags name
the model and what each band is: the `MapLayers` that `InferenceOptions.layers` decides.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from rasterio.io import DatasetWriter
from rasterio.windows import Window
from tqdm import tqdm

from agbm.choices import check_tta
from agbm.data.bands import CHANNELS, MONTHS
from agbm.data.conventions import AGBM_CONVENTIONS, InputConventions
from agbm.data.geotiff import geotiff_profile, geotiff_writer
from agbm.data.scene import Scene, open_scene
from agbm.inference.layers import MapLayers
from agbm.inference.options import InferenceOptions, check_batch_size
from agbm.inference.tiling import BLOCK, Block, BlockSums, StripBlender, Tiling, plan_tiling
from agbm.inference.tta import load_for_inference, predict_spread, shared_conventions
from agbm.io import check_output_file, output_folder, remove_stale_temporaries
from agbm.runtime import autocast_dtype, local_device

#: `image` float32 `[B, 12, 15, h, w]` and `present` bool `[B, 12]` (CPU tensors) -> AGBM
#: `[B, 1, h, w]`, or with the members' spread `[B, 2, h, w]` (`model_predictor`): the model
#: as an argument, so that the engine runs with any predictor.
Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


T = TypeVar("T")


Batch = tuple[list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray]


def _batches(
    scene: Scene,
    tiling: Tiling,
    batch_size: int,
    conventions: InputConventions,
    corners: Sequence[tuple[int, int]] | None = None,
) -> Iterator[Batch]:
    """Corners, images `[n, 12, 15, h, w]`, present `[n, 12]` and observed pixels `[n, h, w]`
    of successive window batches (of all the tiling's windows, or of `corners`)."""
    corners = tiling.corners() if corners is None else corners
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
    """`[layers, h, w]` predictions of a batch's windows (AGBM, and the spread when the
    predictor gives it); None for windows without any data."""
    usable = present.any(axis=1)
    preds: list[np.ndarray | None] = [None] * len(image)
    if usable.any():
        x, p = (a if usable.all() else a[usable] for a in (image, present))
        attended = conventions.attended(torch.from_numpy(p))
        layers = predictor(torch.from_numpy(x), attended).float().cpu().numpy()
        for i, pred in zip(np.flatnonzero(usable), layers, strict=True):
            preds[i] = pred
    return preds


def _output(
    path: Path, scene: Scene, layers: MapLayers
) -> contextlib.AbstractContextManager[DatasetWriter]:
    """The output map, written under a temporary name and renamed only once complete (an
    interrupted run never leaves a partial map under the final name), then made a
    cloud-optimised GeoTIFF with overviews: a map is for looking at, at every zoom."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape, bands = (scene.height, scene.width), layers.bands()
    nan = float("nan")
    profile = geotiff_profile(
        shape, len(bands), np.float32, scene.crs, scene.transform, nan, tiled=True
    )
    return geotiff_writer(path, profile, bands, layers.map_tags(), cog=True)


def _write_rows(dst: DatasetWriter, top: int, rows: np.ndarray, layers: MapLayers) -> None:
    """Write released rows `[layers, n, width]` starting at scene row `top` as the map's
    bands (nothing when n = 0)."""
    if rows.shape[1]:
        dst.write(layers.stack(rows), window=Window(0, top, rows.shape[2], rows.shape[1]))


def predict_scene(
    scene: Scene,
    predictor: Predictor,
    out: Path | str,
    tiling: Tiling,
    *,
    batch_size: int = 8,
    conventions: InputConventions = AGBM_CONVENTIONS,
    layers: MapLayers | None = None,
    progress: bool = False,
) -> None:
    """Predict `scene` window by window with `predictor`, blend and write the map to `out`
    with the bands and tags of `layers` (its spread needs a predictor that gives it). The
    windows are made by `conventions`: those of the predictor's models; `progress` shows a
    bar of the windows."""
    check_batch_size(batch_size)
    layers = layers or MapLayers()
    rows = min(tiling.size[0] + BLOCK, scene.height)
    blender = StripBlender(rows, scene.width, 1 + layers.spread)
    bar = tqdm(
        total=len(tiling.corners()), desc="predict-scene", unit="window", disable=not progress
    )
    # closing(): on an error too, the reading thread ends before the caller closes the inputs.
    reads = contextlib.closing(_prefetch(_batches(scene, tiling, batch_size, conventions)))
    with _output(Path(out), scene, layers) as dst, bar, reads as batches:
        for corners, image, present, observed in batches:
            preds = _predict(predictor, image, present, conventions)
            for (row, col), pred, seen in zip(corners, preds, observed, strict=True):
                _write_rows(dst, *blender.release(row // BLOCK * BLOCK), layers)
                if pred is not None:
                    layers.check(pred)
                    # Pixels with no observation in any month get no weight: they end NaN.
                    weights = tiling.weights(row, col)
                    h, w = weights.shape
                    blender.add(row, col, pred[:, :h, :w], weights * seen[:h, :w])
            bar.update(len(corners))
        _write_rows(dst, *blender.release(scene.height), layers)


def predict_sums(
    scene: Scene,
    predictor: Predictor,
    tiling: Tiling,
    block: Block,
    corners: Sequence[tuple[int, int]],
    *,
    batch_size: int = 8,
    conventions: InputConventions = AGBM_CONVENTIONS,
    layers: MapLayers | None = None,
) -> BlockSums:
    """The weighted sums over `block` of the windows of `scene`'s lattice (`tiling`) at
    `corners`, each read whole (across the block's borders) and weighted as `predict_scene`
    weights it: pixels no month observed get no weight. `layers`: the map's, whose spread
    the predictor must give. A region's tile sums the windows it owns over their extent."""
    layers = layers or MapLayers()
    sums = BlockSums.zeros(block, 1 + layers.spread)
    for batch, image, present, observed in _batches(
        scene, tiling, batch_size, conventions, corners
    ):
        for (row, col), pred, seen in zip(
            batch, _predict(predictor, image, present, conventions), observed, strict=True
        ):
            if pred is not None:
                layers.check(pred)
                weights = tiling.weights(row, col)
                sums.add_window(
                    row, col, pred, weights * seen[: weights.shape[0], : weights.shape[1]]
                )
    return sums


def predict_block(
    scene: Scene,
    predictor: Predictor,
    tiling: Tiling,
    block: Block,
    *,
    batch_size: int = 8,
    conventions: InputConventions = AGBM_CONVENTIONS,
    layers: MapLayers | None = None,
) -> np.ndarray:
    """The predictor's layers `[layers, height, width]` (AGBM, and the spread when it gives
    it) of one block of `scene`: the blend of every window of the scene's lattice
    (`tiling`) that reaches into the block (`predict_sums`). So a map made block by block
    equals the map made in one pass, whatever the blocks (tested to 1e-3 t/ha); NaN where
    no window observed anything. `layers`: the map's, whose spread the predictor must give."""
    corners = tiling.corners_touching(block)
    return predict_sums(
        scene, predictor, tiling, block, corners,
        batch_size=batch_size, conventions=conventions, layers=layers,
    ).blend()  # fmt: skip


def model_predictor(
    models: Sequence[torch.nn.Module],
    device: torch.device,
    *,
    tta: str = "flips",
    amp_dtype: torch.dtype | None = None,
    spread: bool = False,
) -> Predictor:
    """A `Predictor` of the ensemble mean (TTA, clamped >= 0) of `models` on `device`;
    with `spread`, the members' standard deviation as a second layer (`predict_spread`)."""
    check_tta(tta)

    def predict(image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        image, present = image.to(device), present.to(device)
        mean, std = predict_spread(models, image, present, tta=tta, amp_dtype=amp_dtype)
        return (torch.cat([mean, std], dim=1) if spread else mean).cpu()

    return predict


def load_predictor(
    options: InferenceOptions, layers: MapLayers
) -> tuple[Predictor, InputConventions]:
    """The ensemble of `options` on this machine's GPU (else the CPU) as a `Predictor` with
    their TTA and `--amp`, giving the spread when `layers` hold it (`model_predictor`), and
    the input conventions its windows must be made by."""
    device = local_device()
    models = load_for_inference(options.checkpoints, device)
    amp_dtype = autocast_dtype(options.amp, device, inference=True)
    predictor = model_predictor(
        models, device, tta=options.tta, amp_dtype=amp_dtype, spread=layers.spread
    )
    return predictor, shared_conventions(models)


@dataclass(frozen=True)
class SceneMap:
    """What `predict_files` wrote: the map's path, size in pixels, and windows predicted."""

    path: Path
    height: int
    width: int
    windows: int


def predict_files(
    s1: str | Path,
    s2: str | Path,
    out: str | Path,
    *,
    options: InferenceOptions,
    overwrite: bool = False,
    progress: bool = False,
) -> SceneMap:
    """`agbm predict-scene`: the map of the scene in the `s1` and `s2` files (stacks or
    `{MM}` patterns) by the model of `options` in their windows, written to `out` with the
    layers of `options` (`InferenceOptions.layers`: with a calibration, its bounds as bands
    2 and 3, and the members' spread as band 4 when there are several). Bad inputs and an
    output that cannot be written fail before any model loads: one of the inputs, or an
    existing file without `overwrite`; a killed run's partial map beside `out` is removed."""
    out = Path(out)
    with open_scene(s1, s2) as scene, output_folder(out.parent):
        inputs = [*(p for p, _ in scene.files), *options.checkpoints, options.calibration]
        check_output_file(out, inputs, overwrite)
        layers = options.layers().of_year(scene.year)
        layers.warn()
        remove_stale_temporaries(out.parent)
        tiling = plan_tiling(
            scene.height, scene.width, window=options.window, overlap=options.overlap
        )
        predictor, conventions = load_predictor(options, layers)
        predict_scene(
            scene, predictor, out, tiling,
            batch_size=options.batch_size, conventions=conventions, layers=layers,
            progress=progress,
        )  # fmt: skip
    return SceneMap(out, scene.height, scene.width, len(tiling.corners()))
