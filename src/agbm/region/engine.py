"""`agbm map-region`'s engine: the region's tiles as a Dask distributed graph.

Tasks (`tasks`): compose a tile (CPU workers, many); predict the windows a tile owns
(`lattice`: each window once) once every tile they read is composed; blend a tile's map
once every tile whose windows reach into it has predicted. This room plans and runs them
(`TileGraph`, in bounded batches; `dry_run` only plans): it checks every setting before any
folder is claimed, submits the graph on the plan's cluster (`cluster`: this machine's, or
one already running), collects what each task did, and writes the map's mosaic, STAC
collection, record and quick-look at the end, and the report (`report`). Dask schedules,
retries and spreads the tasks; a tile that still fails is recorded in `region.json`, one
line naming it and the cause, and the others go on.

Resumable: a tile whose map exists is skipped, a composed tile is reused (compose itself
resumes by month), a tile's partial sums are reused until every map they reach into is
written, every file is written atomically, and a folder made for another year,
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
from agbm.inference.tiling import WINDOW_MULTIPLE, Tiling, plan_tiling
from agbm.io import (
    claim_record,
    hold_folder,
    output_folder,
    remove_stale_temporaries,
    write_record,
)
from agbm.region.cluster import client_for, placement, warn_without_composers, worker_resources
from agbm.region.grid import TILE_SIZE, RegionGrid, Tile
from agbm.region.lattice import WindowPlan, extent, lattice, plan_windows, tiles_over
from agbm.region.report import REPORT, RegionResult, plan_figures, region_report
from agbm.region.stac import write_collection
from agbm.region.tasks import blend_task, cause_line, compose_task, predict_task
from agbm.region.tiles import (
    inputs_folder,
    map_path,
    near_folder,
    partial_path,
    write_inputs_mosaic,
)

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

    def tiling(self, options: InferenceOptions) -> Tiling:
        """The region's one window lattice, in the windows of `options`."""
        return plan_tiling(*self.grid.shape, window=options.window, overlap=options.overlap)


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
    folders = (folder, folder / "tiles", folder / "partials", near)
    for path in (*folders, *(near.iterdir() if near.is_dir() else ())):
        remove_stale_temporaries(path)


def map_region(
    plan: RegionPlan, *, options: InferenceOptions, progress: bool = False
) -> RegionResult:
    """Map the region of `plan` tile by tile on a Dask cluster (see the module's docstring),
    by the model of `options` with their layers (`progress`: bars of the planning and of
    the tiles); returns what was mapped, skipped and failed. Every path is made absolute
    here, before it reaches a worker that may run in another working folder."""
    plan, options = plan.absolute(), options.absolute()
    check_year(plan.year)
    check_grid(plan.grid)
    tiles = plan.tiles  # a tile size that cuts none fails here
    layers = check_settings(plan, options)
    check_imagery(plan.catalog, plan.s2_catalog, plan.grid.lonlat_bounds(), plan.year)
    record = run_record(plan, options, layers.bands())
    tiling = plan.tiling(options)
    windows = plan_windows(tiles, tiling, plan.tile_size, progress=progress)
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
        graph = TileGraph(client, plan, options, windows, layers)
        graph.run(todo, result, progress)
        remove_spent_partials(folder, windows, tiles)
        _write_outputs(plan, record, layers)
        area = math.prod(tiling.size)
        write_record(folder / REPORT, region_report(result, plan.grid, tiles, start, area))
        clean_leftovers(folder)  # of workers that died in this run too
    return result


def dry_run(plan: RegionPlan, *, options: InferenceOptions, progress: bool = False) -> dict:
    """What a run of `plan` would do, without a cluster, a folder or a byte fetched: its
    tiles, the windows they predict (each once), the window passes per pixel and the bytes
    to fetch and to keep (`plan_figures`). Checks the grid, tiles and windows as a run
    would; `progress`: a bar of the planning."""
    check_grid(plan.grid)
    tiles, tiling = plan.tiles, plan.tiling(options)
    windows = plan_windows(tiles, tiling, plan.tile_size, progress=progress)
    return plan_figures(tiles, windows, math.prod(tiling.size))


def remove_spent_partials(folder: Path, windows: WindowPlan, tiles: Sequence[Tile]) -> None:
    """Delete each tile's partial sums once every map they reach into is written; those a
    map still to make needs stay for the next run."""
    by_id = {t.id: t for t in tiles}
    for owner, recipients in windows.recipients().items():
        if all(map_path(folder, by_id[r]).is_file() for r in recipients):
            partial_path(folder, owner).unlink(missing_ok=True)


