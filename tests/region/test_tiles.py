"""A region's tiles composed, joined and predicted, against the static test catalog."""

from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch

from agbm.data.conventions import InputConventions
from agbm.inference.layers import BOUND_BANDS, MAP_BAND, SPREAD_BAND, MapLayers
from agbm.inference.scene import Predictor, model_predictor
from agbm.inference.tiling import Tiling, plan_tiling
from agbm.models import TemporalUNet
from agbm.region import region_grid
from agbm.region.grid import RegionGrid, Tile
from agbm.region.lattice import plan_windows
from agbm.region.tiles import (
    blend_tile,
    compose_tile,
    map_path,
    partial_path,
    predict_windows,
    write_inputs_mosaic,
)
from bench.catalog import AREA, S1Item, S2Item, build

D = dt.date


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    s1 = [S1Item(D(2021, 7, 2), "ascending", 0.1, 0.01, gradient=True)]
    s2 = [S2Item(D(2021, 7, 20), 3000, 4, gradient=True)]
    return build(tmp_path_factory.mktemp("stac"), s1, s2)


def _map_tile(
    folder: Path, grid: RegionGrid, tile: Tile, predictor: Predictor, tiling: Tiling,
    conventions: InputConventions, layers: MapLayers,
) -> Path:  # fmt: skip
    """A region of one tile: it predicts the windows it owns, then blends its map."""
    windows = plan_windows([tile], tiling, 256)
    assert windows.sources == {tile.id: [tile.id]}
    corners = windows.owned[tile.id]
    assert corners == tiling.corners()  # one tile owns every window
    partial = predict_windows(
        folder, grid, tile, predictor, tiling=tiling, corners=corners,
        conventions=conventions, batch_size=4, layers=layers,
    )  # fmt: skip
    assert partial == partial_path(folder, tile.id)
    return blend_tile(folder, grid, tile, sources=[tile.id], layers=layers)


def test_a_tile_is_composed_joined_and_mapped_with_no_data_outside_the_area_blending_without_torch(
    catalog: Path, tmp_path: Path
) -> None:
    west, south, east, north = AREA
    lower_half = shapely.box(west, south, east, (south + north) / 2)  # the region's area
    grid = region_grid(lower_half, "EPSG:4326")
    (tile,) = grid.tiles(256)  # a 400 x 200 m area: one tile
    inputs = compose_tile(tmp_path, grid, tile, year=2021, catalog=catalog)
    with rasterio.open(inputs / "S2.tif") as s2:
        assert (s2.count, s2.shape, s2.transform) == (132, grid.shape, grid.transform)
    for vrt in write_inputs_mosaic(tmp_path, grid, [tile]):
        with rasterio.open(vrt) as src:
            assert src.shape == grid.shape and src.count in (48, 132)
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16)).eval()
    torch.manual_seed(0)
    predictor = model_predictor([model], torch.device("cpu"), tta="none")
    tiling = plan_tiling(*grid.shape, window=32, overlap=8)
    out = _map_tile(tmp_path, grid, tile, predictor, tiling, model.conventions, MapLayers())
    assert out == map_path(tmp_path, tile)
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert (src.shape, src.transform, src.crs.to_string()) == (
            grid.shape,
            grid.transform,
            grid.crs,
        )
        agbm = src.read(1)
    inside = grid.inside(tile)
    assert inside.any() and not inside.all()
    assert np.isfinite(agbm[inside]).all() and np.isnan(agbm[~inside]).all()
    out.unlink()  # blended again from its partial sums, as a compose worker does
    code = (
        "import sys, pickle; from agbm.region.tiles import blend_tile; "
        "folder, grid, tile, layers = pickle.loads(sys.stdin.buffer.read()); "
        "blend_tile(folder, grid, tile, sources=[tile.id], layers=layers); "
        "print([m for m in ('torch', 'timm', 'segmentation_models_pytorch') if m in sys.modules])"
    )
    task = pickle.dumps((tmp_path, grid, tile, MapLayers()))
    done = subprocess.run(
        [sys.executable, "-c", code], input=task, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().splitlines()[-1] == "[]"
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), agbm)


def test_composing_a_tile_loads_no_torch(catalog: Path, tmp_path: Path) -> None:
    """What a compose worker does, run in a fresh interpreter: the tile is composed, and
    torch, timm and smp stay out of `sys.modules` (a worker holds ~1 GB less)."""
    code = (
        "import sys, shapely; from agbm.region import region_grid; "
        "from agbm.region.tiles import compose_tile; "
        f"grid = region_grid(shapely.box(*{AREA!r}), 'EPSG:4326'); "
        f"out = compose_tile({str(tmp_path)!r}, grid, grid.tiles(256)[0], year=2021, "
        f"catalog={str(catalog)!r}); "
        "print((out / 'S2.tif').is_file(), "
        "[m for m in ('torch', 'timm', 'segmentation_models_pytorch') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().splitlines()[-1] == "True []"


def test_a_tile_carries_its_bounds_as_bands_2_and_3_and_the_spread_as_4(
    catalog: Path, tmp_path: Path
) -> None:
    grid = region_grid(shapely.box(*AREA), "EPSG:4326")
    (tile,) = grid.tiles(256)
    compose_tile(tmp_path, grid, tile, year=2021, catalog=catalog)
    write_inputs_mosaic(tmp_path, grid, [tile])
    model = TemporalUNet("test_efficientnet", decoder_channels=(16,) * 5).eval()
    predictor = model_predictor([model], torch.device("cpu"), tta="hv", spread=True)
    tiling = plan_tiling(*grid.shape, window=32, overlap=8)

    def bounds(agbm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.maximum(agbm - 5, 0), agbm + 5

    layers = MapLayers(bounds, spread=True, tags={"AGBM_BOUNDS": "test"})
    out = _map_tile(tmp_path, grid, tile, predictor, tiling, model.conventions, layers)
    with rasterio.open(out) as src:
        assert src.count == 4 and src.tags()["AGBM_BOUNDS"] == "test"
        assert "AGBM_UNITS" in src.tags()  # beside the layers' own tags
        assert src.descriptions == (MAP_BAND, *BOUND_BANDS, SPREAD_BAND)
        agbm, low, high, spread = src.read()
    inside = np.isfinite(agbm)
    np.testing.assert_allclose(high[inside], agbm[inside] + 5, atol=1e-4)
    assert (spread[inside] >= 0).all() and spread[inside].max() > 0
    assert not np.allclose(spread[inside], agbm[inside])
    assert np.isnan(low[~inside]).all() and np.isnan(spread[~inside]).all()
