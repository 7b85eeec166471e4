"""A region's map as a STAC Collection (pystac): one item per tile, so that any STAC tool
(a catalog browser, odc-stac, QGIS's STAC plug-in) finds the tiles and knows what made them.

Each item carries the projection extension (the tile's CRS code, shape and transform), the
year, the checkpoints' SHA-256 and the ids of the Sentinel items its inputs were composed
from; its asset is the tile's COG, linked relative to the collection.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agbm.data.calendar import year_span
from agbm.extras import require
from agbm.io import replacing
from agbm.region.grid import RegionGrid, Tile, reproject
from agbm.region.tiles import inputs_folder, map_path, tile_transform

COLLECTION = "collection.json"


def _input_items(folder: Path, tile: Tile) -> list[str]:
    """The Sentinel item ids a tile's inputs were composed from (its compose.json)."""
    sidecar = inputs_folder(folder, tile) / "compose.json"
    if not sidecar.is_file():
        return []
    months = json.loads(sidecar.read_text()).get("months", [])
    ids = set()
    for month in months:
        s1 = month.get("S1", {})
        ids.update(i for orbit in ("ascending", "descending") for i in s1.get(orbit, []))
        ids.update(month.get("S2", {}).get("items", []))
    return sorted(ids)


def tile_item(folder: Path, grid: RegionGrid, tile: Tile, year: int, record: dict) -> Any:
    """The STAC item of one mapped tile."""
    pystac = require("pystac", "compose")
    projection = require("pystac.extensions.projection", "compose").ProjectionExtension
    shapely = require("shapely", "region")
    footprint = reproject(grid.footprint(tile), grid.crs, "EPSG:4326")
    start, end = year_span(year)
    item = pystac.Item(
        id=tile.id,
        geometry=shapely.geometry.mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=None,
        start_datetime=start,
        end_datetime=end - dt.timedelta(microseconds=1),
        properties={
            "agbm:year": year,
            "agbm:checkpoints_sha256": record["checkpoints"],
            "agbm:inputs": _input_items(folder, tile),
        },
    )
    proj = projection.ext(item, add_if_missing=True)
    transform = list(tile_transform(grid, tile))[:6]
    proj.code, proj.shape, proj.transform = grid.crs, [tile.height, tile.width], transform
    href = str(map_path(folder, tile).resolve())  # made relative when the collection is laid out
    item.add_asset(
        "agbm",
        pystac.Asset(
            href,
            title="above-ground biomass, t/ha",
            media_type=pystac.MediaType.COG,
            roles=["data"],
        ),
    )
    return item


def _union(boxes: Sequence[Sequence[float]]) -> list[float]:
    """The box around `boxes` (W S E N): a collection's extent is one overall box (STAC's
    schema allows a second only with a third: sub-boxes follow the overall one)."""
    west, south, east, north = zip(*boxes, strict=True)
    return [min(west), min(south), max(east), max(north)]


def write_collection(
    folder: Path, grid: RegionGrid, tiles: Sequence[Tile], year: int, record: dict
) -> Path:
    """`collection.json` and its items (`items/{tile}.json`), for the mapped `tiles`, with
    links and asset hrefs relative, written atomically (the collection last)."""
    pystac = require("pystac", "compose")
    items = [tile_item(folder, grid, t, year, record) for t in tiles]
    spatial = [_union([item.bbox for item in items]) if items else [-180.0, -90.0, 180.0, 90.0]]
    start, end = year_span(year)
    collection = pystac.Collection(
        id=f"agbm-{year}",
        description=f"Above-ground biomass (t/ha), {year - 1}-09 to {year}-08, mapped by agbm",
        extent=pystac.Extent(pystac.SpatialExtent(spatial), pystac.TemporalExtent([[start, end]])),
        license="other",
        catalog_type=pystac.CatalogType.SELF_CONTAINED,  # every link relative: it can move
    )
    for item in items:
        collection.add_item(item)
    layout = require("pystac.layout", "compose").TemplateLayoutStrategy(item_template="items")
    collection.normalize_hrefs(str(Path(folder).resolve()), strategy=layout)  # items/{tile}.json
    collection.make_all_asset_hrefs_relative()
    for item in items:
        path = Path(item.get_self_href())
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp:
            tmp.write_text(json.dumps(item.to_dict(include_self_link=False), indent=1))
    out = Path(collection.get_self_href())
    with replacing(out) as tmp:
        tmp.write_text(json.dumps(collection.to_dict(include_self_link=False), indent=1))
    return out
