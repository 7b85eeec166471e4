"""`agbm map-region`'s engine: the region's tiles as a Dask distributed graph.

Tasks: compose a tile (CPU workers, many); predict a tile once every tile its windows reach
is composed; the map's mosaic, record and quick-look at the end. Dask schedules, retries
(`retries`) and spreads them, on a cluster of this machine (`local_cluster`) or on any
cluster already running (`scheduler`: an address or a scheduler file). A tile that still
fails is recorded in `region.json`, one line naming it and the cause, and the others go on.

Placement is by Dask worker resources (`placement`): when predicting on GPUs, predict tasks
need the resource `GPU` and compose tasks the resource `COMPOSE`, so that a GPU worker
only predicts and the CPU workers compose; with no GPU, any worker does either.

Resumable: a tile whose map exists is skipped, a composed tile is reused (compose itself
resumes by month), every file is written atomically, and a folder made for another year,
grid, catalog or model is refused.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from agbm.compose.catalog import PLANETARY_COMPUTER, catalog_url
from agbm.compose.stacks import check_imagery
from agbm.data.calendar import check_year
from agbm.data.geotiff import MosaicPart, write_mosaic_vrt
from agbm.errors import AgbmError, ConfigError, TileError, reason
from agbm.extras import require
from agbm.inference.layers import MapLayers
from agbm.inference.options import InferenceOptions
from agbm.inference.scene import load_predictor
from agbm.inference.tiling import WINDOW_MULTIPLE, plan_tiling
from agbm.inference.tta import check_ensemble
from agbm.io import (
    claim_record,
    hold_folder,
    output_folder,
    remove_stale_temporaries,
    write_record,
)
from agbm.region.grid import PIXEL_M, TILE_SIZE, RegionGrid, Tile
from agbm.region.stac import write_collection
from agbm.region.tiles import (
    compose_tile,
    inputs_folder,
    map_path,
    near_folder,
    predict_tile,
    write_inputs_mosaic,
)
from agbm.viz.quicklook import map_quicklook

#: The region folder's record of what made it, and its report.
RUN_RECORD, REPORT = "run.json", "region.json"
#: The Dask worker resources that place tasks: a worker with `GPU` predicts on its GPU (and
#: does nothing else), a worker with `COMPOSE` composes.
GPU, COMPOSE = "GPU", "COMPOSE"
#: `--predict-on`: on `GPU` workers when any is connected at the start (`auto`), always
#: (`gpu`: they may join later, as batch jobs do), or on any worker (`any`).
PREDICT_ON = ("auto", "gpu", "any")
#: Each local worker's GDAL block cache, MB. GDAL's default, 5 % of the machine's memory
#: per process, adds up to most of it over one worker per core; 256 MB costs a predict task
#: no time and saves ~0.5 GB of its peak (bench/region.py, docs/benchmarks.md).
GDAL_CACHE_MB = 256


@dataclass
class RegionResult:
    """What a run did: tiles mapped now, skipped as done, failed (tile id -> cause), and per
    tile each task's worker, seconds and the worker's peak memory (`task_record`)."""

    folder: Path
    mapped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, dict[str, dict]] = field(default_factory=dict)


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
def _predictor(options: InferenceOptions) -> tuple[Any, Any, MapLayers]:
    """The models of `options` on this worker's device, the input conventions and the
    tiles' layers: loaded once per worker process."""
    layers = options.layers()
    return (*load_predictor(options, layers), layers)


