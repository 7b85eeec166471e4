"""`agbm map-region`'s engine: the region's tiles as a Dask distributed graph.

Tasks (`tasks`): compose a tile (CPU workers, many); predict a tile once every tile its
windows reach is composed. This room plans and runs them: it checks every setting before any
folder is claimed, submits the graph on the plan's cluster (`cluster`: this machine's, or
one already running), collects what each task did, and writes the map's mosaic, STAC
collection, record and quick-look at the end, and the report (`report`). Dask schedules,
retries and spreads the tasks; a tile that still fails is recorded in `region.json`, one
line naming it and the cause, and the others go on.

Resumable: a tile whose map exists is skipped, a composed tile is reused (compose itself
resumes by month), every file is written atomically, and a folder made for another year,
grid, catalog or model is refused.

Importing this module loads no torch, as every worker does at its start (`local_cluster`'s
preload) and a compose worker for its tasks: the functions that predict, or load or check
models, import that code when they run.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agbm.compose.catalog import PLANETARY_COMPUTER, catalog_url
from agbm.compose.stacks import check_imagery
from agbm.data.bands import PIXEL_M
from agbm.data.calendar import check_year
from agbm.data.geotiff import MosaicPart, write_mosaic_vrt
from agbm.extras import require
from agbm.inference.layers import MapLayers
from agbm.inference.options import InferenceOptions
from agbm.inference.tiling import WINDOW_MULTIPLE, plan_tiling
from agbm.io import (
    claim_record,
    hold_folder,
    output_folder,
    remove_stale_temporaries,
    write_record,
)
from agbm.region.cluster import COMPOSE, client_for, placement, worker_resources
from agbm.region.grid import TILE_SIZE, RegionGrid, Tile
from agbm.region.report import REPORT, RegionResult, region_report
from agbm.region.stac import write_collection
from agbm.region.tasks import cause_line, compose_task, predict_task
from agbm.region.tiles import inputs_folder, map_path, near_folder, write_inputs_mosaic

#: The region folder's record of what made it.
RUN_RECORD = "run.json"


@dataclass(frozen=True)
class RegionPlan:
    """What a region run maps, and where it runs: `grid`'s area in `year` into `folder`, in
    tiles of `tile_size` pixels, composed from `catalog` (a STAC API or a static catalog;
    Sentinel-2 from `s2_catalog` when given); its tasks on the cluster at `scheduler` (an
    address or a scheduler file; default: this machine's, `local_cluster`), each retried
    `retries` times, the predict tasks placed by `predict_on` (`placement`). How the tiles
    are predicted is the run's `InferenceOptions`."""

    folder: Path
    grid: RegionGrid
    year: int
    tile_size: int = TILE_SIZE
    catalog: str | Path = PLANETARY_COMPUTER
    s2_catalog: str | Path | None = None
    scheduler: str | None = None
    retries: int = 2
    predict_on: str = "auto"

    def absolute(self) -> RegionPlan:
        """This plan with its folder absolute and its catalogs as URLs (`catalog_url`): a
        worker of a cluster may run in another working folder, and the record compares
        them."""
        catalog, s2_catalog = catalog_url(self.catalog), self.s2_catalog
        s2_catalog = s2_catalog and catalog_url(s2_catalog)
        folder = Path(os.path.abspath(self.folder))
        return replace(self, folder=folder, catalog=catalog, s2_catalog=s2_catalog)

    def catalogs(self) -> list[Any]:
        """The catalogs of Sentinel-1 and of Sentinel-2."""
        return [self.catalog, self.s2_catalog or self.catalog]

    @functools.cached_property
    def tiles(self) -> list[Tile]:
        """The tiles that cut the grid."""
        return self.grid.tiles(self.tile_size)


def neighbours(
    tiles: Sequence[Tile], of: Sequence[Tile], tile_size: int, reach: int
) -> dict[str, list[Tile]]:
    """For each tile of `of`, the tiles of `tiles` within `reach` pixels of it (itself
    included): those a window reaching into it may read. Found on the lattice (a tile's
    row and column, `top // tile_size`, `left // tile_size`), not by a search over pairs:
    a country's 10^5 tiles take a moment, not minutes."""
    at = {(t.top // tile_size, t.left // tile_size): t for t in tiles}
    steps = range(-math.ceil(reach / tile_size), math.ceil(reach / tile_size) + 1)
    found = {}
    for tile in of:
        row, col = tile.top // tile_size, tile.left // tile_size
        near = (at.get((row + dr, col + dc)) for dr in steps for dc in steps)
        found[tile.id] = [t for t in near if t is not None and _within(t, tile, reach)]
    return found


def _within(other: Tile, tile: Tile, reach: int) -> bool:
    """Whether `other` overlaps `tile` grown by `reach` pixels on every side."""
    top, left = tile.top - reach, tile.left - reach
    bottom, right = tile.top + tile.height + reach, tile.left + tile.width + reach
    return (
        other.top < bottom
        and other.top + other.height > top
        and other.left < right
        and other.left + other.width > left
    )


def run_record(plan: RegionPlan, options: InferenceOptions, bands: Sequence[str]) -> dict[str, Any]:
    """What a region folder is made for: its tiles (of `bands`) are only valid for these
    (the year, grid, tiling and catalogs of `plan`; the model, windows and calibration of
    `options`: `InferenceOptions.record`)."""
    return {
        "year": plan.year,
        **plan.grid.fields(),
        "tile_size": plan.tile_size,
        "catalogs": [str(c) for c in plan.catalogs()],
        **options.record(windows=True),
        "bands": list(bands),  # 3-band tiles must not be mixed with 4-band ones
    }


def check_grid(grid: RegionGrid) -> None:
    """A one-line `ValueError` for a grid under one window along a side: narrower than the
    smallest window a model reads (`WINDOW_MULTIPLE` pixels), whose windows would hold
    mostly padding (a sliver of a polygon, a box of a few metres)."""
    height, width = grid.shape
    if min(height, width) < WINDOW_MULTIPLE:
        side = f"{WINDOW_MULTIPLE * PIXEL_M:.0f} m"
        raise ValueError(
            f"the region's grid is {height} x {width} pixels of {PIXEL_M:.0f} m, under one "
            f"window ({WINDOW_MULTIPLE} pixels, {side}) along a side: give a region at least "
            f"{side} across"
        )


def clean_leftovers(folder: Path) -> None:
    """Delete what killed runs left half-written in a region folder (their temporaries),
    before any task starts. Compose clears its own tile folders when it resumes them."""
    near = near_folder(folder)
    for path in (folder, folder / "tiles", near, *(near.iterdir() if near.is_dir() else ())):
        remove_stale_temporaries(path)


def map_region(
    plan: RegionPlan, *, options: InferenceOptions, progress: bool = False
) -> RegionResult:
    """Map the region of `plan` tile by tile on a Dask cluster (see the module's docstring),
    by the model of `options` with their layers (`progress`: a bar of the tiles); returns
    what was mapped, skipped and failed. Every path is made absolute here, before it
    reaches a worker that may run in another working folder."""
    plan, options = plan.absolute(), options.absolute()
    check_year(plan.year)
    check_grid(plan.grid)
    tiles = plan.tiles  # a tile size that cuts none fails here
    layers = check_settings(plan, options)
    check_imagery(plan.catalog, plan.s2_catalog, plan.grid.lonlat_bounds(), plan.year)
    record = run_record(plan, options, layers.bands())
    folder, result = plan.folder, RegionResult(plan.folder)
    start = time.perf_counter()
    # The cluster is reached before the folder is claimed: one that is not leaves no folder.
    with (
        client_for(plan.scheduler) as client,
        output_folder(folder),
        hold_folder(folder, "agbm map-region"),
    ):
        claim_record(folder / RUN_RECORD, record, "give another folder, or delete this one")
        clean_leftovers(folder)
        todo = [t for t in tiles if not map_path(folder, t).is_file()]
        result.skipped = [t.id for t in tiles if t not in todo]
        tqdm.write(f"Dask dashboard: {client.dashboard_link}")
        _run_tiles(client, plan, options, todo, result, progress)
        _write_outputs(plan, record, layers)
        write_record(folder / REPORT, region_report(result, plan.grid, tiles, start))
        clean_leftovers(folder)  # of workers that died in this run too
    return result


def check_settings(plan: RegionPlan, options: InferenceOptions) -> MapLayers:
    """Every setting a task would otherwise fail on, checked here, before any folder or
    task: the windows, the retries, `--predict-on`, the calibration, and the
    checkpoints, each loaded once on this machine's CPU (a file that is not one, or models
    that cannot be averaged). Returns the tiles' layers (`InferenceOptions.layers`)."""
    plan_tiling(*plan.grid.shape, window=options.window, overlap=options.overlap)
    if plan.retries < 0:
        raise ValueError(f"`retries` must be 0 or more, not {plan.retries}")
    placement([], plan.predict_on)
    layers = options.layers()
    from agbm.inference.tta import check_ensemble  # torch: on this machine only

    check_ensemble(options.checkpoints)
    return layers


def _run_tiles(
    client: Any,
    plan: RegionPlan,
    options: InferenceOptions,
    todo: Sequence[Tile],
    result: RegionResult,
    progress: bool,
) -> None:
    """Submit the graph of `todo`'s tiles and collect it into `result` as it completes
    (under one progress bar, with `progress`)."""
    distributed = require("distributed", "region")
    near = neighbours(plan.tiles, todo, plan.tile_size, options.window)
    needed = {n.id: n for t in todo for n in near[t.id]}
    workers = worker_resources(client)
    compose_on, predict_on = placement(workers, plan.predict_on)
    folder, grid, retries = plan.folder, plan.grid, plan.retries
    if compose_on and not any(COMPOSE in w for w in workers):
        tqdm.write(f"no worker declares the resource {COMPOSE} yet: the tiles wait for one")
    composed = {
        tid: client.submit(
            compose_task, folder, grid, t, plan.year, plan.catalog, plan.s2_catalog,
            key=f"compose-{tid}", retries=retries, pure=False, resources=compose_on,
        )
        for tid, t in needed.items()
    }  # fmt: skip
    predicted = [
        client.submit(
            predict_task, [composed[n.id] for n in near[t.id]], folder, grid, t, near[t.id],
            options, key=f"predict-{t.id}", retries=retries, pure=False, resources=predict_on,
        )
        for t in todo
    ]  # fmt: skip
    with tqdm(total=len(predicted), desc="map-region", unit="tile", disable=not progress) as bar:
        for future in distributed.as_completed(predicted):
            tile_id = future.key.removeprefix("predict-")
            try:
                result.tasks.setdefault(tile_id, {})["predict"] = future.result()
                result.mapped.append(tile_id)
            except Exception as exc:  # the tile's own cause, after Dask's retries
                result.failed[tile_id] = cause_line(exc)
            bar.update()
    for tile_id, future in composed.items():
        if future.status == "finished":
            result.tasks.setdefault(tile_id, {})["compose"] = future.result()


def _write_outputs(plan: RegionPlan, record: dict, layers: MapLayers) -> None:
    """The region's mosaics (the map's `agbm.vrt` with the tiles' bands and tags, the
    inputs' `inputs/S1.vrt` and `S2.vrt`), its STAC collection and its quick-look
    `agbm.png`, of the tiles done."""
    folder, grid, tiles = plan.folder, plan.grid, plan.tiles
    done = [t for t in tiles if map_path(folder, t).is_file()]
    bands = layers.bands()
    write_mosaic_vrt(
        folder / "agbm.vrt",
        [MosaicPart(map_path(folder, t), *t.block) for t in done],
        grid.shape, grid.crs, grid.transform, len(bands), "float32", float("nan"), bands,
        layers.map_tags(),
    )  # fmt: skip
    composed = [t for t in tiles if (inputs_folder(folder, t) / "S2.tif").is_file()]
    write_inputs_mosaic(folder, grid, composed)
    write_collection(folder, grid, done, plan.year, record)
    from agbm.viz.quicklook import map_quicklook

    map_quicklook(folder / "agbm.vrt", folder / "agbm.png", f"{len(done)} of {len(tiles)} tiles")