def check_settings(plan: RegionPlan, options: InferenceOptions) -> MapLayers:
    """Every setting a task would otherwise fail on, checked here, before any folder or
    task: the windows, the retries, `--predict-on`, the calibration, and the
    checkpoints, each loaded once on this machine's CPU (a file that is not one, or models
    that cannot be averaged). Returns the tiles' layers (`InferenceOptions.layers`,
    tagged with the plan's year)."""
    plan.tiling(options)
    if plan.retries < 0:
        raise ValueError(f"`retries` must be 0 or more, not {plan.retries}")
    placement([], plan.predict_on)
    layers = options.layers().of_year(plan.year)
    from agbm.inference.tta import check_ensemble  # torch: on this machine only

    check_ensemble(options.checkpoints)
    return layers


#: How many tiles' maps are in flight at once: the graph goes to the scheduler in batches
#: of this many tiles (with the compose and predict tasks they need), not a country at once.
TILES_IN_FLIGHT = 512


class TileGraph:
    """The region's Dask graph, submitted tile by tile (`blend`) with the tasks each tile's
    map needs and no task twice: compose a tile (`compose`), predict the windows a tile owns
    once the tiles they read are composed (`predict`; none where its partial sums are on
    disk from an earlier run), blend a map once every tile whose windows reach into it has
    predicted. A failed task fails the maps that need it, with its cause."""

    def __init__(
        self,
        client: Any,
        plan: RegionPlan,
        options: InferenceOptions,
        windows: WindowPlan,
        layers: MapLayers,
    ) -> None:
        self.client, self.plan, self.options = client, plan, options
        self.windows, self.layers = windows, layers
        self.tiling = plan.tiling(options)
        self.at = lattice(plan.tiles, plan.tile_size)
        self.by_id = {t.id: t for t in plan.tiles}
        workers = worker_resources(client)
        self.compose_on, self.predict_on = placement(workers, plan.predict_on)
        warn_without_composers(workers, self.compose_on)
        self.composed: dict[str, Any] = {}
        self.predicted: dict[str, Any] = {}

    def _submit(self, function: Any, *args: Any, key: str, resources: Any, **kwargs: Any) -> Any:
        """One task of the graph, retried as the plan says."""
        return self.client.submit(
            function, *args, key=key, retries=self.plan.retries, pure=False,
            resources=resources, **kwargs,
        )  # fmt: skip

    def compose(self, tile: Tile) -> Any:
        """The future of `tile`'s compose task, submitted once."""
        if tile.id not in self.composed:
            plan = self.plan
            self.composed[tile.id] = self._submit(
                compose_task, plan.folder, plan.grid, tile, key=f"compose-{tile.id}",
                resources=self.compose_on, year=plan.year, catalog=plan.catalog,
                s2_catalog=plan.s2_catalog,
            )  # fmt: skip
        return self.composed[tile.id]

    def predict(self, owner: str) -> Any | None:
        """The future of the predict task of the windows `owner` owns, submitted once; None
        when its partial sums are on disk already."""
        if owner not in self.predicted:
            if partial_path(self.plan.folder, owner).is_file():
                return None
            corners = self.windows.owned[owner]
            reads = tiles_over(self.at, extent(corners, self.tiling), self.plan.tile_size)
            self.predicted[owner] = self._submit(
                predict_task, [self.compose(t) for t in reads], self.plan.folder,
                self.plan.grid, self.by_id[owner], key=f"predict-{owner}",
                resources=self.predict_on, reads=reads, corners=corners, options=self.options,
            )  # fmt: skip
        return self.predicted[owner]

    def blend(self, tile: Tile) -> Any:
        """The future of `tile`'s map, with every task it needs submitted."""
        sources = self.windows.sources[tile.id]
        predicted = [f for f in map(self.predict, sources) if f is not None]
        return self._submit(
            blend_task, predicted, self.plan.folder, self.plan.grid, tile,
            key=f"blend-{tile.id}", resources=self.compose_on, sources=sources,
            layers=self.layers,
        )  # fmt: skip

    def run(self, todo: Sequence[Tile], result: RegionResult, progress: bool) -> None:
        """Map `todo`'s tiles, `TILES_IN_FLIGHT` at a time, into `result` as they complete
        (under one progress bar, with `progress`), then each task's record."""
        distributed = require("distributed", "region")
        queue, pending = iter(todo), distributed.as_completed()

        def top_up() -> None:
            while pending.count() < TILES_IN_FLIGHT and (tile := next(queue, None)):
                pending.add(self.blend(tile))

        top_up()
        with tqdm(total=len(todo), desc="map-region", unit="tile", disable=not progress) as bar:
            for future in pending:
                tile_id = future.key.removeprefix("blend-")
                try:
                    result.tasks.setdefault(tile_id, {})["blend"] = future.result()
                    result.mapped.append(tile_id)
                except Exception as exc:  # the tile's own cause, after Dask's retries
                    result.failed[tile_id] = cause_line(exc)
                bar.update()
                top_up()
        for kind, futures in (("compose", self.composed), ("predict", self.predicted)):
            for tile_id, future in futures.items():
                if future.status == "finished":
                    result.tasks.setdefault(tile_id, {})[kind] = future.result()


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
