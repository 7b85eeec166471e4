"""`agbm stats`: zone totals against hand computations, intervals from a calibration."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from agbm.cli import main
from agbm.data.geotiff import write_geotiff
from agbm.errors import AgbmWarning, DataError
from agbm.evaluation.totals import zone_stats
from agbm.inference.intervals import EDGES, STEP, Calibration

UTM = "EPSG:32635"
X0, Y0 = 500000.0, 6800000.0  # the map's top-left corner; 40 x 40 pixels of 10 m
#: 100 t/ha in the west half, 200 in the east, no data in the 10 x 10 south-east corner.
VALUES = np.full((40, 40), 100.0, np.float32)
VALUES[:, 20:] = 200.0
VALUES[30:, 30:] = np.nan
#: The true area of a nominal hectare of the map: UTM shrinks areas by k0^2 = 0.9996^2 on
#: its central meridian (x = 500 km), where the map lies.
HA = 1 / 0.9996**2


@pytest.fixture()
def agbm_map(tmp_path: Path) -> Path:
    path = tmp_path / "agbm.tif"
    write_geotiff(path, VALUES, UTM, Affine(10, 0, X0, 0, -10, Y0), np.nan, ["agbm"], {})
    return path


def _zones(tmp_path: Path, geometries: list, crs: str = UTM, name: str = "zones.gpkg") -> Path:
    frame = geopandas.GeoDataFrame({"name": [f"z{i}" for i in range(len(geometries))]},
                                   geometry=geometries, crs=crs)  # fmt: skip
    path = tmp_path / name
    frame.to_file(path)
    return path


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box in metres from the map's corner (y downwards)."""
    return shapely.box(X0 + x0, Y0 - y1, X0 + x1, Y0 - y0)


def test_totals_equal_hand_computations(agbm_map: Path, tmp_path: Path) -> None:
    square = box(0, 0, 100, 100)  # 1 ha on whole pixels, all 100 t/ha
    halves = box(195, 0, 205, 100)  # 0.1 ha across the 100 | 200 edge: half on each side
    in_degrees = geopandas.GeoSeries([box(0, 0, 100, 100)], crs=UTM).to_crs("EPSG:4326")[0]
    outside = box(1000, 1000, 1100, 1100)
    corner = box(290, 290, 400, 400)  # 1.21 ha; with data: row 29 and column 29, 21 pixels
    zones = _zones(tmp_path, [square, halves, outside, corner])
    stats = zone_stats(agbm_map, zones, "name")
    assert list(stats["zone"]) == ["z0", "z1", "z2", "z3"]
    np.testing.assert_allclose(stats["area_ha"], [1.0, 0.1, 1.0, 1.21], rtol=2e-3)  # geodesic
    np.testing.assert_allclose(stats["mapped_ha"][[0, 1, 3]], np.r_[1.0, 0.1, 0.21] * HA, 1e-6)
    np.testing.assert_allclose(stats["agbd_mean_t_ha"][[0, 1, 3]], [100.0, 150.0, 200.0])
    np.testing.assert_allclose(stats["agb_t"][[0, 1, 3]], np.r_[100.0, 15.0, 42.0] * HA, 1e-6)
    np.testing.assert_allclose(stats["carbon_t"][0], 47.0 * HA)
    np.testing.assert_allclose(stats["co2e_t"][0], 47.0 * HA * 44 / 12)
    assert stats["mapped_ha"][2] == 0 and np.isnan(stats["agb_t"][2])  # a row, not an error
    lonlat = zone_stats(agbm_map, _zones(tmp_path, [in_degrees], "EPSG:4326", "ll.gpkg"))
    assert lonlat["agb_t"][0] == pytest.approx(100.0 * HA, rel=1e-3)
    two_parts = shapely.MultiPolygon([box(0, 0, 100, 100), box(300, 0, 400, 100)])  # 1 + 1 ha
    holed = shapely.Polygon(box(0, 0, 200, 200).exterior, [box(50, 50, 150, 150).exterior])
    shapes = zone_stats(agbm_map, _zones(tmp_path, [two_parts, holed], name="shapes.gpkg"))
    np.testing.assert_allclose(shapes["mapped_ha"], np.r_[2.0, 3.0] * HA, rtol=1e-6)
    # 100 t/ha west of x = 200 m, 200 east; the holed square is all west: 3 ha x 100
    np.testing.assert_allclose(shapes["agb_t"], np.r_[100.0 + 200.0, 300.0] * HA, rtol=1e-6)


