"""`agbm map-region`'s engine: the region's tiles as a Dask distributed graph.

Tasks: compose a tile (CPU workers, many); predict a tile once every tile its windows reach
is composed (on workers that declare the resource `GPU` when there are any, else any
worker); the map's mosaic and record at the end. Dask schedules, retries (`retries`) and
spreads them, on a `LocalCluster` sized to the machine or on any cluster already running
(`scheduler`: an address or a scheduler file). A tile that still fails is recorded in
`region.json`, one line naming it and the cause, and the others go on.

Resumable: a tile whose map exists is skipped, a composed tile is reused (compose itself
resumes by month), every file is written atomically, and a folder made for another year,
grid, catalog or model is refused.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agbm.compose.catalog import PLANETARY_COMPUTER
from agbm.data.geotiff import MosaicPart, write_mosaic_vrt
from agbm.errors import reason
from agbm.extras import require
from agbm.inference.scene import MAP_BAND, load_predictor
from agbm.inference.tiling import plan_tiling
from agbm.io import claim_record, file_sha256, output_folder, write_record
from agbm.region.grid import TILE_SIZE, RegionGrid, Tile
from agbm.region.stac import write_collection
from agbm.region.tiles import compose_tile, map_path, predict_tile, write_inputs_mosaic

#: The region folder's record of what made it, and its report.
RUN_RECORD, REPORT = "run.json", "region.json"


@dataclass(frozen=True)
class PredictOptions:
    """How tiles are predicted: what `agbm predict-scene` takes."""

    checkpoints: tuple[str, ...]
    window: int = 256
    overlap: int = 64
    tta: str = "flips"
    batch_size: int = 8
    amp: str = "auto"


@dataclass
class RegionResult:
    """What a run did: tiles mapped now, skipped as done, failed (tile id -> cause)."""

    folder: Path
    mapped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@functools.cache
def _predictor(options: PredictOptions) -> tuple[Any, Any]:
    """The models of `options` on this worker's device, loaded once per worker process."""
    return load_predictor(options.checkpoints, options.tta, options.amp)


def _predict_task(
    folder: Path, grid: RegionGrid, tile: Tile, near: Sequence[Tile], options: PredictOptions
) -> str:
    """Predict one tile from the mosaic of the tiles near it (all composed by now)."""
    write_inputs_mosaic(folder, grid, near, name=f"near-{tile.id}")
    predictor, conventions = _predictor(options)
    tiling = plan_tiling(*grid.shape, options.window, options.overlap)
    predict_tile(
        folder, grid, tile, predictor, tiling, conventions, options.batch_size, f"near-{tile.id}"
    )
    return tile.id


def neighbours(tile: Tile, tiles: Sequence[Tile], reach: int) -> list[Tile]:
    """The tiles within `reach` pixels of `tile` (itself included): those a window reaching
    into it may read."""
    top, left = tile.top - reach, tile.left - reach
    bottom, right = tile.top + tile.height + reach, tile.left + tile.width + reach
    return [
        t
        for t in tiles
        if t.top < bottom and t.top + t.height > top and t.left < right and t.left + t.width > left
    ]


def run_record(
    grid: RegionGrid,
    year: int,
    catalogs: Sequence[Any],
    options: PredictOptions,
    tile_size: int,
) -> dict[str, Any]:
    """What a region folder is made for: its tiles are only valid for these."""
    return {
        "year": year,
        "crs": grid.crs,
        "transform": list(grid.transform)[:6],
        "shape": list(grid.shape),
        "tile_size": tile_size,
        "catalogs": [str(c) for c in catalogs],
        "checkpoints": [file_sha256(c) for c in options.checkpoints],
        "tta": options.tta,
        "window": options.window,
        "overlap": options.overlap,
    }


def client_for(scheduler: str | None) -> Any:
    """A Dask client: of the cluster at `scheduler` (an address, or a scheduler file's path),
    or of a `LocalCluster` of one single-threaded worker process per core (torch and GDAL
    use their own threads)."""
    distributed = require("distributed", "region")
    if scheduler is None:
        cluster = distributed.LocalCluster(threads_per_worker=1, dashboard_address=":0")
        return distributed.Client(cluster)
    if Path(scheduler).is_file():
        return distributed.Client(scheduler_file=scheduler)
    return distributed.Client(scheduler)


