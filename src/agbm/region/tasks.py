"""The tasks of a region's Dask graph, each run on a worker: compose a tile's core
(`compose_task`), and predict a tile from the mosaic of the tiles near it once they are
composed (`predict_task`, the models loaded once per worker). Each returns what it cost
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
from agbm.region.tiles import compose_tile, predict_tile, write_inputs_mosaic

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
    year: int,
    catalog: str | Path,
    s2_catalog: str | Path | None,
) -> dict[str, Any]:
    """Compose one tile's core; a failure names the tile (its neighbours report it)."""
    start = time.perf_counter()
    tile_work(
        "composing", tile, lambda: compose_tile(folder, grid, tile, year, catalog, s2_catalog)
    )
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
    near: Sequence[Tile],
    options: InferenceOptions,
) -> dict[str, Any]:
    """Predict one tile from the mosaic of the tiles near it. Dask passes the results of
    their compose tasks as `composed`, so this runs once all are done."""
    del composed  # only the order matters: they are on disk now
    start = time.perf_counter()

    def work() -> None:
        write_inputs_mosaic(folder, grid, near, name=f"near-{tile.id}")
        predictor, conventions, layers = _predictor(options)
        tiling = plan_tiling(*grid.shape, window=options.window, overlap=options.overlap)
        predict_tile(
            folder, grid, tile, predictor, tiling, conventions, options.batch_size,
            f"near-{tile.id}", layers,
        )  # fmt: skip

    tile_work("predicting", tile, work)
    return task_record(start)
