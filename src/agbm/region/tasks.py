"""The tasks of a region's Dask graph, each run on a worker: compose a tile's core
(`compose_task`); predict the windows a tile owns from the mosaic of the tiles they read,
once those are composed (`predict_task`, the models loaded once per worker); and blend a
tile's map from the partial sums of the tiles whose windows reach into it (`blend_task`,
on a compose worker: no torch). Each returns what it cost
(`task_record`), and a failure is a `TileError` naming the tile and its cause on one line
(`tile_work`, `cause_line`), which Dask retries and the run reports.
"""

from __future__ import annotations

import functools
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agbm.data.conventions import InputConventions
from agbm.errors import AgbmError, TileError, reason
from agbm.extras import require
from agbm.inference.layers import MapLayers
from agbm.inference.options import InferenceOptions
from agbm.inference.tiling import plan_tiling
from agbm.region.grid import RegionGrid, Tile
from agbm.region.lattice import Corner
from agbm.region.tiles import blend_tile, compose_tile, predict_windows, write_inputs_mosaic

if TYPE_CHECKING:
    from agbm.inference.scene import Predictor


def task_record(start: float) -> dict[str, Any]:
    """What a task reports: the worker that ran it, its seconds since `start`
    (`time.perf_counter`), and the worker process's peak resident memory so far (MiB)."""
    worker = require("distributed", "region").get_worker()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "worker": str(worker.name),
        "seconds": round(time.perf_counter() - start, 2),
        "peak_mib": round(peak),
    }


def cause_line(exc: BaseException) -> str:
    """Why a tile failed, on one line: an agbm error's own message whole (one line naming
    the file at fault), a library's cut by `reason`."""
    return " ".join(str(exc).split()) if isinstance(exc, AgbmError) else reason(exc)


def tile_work(what: str, tile: Tile, work: Callable[[], Any]) -> None:
    """Run `work`, a task's work on `tile`; any failure is a `TileError` "`what` tile ID:
    cause" (Dask retries it, then the neighbours quote it), raised with no cause or context
    chained: Dask sends a task's exception to the client pickled with its chain, and one
    link that cannot be unpickled there (a rasterio error) turns the whole into a repr cut
    at 200 characters."""
    try:
        work()
    except Exception as exc:  # any cause
        cause = cause_line(exc)
    else:
        return
    raise TileError(f"{what} tile {tile.id}: {cause}")


def compose_task(
    folder: Path,
    grid: RegionGrid,
    tile: Tile,
    *,
    year: int,
    catalog: str | Path,
    s2_catalog: str | Path | None,
) -> dict[str, Any]:
    """Compose one tile's core; a failure names the tile (the tiles that read it report it)."""
    start = time.perf_counter()

    def work() -> None:
        compose_tile(folder, grid, tile, year=year, catalog=catalog, s2_catalog=s2_catalog)

    tile_work("composing", tile, work)
    return task_record(start)


@functools.cache
def _predictor(options: InferenceOptions) -> tuple[Predictor, InputConventions, MapLayers]:
    """The models of `options` on this worker's device, the input conventions and the
    tiles' layers: loaded once per worker process."""
    layers = options.layers()
    from agbm.inference.scene import load_predictor  # torch: on a predict worker only

    return (*load_predictor(options, layers), layers)


def predict_task(
    composed: Sequence[dict],
    folder: Path,
    grid: RegionGrid,
    tile: Tile,
    *,
    reads: Sequence[Tile],
    corners: Sequence[Corner],
    options: InferenceOptions,
) -> dict[str, Any]:
    """Predict the windows `tile` owns (`corners`) from the mosaic of the tiles they read
    (`reads`) into its partial sums. Dask passes the results of those tiles' compose tasks
    as `composed`, so this runs once all are done. Its record counts the `windows`."""
    del composed  # only the order matters: they are on disk now
    start = time.perf_counter()

    def work() -> None:
        write_inputs_mosaic(folder, grid, reads, name=f"near-{tile.id}")
        predictor, conventions, layers = _predictor(options)
        tiling = plan_tiling(*grid.shape, window=options.window, overlap=options.overlap)
        predict_windows(
            folder, grid, tile, predictor, tiling=tiling, corners=corners,
            conventions=conventions, batch_size=options.batch_size,
            mosaic=f"near-{tile.id}", layers=layers,
        )  # fmt: skip

    tile_work("predicting", tile, work)
    return task_record(start) | {"windows": len(corners)}


def blend_task(
    predicted: Sequence[dict],
    folder: Path,
    grid: RegionGrid,
    tile: Tile,
    *,
    sources: Sequence[str],
    layers: MapLayers,
) -> dict[str, Any]:
    """Write one tile's map from the partial sums of its `sources` (`blend_tile`). Dask
    passes the results of their predict tasks still to run as `predicted`, so this runs once
    all are in; one that failed fails this tile with its cause. Needs no torch."""
    del predicted  # only the order matters: the sums are on disk now
    start = time.perf_counter()
    tile_work(
        "blending", tile, lambda: blend_tile(folder, grid, tile, sources=sources, layers=layers)
    )
    return task_record(start)
