"""`agbm map-region` over 3 x 3 tiles of a polygon with a hole, against a catalog whose
Sentinel-2 items cover different parts of the region, as MGRS tiles do: the map does not
depend on the tiling, and a broken file fails only the tiles that read it."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import geopandas
import numpy as np
import pytest
import rasterio
import shapely

from agbm.cli import main
from agbm.inference import InferenceOptions
from agbm.inference.tiling import plan_tiling
from agbm.models import TemporalUNet, save_model
from agbm.region import grid_of
from agbm.region.engine import RegionPlan, map_region
from bench.catalog import CRS, X0, Y0, S1Item, S2Item, build

D = dt.date
#: The region: 7.5 km a side with its north-east corner cut off and a 1.7 km hole.
OUTER = [(100, -7600), (7600, -7600), (7600, -2000), (5700, -100), (100, -100)]
HOLE = [(3000, -4700), (4700, -4700), (4700, -3000), (3000, -3000)]
#: The one item only the south-east tile reads (x, y >= 5400 m from X0, Y0).
CORNER_ITEM = "S2_4"
WINDOW = ["--window", "64", "--overlap", "16", "--tta", "none", "--batch-size", "8"]


def _polygon() -> shapely.Polygon:
    def ring(points: list[tuple[int, int]]) -> list[tuple[float, float]]:
        return [(X0 + x, Y0 + y) for x, y in points]

    return shapely.Polygon(ring(OUTER), [ring(HOLE)])


def _catalog(root: Path) -> Path:
    """One S1 item over everything; four overlapping 4.8 km S2 squares of four July dates
    with their own values and textures; a June S2 item in the south-east corner only."""
    s1 = [S1Item(D(2021, 7, 2), "ascending", 0.1, 0.01, gradient=True, side_px=820,
                 x_shift=-200, y_shift=-200, texture=0.05)]  # fmt: skip
    s2 = [
        S2Item(D(2021, 7, 5 + 5 * n), 2000 + 400 * n, 4, side_px=480, texture=300,
               x_shift=-200 + 3600 * (n % 2), y_shift=-200 + 3600 * (n // 2))
        for n in range(4)
    ]  # fmt: skip
    s2.append(S2Item(D(2021, 6, 12), 3500, 4, side_px=240, x_shift=5400, y_shift=5400))
    return build(root, s1, s2)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory, scheduler: str) -> dict[str, Path]:
    """The catalog, the region file (a GeoPackage in UTM), a tiny model, and the region
    mapped in 256 px tiles through the CLI."""
    root = tmp_path_factory.mktemp("region3x3")
    paths = {"stac": _catalog(root / "stac"), "area": root / "area.gpkg", "model": root / "m.pt"}
    geopandas.GeoDataFrame(geometry=[_polygon()], crs=CRS).to_file(paths["area"])
    save_model(paths["model"], TemporalUNet("test_efficientnet", decoder_channels=(16,) * 5))
    paths["scheduler"] = scheduler
    paths["tiled"] = root / "tiled"
    assert main([*_args(paths), "--out", str(paths["tiled"])]) == 0
    return paths


def _args(paths: dict[str, Path], stac: Path | None = None) -> list[str]:
    return [
        "map-region", "--region", str(paths["area"]), "--year", "2021",
        "--catalog", str(stac or paths["stac"]), "--checkpoint", str(paths["model"]),
        "--tile-size", "256", "--scheduler", str(paths["scheduler"]), *WINDOW,
    ]  # fmt: skip


def _map(folder: Path) -> np.ndarray:
    with rasterio.open(folder / "agbm.vrt") as src:
        return src.read(1)


def test_the_map_is_the_same_in_3_x_3_tiles_and_in_one_with_no_data_in_the_hole(
    region: dict[str, Path], tmp_path: Path
) -> None:
    grid = grid_of(region["area"])
    assert (grid.crs, grid.shape) == ("EPSG:32635", (750, 750))
    assert len(grid.tiles(256)) == 9
    options = InferenceOptions((region["model"],), "none", window=64, overlap=16)
    plan = RegionPlan(tmp_path / "one", grid, 2021, 768, region["stac"], None, region["scheduler"])
    one = map_region(plan, options=options)
    assert one.mapped == ["r0000_c0000"] and not one.failed
    tiled, single = _map(region["tiled"]), _map(tmp_path / "one")
    rows, cols = np.mgrid[0:750, 0:750]
    xs, ys = grid.transform @ (cols + 0.5, rows + 0.5)
    inside = shapely.contains_xy(_polygon(), xs, ys)
    in_hole = shapely.contains_xy(shapely.Polygon(_polygon().interiors[0]), xs, ys)
    assert in_hole.sum() == 170 * 170 and (~inside & ~in_hole).any()  # the corner cut off
    assert np.isfinite(tiled[inside]).all() and np.isnan(tiled[~inside]).all()
    np.testing.assert_allclose(tiled, single, atol=1e-3, rtol=0)
    assert np.nanstd(tiled) > 0  # the textures come through: seams would show
    assert (region["tiled"] / "agbm.png").stat().st_size > 0
    assert not (region["tiled"] / "partials").exists() or not any(
        (region["tiled"] / "partials").iterdir()
    )
    report = json.loads((region["tiled"] / "region.json").read_text())
    assert report["windows_predicted"] == len(
        plan_tiling(750, 750, window=64, overlap=16).corners()
    )
    assert report["passes_per_pixel"] == pytest.approx(
        report["windows_predicted"] * 64**2 / 750**2, abs=1e-3
    )
    totals = report["task_totals"]
    assert [totals[k]["tasks"] for k in ("compose", "predict", "blend")] == [9, 9, 9]
    assert all(totals[k]["seconds"] > 0 and totals[k]["peak_mib"] > 0 for k in totals)
    with rasterio.open(region["tiled"] / "inputs" / "S2.vrt") as s2:  # kept for other models
        assert (s2.count, s2.shape) == (132, (750, 750))


def test_a_broken_file_fails_only_the_tiles_that_read_it_and_names_it(
    region: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stac = tmp_path / "stac"
    shutil.copytree(region["stac"].parent, stac)
    broken = stac / "data" / f"{CORNER_ITEM}_B04.tif"
    broken.write_bytes(broken.read_bytes()[:1000])
    args = [*_args(region, stac / "catalog.json"), "--retries", "0"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "mapped 5 tile(s), 0 already done, 4 failed" in out
    failed = re.findall(r"tile (r\d+_c\d+) failed: (.*)", out)
    assert [t for t, _ in failed] == ["r0001_c0001", "r0001_c0002", "r0002_c0001", "r0002_c0002"]
    assert all("composing tile r0002_c0002" in c and broken.name in c for _, c in failed)
    partials = sorted(p.stem for p in (tmp_path / "out" / "partials").iterdir())
    assert "r0000_c0000" in partials  # the failed tiles' maps need it: kept for a rerun
    mapped = _map(tmp_path / "out")
    np.testing.assert_allclose(mapped[:256], _map(region["tiled"])[:256], atol=1e-3, rtol=0)
    assert np.isnan(mapped[512:, 512:]).all()


def test_a_dry_run_prints_the_plan_and_touches_nothing(
    region: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sizing a run before it starts: tiles, windows, passes per pixel, bytes; no folder."""
    out = tmp_path / "never"
    assert main([*_args(region), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    windows = len(plan_tiling(750, 750, window=64, overlap=16).corners())
    assert lines[0] == "tiles: 9 (56 km² composed)"
    assert lines[1] == f"windows: {windows:,}, each predicted once: " + (
        f"{round(windows * 64**2 / 750**2, 3)} window passes per pixel"
    )
    assert lines[2].startswith("to fetch: ~0.00 TB") and not out.exists()
