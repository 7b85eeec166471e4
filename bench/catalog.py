"""A static STAC catalog laid out like the Planetary Computer's, with tiny COGs, for compose.

Collections `sentinel-1-rtc` (assets `vv`, `vh`: linear power, float32, -32768 = no data;
property `sat:orbit_state`) and `sentinel-2-l2a` (assets B02..B12 and SCL, uint16 / uint8;
properties `eo:cloud_cover`, `s2:processing_baseline`). By default every raster covers the
same 640 m square in UTM zone 35N (Finland) and each item's values are constants, so that
what compose made of them can be checked by hand; items may also be larger squares moved
about (`side_px`, `x_shift`, `y_shift`) with a texture, as MGRS tiles cover a region.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pystac
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

CRS = "EPSG:32635"
X0, Y0, SIDE_M = 500000.0, 6800000.0, 640.0
S2_ASSETS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "SCL")
#: Earth Search's names for the same assets.
EARTH_SEARCH = dict(zip(S2_ASSETS, (
    "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16",
    "swir22", "scl",
), strict=True))  # fmt: skip
TWENTY_M = ("B05", "B06", "B07", "B8A", "B11", "B12", "SCL")


def lonlat(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    return transform_bounds(CRS, "EPSG:4326", x0, y0, x1, y1)


#: The area the tests compose: 400 m inside the rasters' 640 m.
AREA = lonlat(X0 + 120, Y0 - 520, X0 + 520, Y0 - 120)


@dataclass
class S1Item:
    day: dt.date
    orbit: str
    vv: float
    vh: float
    #: Far from the area: compose must leave it out.
    elsewhere: bool = False
    #: Eastward shift of its raster, in metres: covers part of the area only.
    x_shift: float = 0.0
    relative_orbit: int = 1
    polarisations: tuple[str, ...] = ("vv", "vh")
    #: Power rising by 0.001 per 10 m eastwards (from `vv`, `vh` at the first column).
    gradient: bool = False
    #: The raster's side in 10 m pixels, and its southward shift in metres.
    side_px: int = 64
    y_shift: float = 0.0
    #: Amplitude of a seeded random texture added to the power (0: none).
    texture: float = 0.0


@dataclass
class S2Item:
    day: dt.date
    dn: int  # every band's digital number: band k holds dn + 10 * k
    scl: int | np.ndarray  # scene class(es) at 20 m, [32, 32]
    baseline: str = "03.01"
    cloud_cover: float = 10.0
    extra: dict = field(default_factory=dict)
    #: Asset names as Earth Search spells them.
    earth_search: bool = False
    #: Eastward shift of its rasters, in metres: covers part of the area only.
    x_shift: float = 0.0
    #: Digital numbers rising by 2 per 5 m eastwards: 4 per 10 m column, 8 per 20 m one,
    #: from `dn + 10 k` at X0 + 5 m.
    gradient: bool = False
    #: The raster's side in 10 m pixels (20 m bands have half as many), and its southward
    #: shift in metres.
    side_px: int = 64
    y_shift: float = 0.0
    #: Amplitude in digital numbers of a seeded random texture added to each band (0: none).
    texture: int = 0


def _cog(
    path: Path,
    array: np.ndarray,
    pixel: float,
    nodata: float,
    x0: float = X0,
    y0: float = Y0,
    blocksize: int | None = None,
) -> None:
    """A one-band cloud-optimised GeoTIFF (GDAL's COG driver) with its top left at (x0, y0),
    in blocks of `blocksize` pixels (default: 16 for the tiny rasters, else 128)."""
    profile = {
        "driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
        "dtype": array.dtype.name, "crs": CRS, "transform": from_origin(x0, y0, pixel, pixel),
        "nodata": nodata,
    }  # fmt: skip
    blocksize = blocksize or (16 if array.shape[0] <= 64 else 128)
    with MemoryFile() as memory:
        with memory.open(**profile) as dst:
            dst.write(array, 1)
        rasterio.shutil.copy(memory.name, path, driver="COG", blocksize=blocksize)


def _item(
    item_id: str, day: dt.date, x0: float, properties: dict, y0: float = Y0, side_m: float = SIDE_M
) -> pystac.Item:
    west, south, east, north = lonlat(x0, y0 - side_m, x0 + side_m, y0)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    when = dt.datetime.combine(day, dt.time(10, 0), tzinfo=dt.timezone.utc)
    geometry = {"type": "Polygon", "coordinates": [ring]}
    return pystac.Item(item_id, geometry, [west, south, east, north], when, properties)


def _collection(name: str) -> pystac.Collection:
    extent = pystac.Extent(
        pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]), pystac.TemporalExtent([[None, None]])
    )
    return pystac.Collection(name, name, extent)


def _asset(path: Path) -> pystac.Asset:
    return pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"])


def build(root: Path, s1: list[S1Item], s2: list[S2Item], blocksize: int | None = None) -> Path:
    """Write the catalog under `root`, its COGs in blocks of `blocksize` pixels (`_cog`);
    returns its catalog.json."""
    catalog = pystac.Catalog("test", "a static catalog in the Planetary Computer's layout")
    rtc, l2a = _collection("sentinel-1-rtc"), _collection("sentinel-2-l2a")
    catalog.add_children([rtc, l2a])
    files = root / "data"
    files.mkdir(parents=True, exist_ok=True)
    for n, spec in enumerate(s1):
        x0 = X0 + (50_000 if spec.elsewhere else spec.x_shift)
        y0, side = Y0 - spec.y_shift, spec.side_px
        properties = {"sat:orbit_state": spec.orbit, "sat:relative_orbit": spec.relative_orbit}
        item = _item(f"S1_{n}", spec.day, x0, properties, y0, side * 10.0)
        values = {"vv": spec.vv, "vh": spec.vh}
        rng = np.random.default_rng(n)
        for name in spec.polarisations:
            array = np.full((side, side), values[name], np.float32)
            if spec.gradient:
                array += np.float32(0.001) * np.arange(side, dtype=np.float32)
            if spec.texture:
                array += (spec.texture * rng.random((side, side))).astype(np.float32)
            path = files / f"S1_{n}_{name}.tif"
            _cog(path, array, 10.0, -32768.0, x0, y0, blocksize)
            item.add_asset(name, _asset(path))
        rtc.add_item(item)
    for n, spec in enumerate(s2):
        properties = {"eo:cloud_cover": spec.cloud_cover, "s2:processing_baseline": spec.baseline}
        x0, y0 = X0 + spec.x_shift, Y0 - spec.y_shift
        item = _item(f"S2_{n}", spec.day, x0, properties | spec.extra, y0, spec.side_px * 10.0)
        rng = np.random.default_rng(1000 + n)
        for k, name in enumerate(S2_ASSETS):
            path = files / f"S2_{n}_{name}.tif"
            twenty = name in TWENTY_M
            side, pixel = (spec.side_px // 2, 20.0) if twenty else (spec.side_px, 10.0)
            if name == "SCL":
                array = np.broadcast_to(np.asarray(spec.scl, np.uint8), (side, side)).copy()
            else:
                array = np.full((side, side), spec.dn + 10 * k, np.uint16)
                if spec.gradient:  # 2 (x - X0 - 5) / 5 at each column's centre
                    centre = np.arange(side) * pixel + pixel / 2
                    array += ((centre - 5) * 2 / 5).astype(np.uint16)
                if spec.texture:
                    array += rng.integers(0, spec.texture, (side, side), dtype=np.uint16)
            _cog(path, array, pixel, 0, x0, y0, blocksize)
            item.add_asset(EARTH_SEARCH[name] if spec.earth_search else name, _asset(path))
        l2a.add_item(item)
    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"
