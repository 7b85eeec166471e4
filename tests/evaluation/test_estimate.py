"""`agbm estimate`: each estimator against a hand computation, the refusals and edge cases,
and a synthetic population where the map is biased and the estimates are not."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from pyproj import Transformer
from scipy import ndimage
from scipy.stats import t as student_t

import agbm
from agbm.cli import main
from agbm.data.geotiff import write_geotiff
from agbm.errors import AgbmWarning, DataError
from agbm.evaluation.estimate import (
    CHANGE_COLUMNS,
    COLUMNS,
    Zone,
    difference_estimate,
    direct_estimate,
    estimate,
    post_stratified_estimate,
    zone_rows,
)
from agbm.labels.frame import labels_frame, write_labels

UTM = "EPSG:32635"
X0, Y0 = 500000.0, 6800000.0  # the map's top-left corner; 20 x 20 pixels of 10 m
#: 100 t/ha in the west half, 200 in the east: the map's exact mean is 150.
VALUES = np.full((20, 20), 100.0, np.float32)
VALUES[:, 10:] = 200.0
#: The true area of a nominal hectare of the map (UTM's scale k0 = 0.9996 at x = 500 km).
HA = 1 / 0.9996**2
#: Five plots (x, y from the map's corner, m; radius 5 m, inside one pixel): three on the
#: west half, two on the east, and their measured values, t/ha.
PLOTS = [(25, 25), (55, 105), (85, 175), (125, 45), (175, 155)]
AGBD = [90.0, 110.0, 130.0, 180.0, 240.0]
ON_MAP = [100.0, 100.0, 100.0, 200.0, 200.0]  # the map's mean over each plot's disc


@pytest.fixture()
def agbm_map(tmp_path: Path) -> Path:
    path = tmp_path / "agbm.tif"
    write_geotiff(path, VALUES, UTM, Affine(10, 0, X0, 0, -10, Y0), np.nan, ["agbm"], {})
    return path


def _plots(
    path: Path,
    xy: list,
    agbd: list,
    source: str | list[str] = "plots:field.csv",
    crs: str | None = None,
) -> Path:
    """A labels file of plots at `xy` (metres from the map's corner), radius 5 m; written in
    `crs` when given (read back in EPSG:4326)."""
    xs, ys = (np.array(v, float) for v in zip(*xy, strict=True))
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(X0 + xs, Y0 - ys)
    frame = labels_frame(lon, lat, agbd, np.nan, 5.0, None, source)
    if crs is not None:
        frame = frame.to_crs(crs)
        frame.to_file(path)
        return path
    return write_labels(frame, path)


def _zones(path: Path, boxes: list, crs: str = UTM) -> Path:
    """Zones named z0, z1, ... from boxes (x0, y0, x1, y1) in metres from the map's corner."""
    shapes = [shapely.box(X0 + a, Y0 - d, X0 + c, Y0 - b) for a, b, c, d in boxes]
    frame = geopandas.GeoDataFrame(
        {"name": [f"z{i}" for i in range(len(boxes))]}, geometry=shapes, crs=UTM
    )
    frame.to_crs(crs).to_file(path)
    return path


def _row(table: pd.DataFrame, method: str, zone: object = "map") -> pd.Series:
    return table[(table["zone"] == zone) & (table["method"] == method)].iloc[0]


def test_each_estimate_and_se_equals_a_hand_computation(agbm_map: Path, tmp_path: Path) -> None:
    table = estimate(agbm_map, _plots(tmp_path / "p.gpkg", PLOTS, AGBD), strata=[0, 150])
    assert list(table.columns) == list(COLUMNS)
    assert list(table["method"]) == ["direct", "model_assisted", "post_stratified"]
    n, mapped, t4 = 5, 4.0 * HA, student_t.ppf(0.95, 4)  # 400 px of 0.01 ha; 90 %: t(0.95, 4)
    # direct: mean (90 + 110 + 130 + 180 + 240) / 5 = 150; deviations -60 -40 -20 30 90:
    # s^2 = (3600 + 1600 + 400 + 900 + 8100) / 4 = 3650, SE^2 = 3650 / 5 = 730
    direct = _row(table, "direct")
    assert direct["mean_t_ha"] == pytest.approx(150.0)
    assert direct["se_t_ha"] == pytest.approx(math.sqrt(730.0))
    assert direct["mean_low_t_ha"] == pytest.approx(150.0 - t4 * math.sqrt(730.0))
    assert direct["mean_high_t_ha"] == pytest.approx(150.0 + t4 * math.sqrt(730.0))
    # model-assisted: residuals y - m = -10 10 30 -20 40, mean 10, deviations -20 0 20 -30 30:
    # s_e^2 = (400 + 0 + 400 + 900 + 900) / 4 = 650, SE^2 = 130; mean = 150 (map) + 10 = 160
    assisted = _row(table, "model_assisted")
    assert assisted["map_mean_t_ha"] == pytest.approx(150.0, rel=1e-6)
    assert assisted["residual_mean_t_ha"] == pytest.approx(10.0, abs=1e-3)
    assert assisted["mean_t_ha"] == pytest.approx(160.0, rel=1e-5)
    assert assisted["se_t_ha"] == pytest.approx(math.sqrt(130.0), rel=1e-5)
    assert assisted["relative_efficiency"] == pytest.approx(730.0 / 130.0, rel=1e-5)
    assert assisted["half_width_pct"] == pytest.approx(100 * t4 * math.sqrt(130.0) / 160, 1e-5)
    assert assisted["mapped_ha"] == pytest.approx(mapped, rel=1e-6)
    assert assisted["agb_t"] == pytest.approx(160.0 * mapped, rel=1e-5)
    assert assisted["agb_t_high"] == pytest.approx((160 + t4 * math.sqrt(130)) * mapped, 1e-5)
    assert assisted["carbon_t"] == pytest.approx(160.0 * mapped * 0.47, rel=1e-5)
    assert assisted["co2e_t"] == pytest.approx(160.0 * mapped * 0.47 * 44 / 12, rel=1e-5)
    # post-stratified, classes below 150 (the west half, W = 0.5) and from 150 (the east):
    # west 90 110 130, mean 110, s^2 = 400; east 180 240, mean 210, s^2 = 1800;
    # mean = 0.5 x 110 + 0.5 x 210 = 160; V = (0.5 x 400 + 0.5 x 1800) / 5
    # + (0.5 x 400 + 0.5 x 1800) / 25 = 220 + 44 = 264, on 5 - 2 = 3 degrees of freedom
    stratified = _row(table, "post_stratified")
    assert stratified["mean_t_ha"] == pytest.approx(160.0, rel=1e-6)
    assert stratified["se_t_ha"] == pytest.approx(math.sqrt(264.0), rel=1e-6)
    t3 = student_t.ppf(0.95, 3)
    assert stratified["mean_high_t_ha"] == pytest.approx(160 + t3 * math.sqrt(264.0), rel=1e-6)
    assert stratified["relative_efficiency"] == pytest.approx(730.0 / 264.0, rel=1e-6)
    assert (table["n_plots"] == n).all() and (table["reason"] == "").all()
    assert table["warning"].str.startswith("only 5 plots").all()  # under 10


def test_the_pure_estimators_equal_the_hand_computation() -> None:
    y, m = np.array(AGBD), np.array(ON_MAP)
    assert direct_estimate(y).se == pytest.approx(math.sqrt(730.0))
    assert difference_estimate(y, m, 150.0).mean == pytest.approx(160.0)
    stratified = post_stratified_estimate(y, np.array([0, 0, 0, 1, 1]), np.array([0.5, 0.5]))
    assert (stratified.mean, stratified.se**2, stratified.df) == pytest.approx((160, 264, 3))


def test_zones_and_plots_in_other_crs_are_reprojected(agbm_map: Path, tmp_path: Path) -> None:
    plots = _plots(tmp_path / "p.gpkg", PLOTS, AGBD, crs="EPSG:3035")
    # z0: the whole map; z1: the west half (3 plots); z2: a corner without plots;
    # z3: the east half and beyond the map (2 plots)
    boxes = [(0, 0, 200, 200), (0, 0, 100, 200), (0, 0, 20, 20), (100, 0, 400, 200)]
    zones = _zones(tmp_path / "z.gpkg", boxes, crs="EPSG:4326")
    table = estimate(agbm_map, plots, zones, "name")
    assert list(table["zone"]) == ["z0", "z0", "z1", "z1", "z2", "z2", "z3", "z3"]
    assert _row(table, "model_assisted", "z0")["mean_t_ha"] == pytest.approx(160.0, rel=1e-4)
    west = _row(table, "model_assisted", "z1")  # map 100 + mean residual (-10 + 10 + 30) / 3
    assert west["mean_t_ha"] == pytest.approx(110.0, rel=1e-4)
    assert west["mapped_ha"] == pytest.approx(2.0 * HA, rel=1e-3)  # edges straight in degrees
    empty = table[table["zone"] == "z2"]
    assert (empty["n_plots"] == 0).all() and empty["mean_t_ha"].isna().all()
    assert empty["reason"].str.contains("0 plot").all()
    east = _row(table, "direct", "z3")
    assert east["mean_t_ha"] == pytest.approx(210.0)
    assert east["mapped_ha"] == pytest.approx(2.0 * HA, rel=1e-3)  # only its mapped part


def test_one_plot_gets_a_reason_and_plots_left_out_are_counted(
    agbm_map: Path, tmp_path: Path
) -> None:
    xy = [*PLOTS, (500, 500), (185, 185)]  # one off the map, one without a value
    plots = _plots(tmp_path / "p.gpkg", xy, [*AGBD, 100.0, np.nan])
    zones = _zones(tmp_path / "z.gpkg", [(0, 0, 40, 40), (0, 0, 800, 800)])
    with pytest.warns(AgbmWarning) as warned:
        table = estimate(agbm_map, plots, zones, "name")
    lonely = _row(table, "direct", "z0")
    assert lonely["n_plots"] == 1 and np.isnan(lonely["mean_t_ha"])
    assert "at least 2" in lonely["reason"]
    everything = _row(table, "model_assisted", "z1")
    assert everything["n_plots"] == 5 and everything["mean_t_ha"] == pytest.approx(160.0, 1e-5)
    assert "1 plot(s) of the zone have no map data under them" in everything["warning"]
    said = [str(w.message) for w in warned]
    assert any(s.startswith("1 plot(s) of") and "have no value" in s for s in said)
    assert any(s.startswith("1 plot(s) of") and "no data of" in s for s in said)


def test_a_class_without_two_plots_has_no_post_stratified_estimate(
    agbm_map: Path, tmp_path: Path
) -> None:
    plots = _plots(tmp_path / "p.gpkg", PLOTS, AGBD)
    # z0: the west half and 3 pixel columns of the east, with one plot of the east
    table = estimate(agbm_map, plots, _zones(tmp_path / "z.gpkg", [(0, 0, 130, 200)]), "name",
                     strata=[0, 150, 190])  # fmt: skip
    stratified = _row(table, "post_stratified", "z0")
    assert np.isnan(stratified["mean_t_ha"]) and "class 3 (a share 0.231" in stratified["reason"]
    assert _row(table, "direct", "z0")["reason"] == ""
    # the whole map: the class 150-190 has no area, so needs no plots
    whole = _row(estimate(agbm_map, plots, strata=[0, 150, 190]), "post_stratified")
    assert whole["mean_t_ha"] == pytest.approx(160.0) and whole["reason"] == ""


def test_gedi_labels_are_refused_in_one_line(agbm_map: Path, tmp_path: Path) -> None:
    gedi = _plots(tmp_path / "g.gpkg", PLOTS, AGBD, source="gedi-l4a:GEDI04_A_2021.h5")
    with pytest.raises(DataError, match="GEDI footprints.*no probability sample"):
        estimate(agbm_map, gedi)


@pytest.mark.parametrize(
    ("strata", "message"),
    [([100], "at least 2"), ([0, 200, 100], "must increase"), ("strata.gpkg", "`strata_field`")],
)
def test_bad_strata_are_refused(agbm_map: Path, tmp_path: Path, strata, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate(agbm_map, _plots(tmp_path / "p.gpkg", PLOTS, AGBD), strata=strata)


#: Stratum polygons (x0, y0, x1, y1 from the map's corner, m, beyond it above and below):
#: "a" west of x = 60 (two polygons, one stratum), "b" east of it.
STRATA = [("a", (-50, -50, 60, 100)), ("a", (-50, 100, 60, 250)), ("b", (60, -50, 250, 250))]
#: Six plots, three in each stratum, on data (the map's top-left 10 x 6 pixels have none).
STRATA_PLOTS = [(15, 115), (35, 145), (45, 185), (75, 25), (125, 65), (175, 155)]
STRATA_AGBD = [80.0, 100.0, 120.0, 150.0, 210.0, 240.0]


def _strata(path: Path, strata: list = STRATA, crs: str = "EPSG:4326") -> Path:
    """The stratum polygons `strata` (name, box), field "kind", written in `crs`."""
    shapes = [shapely.box(X0 + a, Y0 - d, X0 + c, Y0 - b) for _, (a, b, c, d) in strata]
    frame = geopandas.GeoDataFrame(
        {"kind": [name for name, _ in strata], "note": "x"}, geometry=shapes, crs=UTM
    )
    frame.to_crs(crs).to_file(path)
    return path


@pytest.fixture()
def holed_map(tmp_path: Path) -> Path:
    """The map without data in its top-left 10 rows x 6 columns (60 pixels)."""
    values = VALUES.copy()
    values[:10, :6] = np.nan
    path = tmp_path / "holed.tif"
    write_geotiff(path, values, UTM, Affine(10, 0, X0, 0, -10, Y0), np.nan, ["agbm"], {})
    return path


def test_strata_from_polygons_equal_a_hand_computation(holed_map: Path, tmp_path: Path) -> None:
    plots = _plots(tmp_path / "p.gpkg", STRATA_PLOTS, STRATA_AGBD)
    table = estimate(holed_map, plots, strata=_strata(tmp_path / "s.gpkg"), strata_field="kind")
    # weights from the mapped areas, not the polygons': "a" 6 x 20 - 60 = 60 pixels with
    # data, "b" 14 x 20 = 280: W = 60 / 340 = 3/17 and 14/17.
    # "a" 80 100 120: mean 100, s^2 = 400; "b" 150 210 240: mean 200, s^2 = (2500 + 100 +
    # 1600) / 2 = 2100; mean = 3/17 x 100 + 14/17 x 200 = 3100/17;
    # sum W s^2 = (1200 + 29400) / 17 = 1800, sum (1 - W) s^2 = (5600 + 6300) / 17 = 700;
    # V = 1800 / 6 + 700 / 36 = 2875/9, on 6 - 2 = 4 degrees of freedom
    stratified = _row(table, "post_stratified")
    assert stratified["mean_t_ha"] == pytest.approx(3100 / 17, rel=1e-5)
    assert stratified["se_t_ha"] == pytest.approx(math.sqrt(2875 / 9), rel=1e-5)
    high = 3100 / 17 + student_t.ppf(0.95, 4) * math.sqrt(2875 / 9)
    assert stratified["mean_high_t_ha"] == pytest.approx(high, rel=1e-5)
    assert stratified["mapped_ha"] == pytest.approx(3.4 * HA, rel=1e-6)
    assert stratified["n_plots"] == 6 and stratified["reason"] == ""
    assert "stratum" not in stratified["warning"]  # every plot in one, the strata cover all


def test_a_plot_in_no_stratum_is_counted(holed_map: Path, tmp_path: Path) -> None:
    # "a" and "b" with a gap of a pixel column between (x 60-70), and a seventh plot in it
    gapped = [STRATA[0], STRATA[1], ("b", (70, -50, 250, 250))]
    plots = _plots(tmp_path / "p.gpkg", [*STRATA_PLOTS, (65, 115)], [*STRATA_AGBD, 500.0])
    table = estimate(holed_map, plots, strata=_strata(tmp_path / "s.gpkg", gapped, UTM),
                     strata_field="kind")  # fmt: skip
    assert _row(table, "direct")["n_plots"] == 7
    stratified = _row(table, "post_stratified")
    # "a" 60 pixels with data, "b" 13 x 20 = 260: W = 60/320 and 260/320, the mean
    # 0.1875 x 100 + 0.8125 x 200 = 181.25 (of the 320 pixels of the 340 in a stratum)
    assert stratified["n_plots"] == 6 and stratified["mean_t_ha"] == pytest.approx(181.25)
    assert "1 plot(s) of the zone in no stratum" in stratified["warning"]
    assert "the strata cover 94.1 % of the zone's mapped area" in stratified["warning"]


def test_a_missing_stratum_field_is_named_in_one_line(agbm_map: Path, tmp_path: Path) -> None:
    strata, plots = _strata(tmp_path / "s.gpkg"), _plots(tmp_path / "p.gpkg", PLOTS, AGBD)
    with pytest.raises(DataError) as caught:
        estimate(agbm_map, plots, strata=strata, strata_field="forest")
    message = str(caught.value)
    assert "\n" not in message and str(strata) in message
    assert "no field 'forest' for `strata_field` (it has: kind, note)" in message
    with pytest.raises(ValueError, match="`strata_field` forest: only with `strata` FILE"):
        estimate(agbm_map, plots, strata=[0, 150], strata_field="forest")


def test_overlapping_strata_are_refused(agbm_map: Path, tmp_path: Path) -> None:
    strata = _strata(tmp_path / "s.gpkg", [*STRATA, ("c", (50, 50, 90, 90))])
    with pytest.raises(DataError, match="s.gpkg: its strata overlap"):
        estimate(agbm_map, _plots(tmp_path / "p.gpkg", PLOTS, AGBD), strata=strata,
                 strata_field="kind")  # fmt: skip


def test_the_command_takes_strata_from_polygons(holed_map: Path, tmp_path: Path, capsys) -> None:
    plots, out = _plots(tmp_path / "p.gpkg", STRATA_PLOTS, STRATA_AGBD), tmp_path / "est.csv"
    strata = _strata(tmp_path / "s.gpkg")
    args = ["estimate", "--map", str(holed_map), "--plots", str(plots), "--out", str(out)]
    assert main([*args, "--strata", str(strata), "--strata-field", "kind"]) == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert _row(table, "post_stratified")["mean_t_ha"] == pytest.approx(3100 / 17, abs=1e-3)
    capsys.readouterr()
    assert main([*args, "--strata", str(strata), "100"]) == 2
    assert "give class edges in t/ha (e.g. 0 100 200) or one" in capsys.readouterr().err
    assert main([*args, "--strata", str(strata)]) == 2
    assert "name its stratum field with --strata-field" in capsys.readouterr().err


def test_the_command_writes_the_table_and_refuses_gedi(
    agbm_map: Path, tmp_path: Path, capsys
) -> None:
    plots, out = _plots(tmp_path / "p.gpkg", PLOTS, AGBD), tmp_path / "est.csv"
    args = ["estimate", "--map", str(agbm_map), "--plots", str(plots), "--out", str(out)]
    assert main([*args, "--strata", "0", "150", "--coverage", "0.8"]) == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table.columns) == list(COLUMNS) and len(table) == 3
    t80 = student_t.ppf(0.9, 4)
    assert _row(table, "model_assisted")["mean_high_t_ha"] == pytest.approx(
        160 + t80 * math.sqrt(130.0), abs=1e-3
    )
    assert "1 zone(s), 1 with an estimate" in capsys.readouterr().out
    assert agbm.estimate is estimate  # the public API, loaded when first used
    gedi = _plots(tmp_path / "g.gpkg", PLOTS, AGBD, source="gedi-l4a:x.h5")
    assert main([*args[:3], "--plots", str(gedi), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "GEDI footprints" in err


#: The second year: the west half of the map grown to 110 t/ha, the east cut to 180.
VALUES_TO = np.where(VALUES == 100.0, 110.0, 180.0).astype(np.float32)
#: The plots measured again (by id, p0 .. p4): changes 10 5 20 -30 -10.
AGBD_TO = [100.0, 115.0, 150.0, 150.0, 230.0]


def _pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the second year's map, the first plots and the second's, with ids; the second also
    has a plot the first has not, and its plots in another order)."""
    map_to = tmp_path / "agbm2.tif"
    write_geotiff(map_to, VALUES_TO, UTM, Affine(10, 0, X0, 0, -10, Y0), np.nan, ["agbm"], {})
    ids = [f"plots:a.csv:p{i}" for i in range(5)]
    before = _plots(tmp_path / "a.gpkg", PLOTS, AGBD, source=ids)
    order = [4, 2, 0, 1, 3]
    sources = [f"plots:b.csv:p{i}" for i in order] + ["plots:b.csv:new"]
    xy, agbd = [PLOTS[i] for i in order] + [(15, 15)], [AGBD_TO[i] for i in order] + [99.0]
    after = _plots(tmp_path / "b.gpkg", xy, agbd, source=sources)
    return map_to, before, after


def test_the_change_equals_a_hand_computation(agbm_map: Path, tmp_path: Path, capsys) -> None:
    map_to, before, after = _pair(tmp_path)
    out = tmp_path / "change.csv"
    args = ["estimate", "--map", str(agbm_map), "--plots", str(before), "--out", str(out)]
    assert main([*args, "--plots-to", str(after), "--map-to", str(map_to)]) == 0
    said = capsys.readouterr()
    assert "model-assisted a net change of" in said.out
    assert "1 plot(s) of" in said.err and "b.gpkg are not in" in said.err  # the unpaired one
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table.columns) == list(CHANGE_COLUMNS)
    n, mapped, t4 = 5, 4.0 * HA, student_t.ppf(0.95, 4)
    # direct: plot changes 10 5 20 -30 -10, mean -1, deviations 11 6 21 -29 -9:
    # s^2 = (121 + 36 + 441 + 841 + 81) / 4 = 380, SE^2 = 76
    direct = _row(table, "direct")
    assert direct["mean_t_ha"] == pytest.approx(-1.0, abs=1e-4)
    assert direct["se_t_ha"] == pytest.approx(math.sqrt(76.0), abs=1e-4)
    # model-assisted: the maps' change over the zone 145 - 150 = -5; over the plots' discs
    # 10 10 10 -20 -20; residuals 0 -5 10 -10 10, mean 1, deviations -1 -6 9 -11 9:
    # s_e^2 = (1 + 36 + 81 + 121 + 81) / 4 = 80, SE^2 = 16; mean = -5 + 1 = -4
    assisted = _row(table, "model_assisted")
    assert assisted["n_plots"] == n and assisted["map_mean_t_ha"] == pytest.approx(-5.0, 1e-4)
    assert assisted["mean_t_ha"] == pytest.approx(-4.0, abs=1e-3)
    assert assisted["se_t_ha"] == pytest.approx(4.0, abs=1e-4)
    assert assisted["mean_low_t_ha"] == pytest.approx(-4.0 - t4 * 4.0, abs=1e-3)  # not at 0
    assert assisted["relative_efficiency"] == pytest.approx(76.0 / 16.0, rel=1e-4)
    assert assisted["agb_t"] == pytest.approx(-4.0 * mapped, rel=1e-4)
    loss = 4.0 * mapped * 0.47 * 44 / 12
    assert assisted["emissions_co2e_t"] == pytest.approx(loss, rel=1e-4)  # a loss: positive


def test_maps_that_cover_a_zone_differently_are_said(agbm_map: Path, tmp_path: Path) -> None:
    map_to, before, after = _pair(tmp_path)
    gap = tmp_path / "gap.tif"
    holed = VALUES_TO.copy()
    holed[:, 19] = np.nan  # a column without data in the second year
    write_geotiff(gap, holed, UTM, Affine(10, 0, X0, 0, -10, Y0), np.nan, ["agbm"], {})
    table = estimate(agbm_map, before, plots_to=after, map_to=gap)
    assert table["warning"].str.contains("the two maps cover the zone differently").all()


def test_a_change_needs_ids_and_both_years(agbm_map: Path, tmp_path: Path) -> None:
    map_to, before, after = _pair(tmp_path)
    with pytest.raises(ValueError, match="needs both `plots_to`"):
        estimate(agbm_map, before, plots_to=after)
    unnamed = _plots(tmp_path / "u.gpkg", PLOTS, AGBD)  # source plots:field.csv, no id
    with pytest.raises(DataError, match="5 plot\\(s\\) have no id"):
        estimate(agbm_map, unnamed, plots_to=after, map_to=map_to)
    twice = _plots(tmp_path / "t.gpkg", PLOTS[:2], AGBD[:2], source=["plots:a.csv:p0"] * 2)
    with pytest.raises(DataError, match="plot id 'p0' is there more than once"):
        estimate(agbm_map, before, plots_to=twice, map_to=map_to)


# ---- Unbiased where the map is not: a synthetic population, 500 simple random samples ----

SAMPLES = 500


class Population:
    """200 x 200 plot-sized units in two years. The truth: a spatially smooth signal (mean
    200 t/ha, SD 40) plus each unit's own variation (SD 20); in year 2, 10 % of the units
    clear-cut in patches (a tenth of the biomass left), the rest grown by 5 t/ha (SD 5).
    The maps: 20 % too high on the signal, each with spatially correlated noise of its own
    (SD 15; in year 2 half year 1's plus SD 20), so their change is 20 % too large."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        signal = 200.0 + self.smooth(40.0)
        own = self.rng.normal(0, 20, signal.shape)
        self.truth = np.clip(signal + own - own.mean(), 0, None)
        noise = self.smooth(15.0)
        self.map = 1.2 * signal + noise
        cut = self.smooth(1.0) > 1.28
        grown = self.truth + 5 + self.rng.normal(0, 5, signal.shape)
        self.truth_to = np.where(cut, 0.1 * self.truth, grown)
        self.map_to = 1.2 * np.where(cut, 0.1 * signal, signal + 5) + 0.5 * noise + self.smooth(20)

    def smooth(self, sd: float) -> np.ndarray:
        field = ndimage.gaussian_filter(self.rng.normal(size=(200, 200)), 6, mode="wrap")
        return (field - field.mean()) / field.std() * sd


def _tertiles(values: np.ndarray) -> np.ndarray:
    """Each unit's class among `values`' tertiles."""
    return np.searchsorted(np.quantile(values, [1 / 3, 2 / 3]), values, side="right")


def _sampled(y: np.ndarray, m: np.ndarray, classes: np.ndarray, n: int) -> dict[str, list]:
    """Each method's estimates from `SAMPLES` simple random samples of `n` units."""
    weights = np.bincount(classes) / len(classes)
    rng = np.random.default_rng(1)
    found: dict[str, list] = {"direct": [], "model_assisted": [], "post_stratified": []}
    for _ in range(SAMPLES):
        s = rng.choice(len(y), n, replace=False)
        found["direct"].append(direct_estimate(y[s]))
        found["model_assisted"].append(difference_estimate(y[s], m[s], m.mean()))
        found["post_stratified"].append(post_stratified_estimate(y[s], classes[s], weights))
    return found


def _ratio_and_se(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """mean(a) / mean(b) over paired samples and its delta-method standard error."""
    ra, rb = a.mean(), b.mean()
    cov = np.cov(a, b) / len(a)
    grad = np.array([1 / rb, -ra / rb**2])
    return float(ra / rb), float(math.sqrt(grad @ cov @ grad))


def _unbiased(estimates: list, true_mean: float) -> None:
    """The estimates' mean error within 2 of its standard errors of 0."""
    errors = np.array([e.mean for e in estimates]) - true_mean
    assert abs(errors.mean()) < 2 * errors.std(ddof=1) / math.sqrt(SAMPLES), errors.mean()


def _covers(estimates: list, true_mean: float) -> None:
    """90 % intervals covering the true mean within 3 binomial SEs of 90 % (87.3-92.7 %)."""
    covered = np.mean([lo <= true_mean <= hi for lo, hi in (e.interval(0.9) for e in estimates)])
    assert abs(covered - 0.9) <= 3 * math.sqrt(0.9 * 0.1 / SAMPLES), covered


def _efficiency(found: dict, method: str, expected: float) -> float:
    """The method's relative efficiency, mean(s_direct^2) / mean(s_method^2) over the
    samples, within 3 of its standard errors of `expected`; returned."""
    variance = {k: np.array([e.se**2 for e in v]) for k, v in found.items()}
    efficiency, se = _ratio_and_se(variance["direct"], variance[method])
    assert abs(efficiency - expected) < 3 * se, (method, efficiency, expected, se)
    return efficiency


def _stratified_efficiency(y: np.ndarray, classes: np.ndarray, n: int) -> float:
    """The direct variance over Cochran's post-stratified one, from the population's
    variances and class shares, for samples of `n`."""
    weights = np.bincount(classes) / len(classes)
    spread = np.array([y[classes == h].var(ddof=1) for h in range(len(weights))])
    stratified = (weights @ spread) / n + ((1 - weights) @ spread) / n**2
    return y.var(ddof=1) / n / stratified


def test_stocks_are_unbiased_where_the_map_is_not() -> None:
    population = Population()
    y, m, n = population.truth.ravel(), population.map.ravel(), 30
    assert m.mean() / y.mean() - 1 == pytest.approx(0.2, abs=0.005)  # the map alone: +20 %
    classes = _tertiles(m)
    found = _sampled(y, m, classes, n)
    for estimates in found.values():
        _unbiased(estimates, y.mean())
        _covers(estimates, y.mean())
    assert _efficiency(found, "model_assisted", y.var(ddof=1) / (y - m).var(ddof=1)) > 1
    assert _efficiency(found, "post_stratified", _stratified_efficiency(y, classes, n)) > 1


def test_changes_are_unbiased_where_the_maps_are_not() -> None:
    population = Population()
    y = (population.truth_to - population.truth).ravel()
    m = (population.map_to - population.map).ravel()
    assert m.mean() / y.mean() - 1 == pytest.approx(0.2, abs=0.01)  # the maps' change: +20 %
    classes = _tertiles(population.map.ravel())  # strata of the first year's map
    found = _sampled(y, m, classes, 50)
    for estimates in found.values():
        _unbiased(estimates, y.mean())
    _covers(found["model_assisted"], y.mean())  # the others' t intervals: skewed by the cuts
    assert _efficiency(found, "model_assisted", y.var(ddof=1) / (y - m).var(ddof=1)) > 1
    # the first year's stock classes do not explain the change: no gain (measured 0.96)
    _efficiency(found, "post_stratified", _stratified_efficiency(y, classes, 50))


def test_a_zone_table_from_arrays_says_why_and_warns() -> None:
    rows = zone_rows(Zone("z", np.array([100.0]), np.array([90.0]), 95.0, 3.0, off_map=2))
    assert [r["method"] for r in rows] == ["direct", "model_assisted"]
    assert all("at least 2" in r["reason"] and "2 plot(s)" in r["warning"] for r in rows)
    assert rows[0]["residual_mean_t_ha"] == 10.0
