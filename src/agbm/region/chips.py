"""`agbm chips`: 256 x 256 training chips where the labels are, composed from a STAC catalog
on the region engine, in the BioMassters layout, each with its labels on its own grid.

The labels' grid is the region grid of their points (`--crs`, or the UTM zone of their
centre; 10 m pixels on multiples of 10 m), cut into chips of `CHIP` pixels from its corner:
the lattice clusters the labels, so that one chip serves every label it covers, and only
chips holding a label are made. Each chip is composed as a region tile is (`compose_tile`:
each month's S2 acquisition chosen over the chip, as the model saw one per month and chip),
on a Dask cluster, then written as `train_features/{chip}_S1_{MM}.tif` and `_S2_{MM}.tif`
(a month without data has no file, as in the challenge) with `train_labels/{chip}_labels.csv`
last: a chip whose labels file exists is done, so a rerun goes on from the chips done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agbm.compose.catalog import PLANETARY_COMPUTER, catalog_url
from agbm.compose.stacks import check_imagery
from agbm.data.bands import MONTHS, SENSORS
from agbm.data.geotiff import read_raster, write_geotiff
from agbm.data.layout import features_folder, features_path
from agbm.errors import DataError
from agbm.extras import require
from agbm.io import claim_record, file_sha256, hold_folder, output_folder
from agbm.labels.chips import (
    check_all_placed,
    chip_labels_path,
    pixel_positions,
    split_frame,
    write_chip_labels,
)
from agbm.labels.frame import read_labels
from agbm.region.cluster import client_for, placement, worker_resources
from agbm.region.grid import RegionGrid, Tile, region_grid
from agbm.region.report import summary
from agbm.region.tasks import cause_line, compose_task
from agbm.region.tiles import inputs_folder, tile_transform

#: The chips' side, in pixels: the challenge's 2.56 km.
CHIP = 256
#: What a chips folder was made for.
RECORD = "chips.json"


@dataclass
class ChipsResult:
    """What a run made: chips written now, already done, failed (chip -> cause)."""

    folder: Path
    made: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def labels_grid(labels: Any, crs: str | None = None) -> RegionGrid:
    """The grid of the labels' points (`region_grid` of them, one pixel wider so that a
    point on its east or south edge is on it), widened to whole chips."""
    shapely = require("shapely", "region")
    points = shapely.multipoints(shapely.points(labels.geometry.x, labels.geometry.y))
    grid = region_grid(points, "EPSG:4326", crs)
    shape = tuple(-(-(n + 1) // CHIP) * CHIP for n in grid.shape)
    return RegionGrid(grid.area, grid.crs, grid.transform, shape)


def chip_id(tile: Tile) -> str:
    """A chip's id in the layout (letters and digits only): its place on the lattice."""
    return tile.id.replace("_", "")