def _calibration(
    path: Path, blocks: dict[int, float], checkpoint: str = "x", n: dict[int, int] | None = None
) -> Path:
    """A calibration of model `checkpoint` (SHA-256) whose block residuals all equal the given
    value per side, `n[side]` of them (1000 by default): its quantile is that value (rounded
    up to the histogram's step)."""

    def counts(side: int, value: float) -> list[int]:
        histogram = np.zeros(len(EDGES) - 1, int)
        histogram[int(value / STEP)] = (n or {}).get(side, 1000)
        return histogram.tolist()

    sides = {str(s): counts(s, v) for s, v in blocks.items()}
    return Calibration([checkpoint], "none", [[]] * 7, sides, 10).write(path)


def test_the_interval_of_a_total_comes_from_the_nearest_calibrated_block(
    agbm_map: Path, tmp_path: Path
) -> None:
    calibration = _calibration(tmp_path / "calib.json", {1: 40.0, 4: 20.0, 16: 10.0})
    zones = _zones(tmp_path, [box(0, 0, 40, 40), box(0, 0, 160, 160), box(0, 0, 400, 300)])
    stats = zone_stats(agbm_map, zones, calibration=calibration, coverage=0.9)
    # 16 px: nearest the 4 x 4 block (+-20 t/ha); 256 px: 16 x 16 (+-10); 1,200 px, beyond
    # the largest block's 256: the largest block's (+-10), the conservative rule
    half = np.array([20.0, 10.0, 10.0]) + STEP  # the histogram bin's upper edge
    mapped = stats["mapped_ha"].to_numpy()
    np.testing.assert_allclose(stats["agb_t_low"], stats["agb_t"] - half * mapped, rtol=1e-6)
    np.testing.assert_allclose(stats["agb_t_high"], stats["agb_t"] + half * mapped, rtol=1e-6)
    np.testing.assert_allclose(stats["co2e_t_high"], stats["agb_t_high"] * 0.47 * 44 / 12)
    assert list(stats["interval_block_px"]) == [4, 16, 16] and set(stats["coverage"]) == {0.9}