def _predict_task(
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
        tiling = plan_tiling(*grid.shape, options.window, options.overlap)
        predict_tile(
            folder, grid, tile, predictor, tiling, conventions, options.batch_size,
            f"near-{tile.id}", layers,
        )  # fmt: skip

    tile_work("predicting", tile, work)
    return task_record(start)


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
    options: InferenceOptions,
    tile_size: int,
    bands: Sequence[str],
) -> dict[str, Any]:
    """What a region folder is made for: its tiles (of `bands`) are only valid for these
    (the model, windows and calibration: `InferenceOptions.record`)."""
    return {
        "year": year,
        **grid.fields(),
        "tile_size": tile_size,
        "catalogs": [str(c) for c in catalogs],
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


def worker_specs(cores: int, gpus: int, memory: int) -> dict[str, dict[str, Any]]:
    """The workers of this machine's cluster, as `distributed.SpecCluster` specs: one
    single-threaded worker per core (torch and GDAL keep to one thread in each, as Dask
    sets; a GDAL block cache of `GDAL_CACHE_MB` each), of which one per GPU predicts on it
    (`CUDA_VISIBLE_DEVICES`, resource `GPU`) and the others compose (resource `COMPOSE`, no
    GPU); with no GPU every worker does either. `memory` (bytes) is shared evenly: each
    worker's limit. Each worker keeps Dask's log to itself (its INFO lines at start, a
    "Compute Failed" per try of a failed task, its warnings at Ctrl-C: the run reports each
    failed tile once, with its cause) and runs `dask_setup`."""
    nanny = require("distributed", "region").Nanny
    count = max(1, cores - gpus) + gpus
    limit = memory // count

    def spec(resources: dict[str, int] | None, devices: str | None) -> dict[str, Any]:
        env = {"GDAL_CACHEMAX": str(GDAL_CACHE_MB)}
        env |= {} if devices is None else {"CUDA_VISIBLE_DEVICES": devices}
        options = {"nthreads": 1, "memory_limit": limit, "resources": resources, "env": env}
        options |= {"silence_logs": logging.CRITICAL, "preload": [__name__]}
        return {"cls": nanny, "options": options}

    if not gpus:
        return {f"cpu-{n}": spec(None, None) for n in range(count)}
    specs = {f"compose-{n}": spec({COMPOSE: 1}, "") for n in range(count - gpus)}
    return specs | {f"gpu-{n}": spec({GPU: 1}, str(n)) for n in range(gpus)}


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process of `local_cluster` as it starts (its
    `preload` is this module): the worker ignores Ctrl-C, which a terminal sends to every
    process of the run, so that the run alone stops and closes the cluster, instead of each
    worker printing its own KeyboardInterrupt traceback."""
    del worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def local_cluster() -> Any:
    """A cluster of this machine (`worker_specs` of its cores, GPUs and memory): what
    `distributed.LocalCluster` is, with the compose and predict workers told apart."""
    distributed = require("distributed", "region")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    specs = worker_specs(cores or 1, torch.cuda.device_count(), distributed.system.MEMORY_LIMIT)
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0"}}
    return distributed.SpecCluster(specs, scheduler, silence_logs=logging.ERROR)


@contextlib.contextmanager
def local_client() -> Iterator[Any]:
    """A client of `local_cluster()`, which goes with it. Ctrl-C closes both without a word
    from Dask (its warnings on workers stopped while busy): the command's one line on what
    is kept says it all."""
    distributed = require("distributed", "region")
    logger = logging.getLogger("distributed")
    level = logger.level
    try:
        with local_cluster() as cluster, distributed.Client(cluster) as client:
            try:
                yield client
            except KeyboardInterrupt:
                logger.setLevel(logging.CRITICAL)  # while the cluster closes
                raise
    finally:
        logger.setLevel(level)


def scheduler_address(scheduler: str) -> str:
    """The address `--scheduler` names: an address as it is, or the one in a scheduler file
    (`dask scheduler --scheduler-file`'s JSON); a folder, or a file that is not one, is a
    one-line `ConfigError` naming it."""
    path = Path(scheduler)
    if path.is_dir():
        raise ConfigError(
            f"--scheduler {scheduler}: a folder, not a scheduler file or address (tcp://HOST:PORT)"
        )
    if not path.is_file():
        return scheduler
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # unreadable, not text, not JSON
        raise ConfigError(f"--scheduler {scheduler}: not a Dask scheduler file ({exc})") from None
    address = record.get("address") if isinstance(record, dict) else None
    if not isinstance(address, str):
        raise ConfigError(
            f'--scheduler {scheduler}: not a Dask scheduler file (it has no "address")'
        )
    return address


def connect(scheduler: str) -> Any:
    """A Dask client of the running cluster `--scheduler` names (`scheduler_address`); an
    address that is none, or no scheduler answering, is a one-line `ConfigError`."""
    distributed = require("distributed", "region")
    address = scheduler_address(scheduler)
    try:
        return distributed.Client(address)
    except ValueError as exc:  # "missing port number in address", an unknown protocol
        raise ConfigError(
            f"--scheduler {scheduler}: neither a scheduler file nor an address "
            f"tcp://HOST:PORT ({reason(exc)})"
        ) from None
    except OSError as exc:  # refused, timed out
        raise ConfigError(f"--scheduler {scheduler}: no scheduler answers at {address} "
                          f"({reason(exc)})") from None  # fmt: skip


@contextlib.contextmanager
def client_for(scheduler: str | None) -> Iterator[Any]:
    """A Dask client: of the cluster at `scheduler` (an address, or a scheduler file's path:
    `connect`), or of `local_cluster()`, which goes with the client (`local_client`)."""
    if scheduler is None:
        with local_client() as client:
            yield client
        return
    with connect(scheduler) as client:
        yield client


def placement(
    workers: Iterable[Mapping[str, float]], predict_on: str = "auto"
) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    """The Dask resources compose and predict tasks ask for, given the connected workers'
    declared resources and `--predict-on` (`PREDICT_ON`): `COMPOSE` and `GPU` when
    predicting on GPU workers, else none (any worker runs either)."""
    if predict_on not in PREDICT_ON:
        raise ValueError(f"--predict-on must be one of {', '.join(PREDICT_ON)}, not {predict_on}")
    on_gpu = predict_on == "gpu" or (predict_on == "auto" and any(GPU in w for w in workers))
    return ({COMPOSE: 1}, {GPU: 1}) if on_gpu else (None, None)


def worker_resources(client: Any) -> list[dict[str, float]]:
    """The resources each connected worker declares."""
    return [w.get("resources", {}) for w in client.scheduler_info()["workers"].values()]


def clean_leftovers(folder: Path) -> None:
    """Delete what killed runs left half-written in a region folder (their temporaries),
    before any task starts. Compose clears its own tile folders when it resumes them."""
    near = near_folder(folder)
    for path in (folder, folder / "tiles", near, *(near.iterdir() if near.is_dir() else ())):
        remove_stale_temporaries(path)


def map_region(
    folder: Path | str,
    grid: RegionGrid,
    year: int,
    *,
    options: InferenceOptions,
    tile_size: int = TILE_SIZE,
    catalog: str | Path = PLANETARY_COMPUTER,
    s2_catalog: str | Path | None = None,
    retries: int = 2,
    scheduler: str | None = None,
    predict_on: str = "auto",
) -> RegionResult:
    """Map `grid`'s area in `year` tile by tile on a Dask cluster into `folder` (see the
    module's docstring), by the model of `options` with their layers; returns what was
    mapped, skipped and failed.

    `tile_size`: tile side in pixels; `catalog`, `s2_catalog`: STAC API or static catalog
    (Sentinel-2 from the second when given); `retries`: Dask's retries of a failed task;
    `scheduler`: a running cluster's address or scheduler file (default: `local_cluster`);
    `predict_on`: where predict tasks run (`placement`). Every path is made absolute here,
    before it reaches a worker that may run in another working folder."""
    folder, options = Path(os.path.abspath(folder)), options.absolute()
    catalog, s2_catalog = catalog_url(catalog), s2_catalog and catalog_url(s2_catalog)
    check_year(year)
    check_grid(grid)
    tiles = grid.tiles(tile_size)
    layers = check_settings(grid, options, retries, predict_on)
    check_imagery(catalog, s2_catalog, grid.lonlat_bounds(), year)
    catalogs = [catalog, s2_catalog or catalog]
    record = run_record(grid, year, catalogs, options, tile_size, layers.bands())
    result = RegionResult(folder)
    start = time.perf_counter()
    # The cluster is reached before the folder is claimed: one that is not leaves no folder.
    with (
        client_for(scheduler) as client,
        output_folder(folder),
        hold_folder(folder, "agbm map-region"),
    ):
        claim_record(folder / RUN_RECORD, record, "give another folder, or delete this one")
        clean_leftovers(folder)
        todo = [t for t in tiles if not map_path(folder, t).is_file()]
        result.skipped = [t.id for t in tiles if t not in todo]
        tqdm.write(f"Dask dashboard: {client.dashboard_link}")
        _run_tiles(client, result, folder, grid, tiles, todo, year, catalog, s2_catalog,
                   options, retries, predict_on)  # fmt: skip
        _write_outputs(folder, grid, tiles, year, record, layers)
        write_record(folder / REPORT, _report(result, grid, tiles, start))
        clean_leftovers(folder)  # of workers that died in this run too
    return result


def check_settings(
    grid: RegionGrid, options: InferenceOptions, retries: int, predict_on: str
) -> MapLayers:
    """Every setting a task would otherwise fail on, checked here, before any folder or
    task: the windows, the retries, `--predict-on`, the calibration, and the checkpoints,
    each loaded once on this machine's CPU (a file that is not one, or models that cannot
    be averaged). Returns the tiles' layers (`InferenceOptions.layers`)."""
    plan_tiling(*grid.shape, options.window, options.overlap)
    if retries < 0:
        raise ValueError(f"--retries must be 0 or more, not {retries}")
    placement([], predict_on)
    layers = options.layers()
    check_ensemble(options.checkpoints)
    return layers


def _run_tiles(
    client: Any,
    result: RegionResult,
    folder: Path,
    grid: RegionGrid,
    tiles: Sequence[Tile],
    todo: Sequence[Tile],
    year: int,
    catalog: str | Path,
    s2_catalog: str | Path | None,
    options: InferenceOptions,
    retries: int,
    predict_on: str,
) -> None:
    """Submit the graph of `todo`'s tiles and collect it into `result` as it completes,
    under one progress bar."""
    distributed = require("distributed", "region")
    near = {t.id: neighbours(t, tiles, options.window) for t in todo}
    needed = {n.id: n for t in todo for n in near[t.id]}
    workers = worker_resources(client)
    compose_on, predict_on_ = placement(workers, predict_on)
    if compose_on and not any(COMPOSE in w for w in workers):
        tqdm.write(f"no worker declares the resource {COMPOSE} yet: the tiles wait for one")
    composed = {
        tid: client.submit(
            compose_task, folder, grid, t, year, catalog, s2_catalog,
            key=f"compose-{tid}", retries=retries, pure=False, resources=compose_on,
        )
        for tid, t in needed.items()
    }  # fmt: skip
    predicted = [
        client.submit(
            _predict_task, [composed[n.id] for n in near[t.id]], folder, grid, t, near[t.id],
            options, key=f"predict-{t.id}", retries=retries, pure=False, resources=predict_on_,
        )
        for t in todo
    ]  # fmt: skip
    with tqdm(total=len(predicted), desc="map-region", unit="tile") as bar:
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


def _write_outputs(
    folder: Path,
    grid: RegionGrid,
    tiles: Sequence[Tile],
    year: int,
    record: dict,
    layers: MapLayers,
) -> None:
    """The region's mosaics (the map's `agbm.vrt` with the tiles' bands and tags, the
    inputs' `inputs/S1.vrt` and `S2.vrt`), its STAC collection and its quick-look
    `agbm.png`, of the tiles done."""
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
    write_collection(folder, grid, done, year, record)
    map_quicklook(folder / "agbm.vrt", folder / "agbm.png", f"{len(done)} of {len(tiles)} tiles")


def _report(result: RegionResult, grid: RegionGrid, tiles: Sequence[Tile], start: float) -> dict:
    """`region.json`: the grid, the tiles done and failed with their causes, the time."""
    return {
        **grid.fields(),
        "tiles": [asdict(t) for t in tiles],
        **{k: v for k, v in asdict(result).items() if k != "folder"},
        "seconds": round(time.perf_counter() - start, 1),
    }


def summary(verb: str, now: int, before: int, failed: dict[str, str], noun: str, where: str) -> str:
    """One line on what a run did (`verb` `now` of its `noun`s, `before` done by an earlier
    run, the failed ones, `where` the result is), and a line per failed one with its cause."""
    lines = [f"{verb} {now} {noun}(s), {before} already done, {len(failed)} failed; {where}"]
    lines += [f"  {noun} {name} failed: {cause}" for name, cause in sorted(failed.items())]
    return "\n".join(lines)


def describe(result: RegionResult) -> str:
    """`summary` of a region run."""
    where = f"map: {result.folder / 'agbm.vrt'}"
    return summary("mapped", len(result.mapped), len(result.skipped), result.failed, "tile", where)