def chips_with_labels(grid: RegionGrid, labels: Any, source: Path) -> dict[str, tuple]:
    """(tile, its labels) of each chip of the grid that holds a label, by chip id: each
    label's chip is its pixel's place on the lattice, so the cost grows with the labels,
    not with the chips of their bounding grid. A label off the grid is an error naming
    `source` (`check_all_placed`)."""
    points = labels.geometry.to_crs(grid.crs)
    x, y = points.x.to_numpy(), points.y.to_numpy()
    rows, cols, on = pixel_positions(grid.transform, grid.shape, x, y)
    check_all_placed(labels, on, source)
    tile_row, tile_col = ((v // CHIP).astype(np.int64) for v in (rows, cols))
    lattice = tile_row * (grid.shape[1] // CHIP + 1) + tile_col  # one number per chip
    _, first, counts = np.unique(lattice, return_index=True, return_counts=True)
    order = np.argsort(lattice, kind="stable")  # the labels chip by chip, in file order
    tops, lefts = tile_row * CHIP, tile_col * CHIP
    tiles = [grid.tile(int(tops[i]), int(lefts[i]), CHIP) for i in first]
    ids = [chip_id(t) for t in tiles]
    frames = split_frame(
        labels, ids, counts, order, (rows - tops)[order], (cols - lefts)[order],
        abs(grid.transform.a),
    )  # fmt: skip
    return {cid: (tile, frames[cid]) for cid, tile in zip(ids, tiles, strict=True)}


def write_chip_features(folder: Path, grid: RegionGrid, tile: Tile, cid: str) -> None:
    """A composed tile as the layout's monthly files; a month without data has none, and a
    chip without any is a `DataError` (it would teach nothing)."""
    composed = inputs_folder(folder / "compose", tile)
    transform = tile_transform(grid, tile)
    written = 0
    for sensor in SENSORS:
        stack = read_raster(composed / f"{sensor.name}.tif", MONTHS * sensor.count)
        for month in range(MONTHS):
            image = stack[month * sensor.count : (month + 1) * sensor.count]
            if sensor.observed(image).any():
                path = features_path(folder, cid, sensor.name, month, "train")
                write_geotiff(path, image, grid.crs, transform, sensor.nodata, tiled=False)
                written += 1
    if not written:
        raise DataError(f"chip {cid}: no Sentinel-1 or Sentinel-2 data all year over it")


def make_chips(
    labels_path: Path | str,
    year: int,
    folder: Path | str,
    *,
    catalog: str | Path = PLANETARY_COMPUTER,
    s2_catalog: str | Path | None = None,
    crs: str | None = None,
    scheduler: str | None = None,
    retries: int = 2,
    progress: bool = False,
) -> ChipsResult:
    """Make the chips of the labels at `labels_path` for `year` in `folder` (see the module
    docstring): `catalog`, `s2_catalog` as for `agbm map-region`, `crs` the chips' grid,
    `scheduler` a Dask cluster (default: this machine's), `retries` per chip, `progress` a
    bar of the chips. Every path is
    made absolute here, before it reaches a worker that may run in another working folder."""
    folder, labels_path = Path(os.path.abspath(folder)), Path(labels_path)
    catalog, s2_catalog = catalog_url(catalog), s2_catalog and catalog_url(s2_catalog)
    labels = read_labels(labels_path)
    grid = labels_grid(labels, crs)
    chips = chips_with_labels(grid, labels, labels_path)
    check_imagery(catalog, s2_catalog, grid.lonlat_bounds(), year)
    record = {
        "year": year, **grid.fields(),
        "catalogs": [str(catalog), str(s2_catalog or catalog)],
        "labels": file_sha256(labels_path),
    }  # fmt: skip
    result = ChipsResult(folder)
    # The cluster is reached before the folder is claimed: one that is not leaves no folder.
    with (
        client_for(scheduler, predicting=False) as client,
        output_folder(folder),
        hold_folder(folder, "agbm chips"),
    ):
        claim_record(folder / RECORD, record, "give another folder, or delete this one")
        done = {c for c in chips if chip_labels_path(folder, c, "train").is_file()}
        todo = {c: v for c, v in chips.items() if c not in done}
        result.done = sorted(done)
        features_folder(folder, "train").mkdir(parents=True, exist_ok=True)
        jobs = ComposeJobs(folder, grid, year, catalog, s2_catalog, retries)
        _compose_chips(client, result, jobs, todo, progress)
    return result


@dataclass(frozen=True)
class ComposeJobs:
    """How a run's chips are composed: into `folder` on `grid`, for `year`, from `catalog`
    (Sentinel-2 from `s2_catalog`), each retried `retries` times."""

    folder: Path
    grid: RegionGrid
    year: int
    catalog: str | Path
    s2_catalog: str | Path | None
    retries: int


def _compose_chips(
    client: Any, result: ChipsResult, jobs: ComposeJobs, todo: dict[str, tuple], progress: bool
) -> None:
    """Compose `todo`'s chips on the cluster; write each one's files as it comes."""
    distributed = require("distributed", "region")
    folder, grid, year, retries = jobs.folder, jobs.grid, jobs.year, jobs.retries
    catalog, s2_catalog = jobs.catalog, jobs.s2_catalog
    resources = placement(worker_resources(client))[0]
    futures = {
        client.submit(
            compose_task, folder / "compose", grid, tile, year=year, catalog=catalog,
            s2_catalog=s2_catalog, key=f"chip-{cid}", retries=retries, pure=False,
            resources=resources,
        ): cid
        for cid, (tile, _) in todo.items()
    }  # fmt: skip
    with tqdm(total=len(futures), desc="chips", unit="chip", disable=not progress) as bar:
        for future in distributed.as_completed(list(futures)):
            cid = futures[future]
            try:
                future.result()
                tile, frame = todo[cid]
                write_chip_features(folder, grid, tile, cid)
                write_chip_labels(folder, "train", {cid: frame})  # last: the chip is done
                result.made.append(cid)
            except Exception as exc:  # its own cause, after Dask's retries
                result.failed[cid] = cause_line(exc)
            bar.update()


def describe(result: ChipsResult) -> str:
    """`summary` of a chips run."""
    where = f"chips: {result.folder}"
    return summary("made", len(result.made), len(result.done), result.failed, "chip", where)