def test_a_calibration_of_another_model_than_the_maps_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The map names its model in its tags; a map without them is used with a warning."""
    zones = _zones(tmp_path, [box(0, 0, 100, 100)])
    calibration = _calibration(tmp_path / "calib.json", {1: 10.0}, checkpoint="a" * 64)
    grid = (UTM, Affine(10, 0, X0, 0, -10, Y0), np.nan, ["agbm"])
    for name, sha in (("ours.tif", "a" * 64), ("theirs.tif", "b" * 64)):
        tags = {"AGBM_CHECKPOINTS": sha, "AGBM_TTA": "none"}
        write_geotiff(tmp_path / name, VALUES, *grid, tags)
    stats = zone_stats(tmp_path / "ours.tif", zones, calibration=calibration)
    assert stats["agb_t_high"][0] == pytest.approx((100.0 + 10.05) * HA)
    with pytest.raises(DataError, match=r"calib\.json: calibrated for .* not \S*theirs\.tif's"):
        zone_stats(tmp_path / "theirs.tif", zones, calibration=calibration)
    write_geotiff(tmp_path / "untagged.tif", VALUES, *grid, {})
    with pytest.warns(AgbmWarning, match="untagged.tif does not name the model that made it"):
        untagged = zone_stats(tmp_path / "untagged.tif", zones, calibration=calibration)
    assert np.isfinite(untagged["agb_t_high"][0])


def test_stats_writes_each_format_and_refuses_bad_zones(
    agbm_map: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = _zones(tmp_path, [box(0, 0, 100, 100), box(1000, 1000, 1100, 1100)])  # 2nd: off
    calibration = str(_calibration(tmp_path / "calib.json", {1: 10.0}))
    for suffix, name in ((".csv", "zones.geojson"), (".gpkg", "zones.shp"), (".parquet", None)):
        given = _zones(tmp_path, [box(0, 0, 100, 100)], name=name) if name else zones
        out = tmp_path / f"stats{suffix}"
        assert main(["stats", "--map", str(agbm_map), "--zones", str(given), "--id", "name",
                     "--calibration", calibration, "--out", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(tmp_path / "stats.csv")
    assert table["agb_t"][0] == pytest.approx(100.0 * HA) and table["interval_block_px"][0] == 1
    assert list(pd.read_parquet(tmp_path / "stats.parquet")["interval_block_px"]) == [1, pd.NA]
    assert geopandas.read_file(tmp_path / "stats.gpkg")["agb_t"][0] == pytest.approx(100.0 * HA)
    assert pd.read_parquet(tmp_path / "stats.parquet")["agb_t"][0] == pytest.approx(100.0 * HA)
    assert "100 t of above-ground biomass" in capsys.readouterr().out
    with pytest.raises(DataError, match=r"zones\.gpkg: no field 'plot' for `id_field`"):
        zone_stats(agbm_map, zones, "plot")
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 100, Y0 - 100), (X0 + 100, Y0), (X0, Y0 - 100)])
    bad = _zones(tmp_path, [bowtie], name="bad.gpkg")
    with pytest.raises(DataError, match=r"bad\.gpkg: zone 0 is not a valid polygon"):
        zone_stats(agbm_map, bad)


def _warped(source: Path, crs: str, path: Path) -> Path:
    """The map at `source` reprojected onto `crs` (rasterio's default grid, bilinear)."""
    with rasterio.open(source) as src:
        transform, width, height = calculate_default_transform(
            src.crs, crs, src.width, src.height, *src.bounds
        )
        out = np.full((height, width), np.nan, np.float32)
        reproject(rasterio.band(src, 1), out, dst_transform=transform, dst_crs=crs,
                  dst_nodata=np.nan, resampling=Resampling.bilinear)  # fmt: skip
    write_geotiff(path, out, crs, transform, np.nan, ["agbm"], {})
    return path


def test_totals_are_the_same_in_any_crs(tmp_path: Path) -> None:
    """One smooth field over Finland (60-65 N) in equal-area EPSG:3035, in Web Mercator
    (where a pixel covers 1/4.5 of its nominal area at 62 N) and in lon/lat: the same
    totals, each pixel taken at its true area on the ellipsoid."""
    x0, y0, side = 4_900_000.0, 4_750_000.0, 2000.0  # 300 x 300 px of 2 km, 20-34 E, 59-65 N
    y, x = np.mgrid[0:300, 0:300] * side
    field = (100 + 50 * np.sin(x / 90e3) * np.cos(y / 70e3)).astype(np.float32)
    laea = tmp_path / "laea.tif"
    write_geotiff(laea, field, "EPSG:3035", Affine(side, 0, x0, 0, -side, y0), np.nan,
                  ["agbm"], {})  # fmt: skip
    zones = _zones(tmp_path, [
        shapely.box(23.0, 61.0, 25.0, 62.0),
        shapely.Polygon([(25.5, 62.0), (28.5, 62.2), (26.5, 64.0)]),
    ], crs="EPSG:4326")  # fmt: skip
    totals = {
        crs: zone_stats(map_path, zones)
        for crs, map_path in (
            ("EPSG:3035", laea),
            ("EPSG:3857", _warped(laea, "EPSG:3857", tmp_path / "mercator.tif")),
            ("EPSG:4326", _warped(laea, "EPSG:4326", tmp_path / "lonlat.tif")),
        )
    }
    reference = totals["EPSG:3035"]
    for stats in totals.values():
        for column in ("agb_t", "mapped_ha", "area_ha"):
            np.testing.assert_allclose(stats[column], reference[column], rtol=5e-3)
        assert (stats["mapped_ha"] <= stats["area_ha"]).all()
        np.testing.assert_allclose(stats["mapped_ha"], stats["area_ha"], rtol=5e-3)


@pytest.mark.parametrize("fraction", ["-0.5", "1.5", "0", "nan"])
def test_a_carbon_fraction_outside_0_to_1_is_refused(
    agbm_map: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fraction: str
) -> None:
    zones, out = _zones(tmp_path, [box(0, 0, 100, 100)]), tmp_path / "stats.csv"
    assert main(["stats", "--map", str(agbm_map), "--zones", str(zones), "--out", str(out),
                 "--carbon-fraction", fraction]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "error: --carbon-fraction must be in (0, 1] (carbon per unit of dry biomass" in err
    assert err.endswith(f"not {float(fraction)}\n") and err.count("\n") == 1
    assert not out.exists()


def test_intervals_a_coverage_cannot_give_are_refused_or_come_from_a_smaller_block(
    agbm_map: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--coverage 0.9999, or a block with too few residuals, gave agb_t_high inf silently."""
    zones = _zones(tmp_path, [box(0, 0, 40, 40), box(0, 0, 160, 160)])  # 16 and 256 px
    calibration = _calibration(tmp_path / "calib.json", {1: 40.0, 4: 20.0, 16: 10.0}, n={16: 5})
    out = tmp_path / "stats.csv"
    args = ["stats", "--map", str(agbm_map), "--zones", str(zones), "--out", str(out),
            "--calibration", str(calibration)]  # fmt: skip
    assert main([*args, "--coverage", "0.9999"]) == 2  # 1000 residuals a block; it needs 9,999
    refused = ("calib.json: --coverage 0.9999 needs at least 9,999 residuals per block size, "
               "and its block sizes hold at most 1,000")  # fmt: skip
    assert refused in capsys.readouterr().err and not out.exists()
    said = ("too few residuals for `coverage` 0.9 (it needs 9) in the block sizes 16 px (5): "
            "zones of their size take the nearest smaller block that has them (wider)")  # fmt: skip
    with pytest.warns(AgbmWarning, match=re.escape(said)):
        stats = zone_stats(agbm_map, zones, calibration=calibration, coverage=0.9)
    # the 256 px zone takes the 4 px block's +-20 t/ha instead of the 16 px block's
    assert list(stats["interval_block_px"]) == [4, 4]
    np.testing.assert_allclose(stats["agb_t_high"], stats["agb_t"] + 20.05 * stats["mapped_ha"])


def test_an_empty_zone_and_a_truncated_map_are_one_line_each(
    agbm_map: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty polygon gave exactextract's traceback "Failed to parse geometry", a
    truncated map "Read failed. See previous exception for details."."""
    out = tmp_path / "stats.csv"
    empty = _zones(tmp_path, [box(0, 0, 100, 100), shapely.Polygon()], name="empty.gpkg")
    assert main(["stats", "--map", str(agbm_map), "--zones", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("empty.gpkg: zone 1 is empty, a polygon without area (1 such zones; "
                        "drop them)\n") and err.count("\n") == 1 and not out.exists()  # fmt: skip
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(agbm_map.read_bytes()[: agbm_map.stat().st_size // 2])
    zones = _zones(tmp_path, [box(0, 0, 400, 400)])
    assert main(["stats", "--map", str(truncated), "--zones", str(zones), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {truncated}: unreadable or truncated map (" in err
    assert err.count("\n") == 1 and "previous exception" not in err and not out.exists()