def map_region(
    folder: Path | str,
    grid: RegionGrid,
    year: int,
    options: PredictOptions,
    tile_size: int = TILE_SIZE,
    catalog: str | Path = PLANETARY_COMPUTER,
    s2_catalog: str | Path | None = None,
    retries: int = 2,
    scheduler: str | None = None,
) -> RegionResult:
    """Map `grid`'s area tile by tile on a Dask cluster into `folder` (see the module's
    docstring); returns what was mapped, skipped and failed."""
    folder = Path(folder)
    tiles = grid.tiles(tile_size)
    record = run_record(grid, year, [catalog, s2_catalog or catalog], options, tile_size)
    result = RegionResult(folder)
    start = time.perf_counter()
    with output_folder(folder):
        claim_record(folder / RUN_RECORD, record, "give another folder, or delete this one")
        todo = [t for t in tiles if not map_path(folder, t).is_file()]
        result.skipped = [t.id for t in tiles if t not in todo]
        reach = options.window
        near = {t.id: neighbours(t, tiles, reach) for t in todo}
        needed = {n.id: n for t in todo for n in near[t.id]}
        with client_for(scheduler) as client:
            tqdm.write(f"Dask dashboard: {client.dashboard_link}")
            workers = client.scheduler_info()["workers"].values()
            gpu = any("GPU" in w.get("resources", {}) for w in workers)
            composed = {
                tid: client.submit(
                    compose_tile, folder, grid, t, year, catalog, s2_catalog,
                    key=f"compose-{tid}", retries=retries, pure=False,
                )
                for tid, t in needed.items()
            }  # fmt: skip
            predicted = {
                t.id: client.submit(
                    _after, [composed[n.id] for n in near[t.id]],
                    _predict_task, folder, grid, t, near[t.id], options,
                    key=f"predict-{t.id}", retries=retries, pure=False,
                    resources={"GPU": 1} if gpu else None,
                )
                for t in todo
            }  # fmt: skip
            distributed = require("distributed", "region")
            bar = tqdm(total=len(predicted), desc="map-region", unit="tile")
            for future in distributed.as_completed(list(predicted.values())):
                tile_id = future.key.removeprefix("predict-")
                try:
                    future.result()
                    result.mapped.append(tile_id)
                except Exception as exc:  # the tile's own cause, after Dask's retries
                    result.failed[tile_id] = reason(exc)
                bar.update()
            bar.close()
        done = [t for t in tiles if map_path(folder, t).is_file()]
        write_mosaic_vrt(
            folder / "agbm.vrt",
            [MosaicPart(map_path(folder, t), *t.block) for t in done],
            grid.shape, grid.crs, grid.transform, 1, "float32", float("nan"), [MAP_BAND],
        )  # fmt: skip
        write_collection(folder, grid, done, year, record)
        write_record(folder / REPORT, _report(result, grid, tiles, start))
    return result


def _after(dependencies: list[Any], task: Any, *args: Any) -> Any:
    """Run `task(*args)` once `dependencies` (composed tiles' results) are in: Dask passes
    the results of the futures in `dependencies` before calling this."""
    return task(*args)


def _report(result: RegionResult, grid: RegionGrid, tiles: Sequence[Tile], start: float) -> dict:
    """`region.json`: the grid, the tiles done and failed with their causes, the time."""
    return {
        "crs": grid.crs,
        "transform": list(grid.transform)[:6],
        "shape": list(grid.shape),
        "tiles": [asdict(t) for t in tiles],
        **{k: v for k, v in asdict(result).items() if k != "folder"},
        "seconds": round(time.perf_counter() - start, 1),
    }


def describe(result: RegionResult) -> str:
    """One line on what a run did, and a line per failed tile."""
    lines = [
        f"mapped {len(result.mapped)} tile(s), {len(result.skipped)} already done, "
        f"{len(result.failed)} failed; map: {result.folder / 'agbm.vrt'}"
    ]
    lines += [f"  tile {t} failed: {cause}" for t, cause in sorted(result.failed.items())]
    return "\n".join(lines)
