"""Labels: GEDI L4A granules and field plots read, filtered and written as one file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from agbm.cli import main
from agbm.errors import DataError
from agbm.labels import gedi
from agbm.labels.frame import read_labels
from agbm.labels.plots import read_plots
from tests.labels.l4a import DEGRADED, FOOTPRINTS, KEPT, VERSIONS, write_l4a

REGION = [26.9, 61.2, 27.5, 61.5]  # W S E N: all but the footprint at 29.5 E


@pytest.mark.parametrize("version", VERSIONS)
def test_a_granule_keeps_the_footprints_that_pass_every_filter(
    tmp_path: Path, version: str
) -> None:
    """Version 2 and 2.1 granules alike."""
    path = write_l4a(tmp_path, version=version)
    found = gedi.read_l4a(path)
    frame = found.frame
    assert found.total == len(FOOTPRINTS)
    assert found.removed == {
        "fill values": 1, "agbd NaN or negative": 0, "no position": 0, "delta_time NaN": 0,
        "l4_quality_flag != 1": 1, "degrade_flag != 0": 1, "sensitivity < 0.9": 1,
    }  # fmt: skip
    # beams are read in name order, footprints in file order: the kept ones, then 2 more
    expected = [FOOTPRINTS[i] for i in KEPT] + [FOOTPRINTS[7], FOOTPRINTS[8]]
    np.testing.assert_allclose(frame.geometry.x, [f[1] for f in expected])
    np.testing.assert_allclose(frame.geometry.y, [f[2] for f in expected])
    np.testing.assert_allclose(frame["agbd"], [f[3] for f in expected], rtol=1e-6)
    np.testing.assert_allclose(frame["agbd_se"], [f[4] for f in expected], rtol=1e-6)
    assert (frame["radius_m"] == 12.5).all() and frame.crs.to_string() == "EPSG:4326"
    assert frame["date"].iloc[0] == pd.Timestamp("2021-03-01T00:00:00", tz="UTC")
    assert frame["date"].iloc[2] == pd.Timestamp("2021-03-02T00:00:00", tz="UTC")
    assert frame["source"].iloc[0] == f"gedi-l4a:{path.name}"


def test_every_gedi_filter_is_a_flag_and_a_filter_removing_all_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    granule = write_l4a(tmp_path / "degraded.h5", DEGRADED)
    out = tmp_path / "labels.gpkg"
    args = ["labels", "--gedi", str(granule), "--out", str(out), "--overwrite"]
    assert main(args) == 2  # nothing left: refused, and nothing written
    printed, err = capsys.readouterr()
    assert f"{out}: not written, no label is left (the counts above say why)" in err
    assert not out.exists()
    assert (
        "GEDI L4A footprints in 1 file(s): 5; removed fill values: 0, agbd NaN or negative: 0, "
        "no position: 0, delta_time NaN: 0, l4_quality_flag != 1: 2 "
        "(--keep-low-quality), degrade_flag != 0: 3 (--keep-degraded), sensitivity < 0.9: 0 "
        "(a lower --min-sensitivity); kept 0; degrade_flag != 0 removed every one left: "
        "--keep-degraded keeps them"
    ) in printed
    assert main([*args, "--keep-degraded"]) == 0
    assert "kept 3" in capsys.readouterr().out
    assert list(read_labels(out)["agbd"]) == [120.5, 80.0, 60.0]
    # each filter off by its flag: all 5 kept, the low-quality ones' sensitivity too
    assert main([*args, "--keep-degraded", "--keep-low-quality", "--min-sensitivity", "0"]) == 0
    assert "delta_time NaN: 0; kept 5" in capsys.readouterr().out
    assert main([*args, "--keep-degraded", "--keep-low-quality"]) == 0
    assert "sensitivity < 0.9: 2 (a lower --min-sensitivity); kept 3" in capsys.readouterr().out
    assert main([*args, "--min-sensitivity", "1.5"]) == 2
    assert "--min-sensitivity 1.5: give a sensitivity from 0 to 1" in capsys.readouterr().err


def test_labels_writes_gedi_and_plots_inside_the_region_and_year(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plots = tmp_path / "plots.csv"
    plots.write_text("lon,lat,agbd,se,date\n27.1,61.4,150,20,2021-06-01\n27.2,61.4,90,,\n")
    out = tmp_path / "labels.gpkg"
    args = ["labels", "--gedi", str(write_l4a(tmp_path / "g.h5")), "--plots", str(plots)]
    assert main([*args, "--bbox", *map(str, REGION), "--year", "2021", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GEDI L4A footprints in 1 file(s): 9; removed fill values: 1" in printed
    assert "outside the region: 1, outside the year 2021" in printed and "kept 3" in printed
    labels = read_labels(out)
    assert len(labels) == 5 and list(labels["agbd"][3:]) == [150.0, 90.0]
    assert labels["radius_m"].iloc[3] == pytest.approx(12.62)
    assert np.isnan(labels["agbd_se"].iloc[4]) and pd.isna(labels["date"].iloc[4])
    parquet = tmp_path / "labels.parquet"
    assert main([*args, "--out", str(parquet)]) == 0  # no region, no year: all 7 kept
    assert len(read_labels(parquet)) == 7
    assert main([*args, "--out", str(parquet)]) == 2  # exists: not without --overwrite


def test_plots_may_come_as_points_of_a_vector_file_in_any_crs(tmp_path: Path) -> None:
    import geopandas

    points = geopandas.GeoDataFrame(
        {"AGBD": [10.0, 20.0, 30.0], "radius_m": [9.0, 9.0, 9.0], "lon": [0.0, 0.0, 0.0]},
        geometry=[shapely.Point(500000, 6800000), shapely.Point(500100, 6800000), None],
        crs="EPSG:32635",
    )
    points.to_file(tmp_path / "plots.gpkg")
    found = read_plots(tmp_path / "plots.gpkg")  # its points, not its attribute "lon"
    assert (found.total, found.removed) == (3, {"empty 'geometry'": 1})
    assert found.frame.geometry.x.iloc[0] == pytest.approx(27.0, abs=1e-9)  # zone 35's meridian
    assert list(found.frame["radius_m"]) == [9.0, 9.0]


def test_bad_labels_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    no_agbd = tmp_path / "plots.csv"
    no_agbd.write_text("lon,lat,biomass\n27,61,100\n")
    with pytest.raises(
        DataError, match=r"plots\.csv: no column 'agbd' .*: 'lon', 'lat', 'biomass'"
    ):
        read_plots(no_agbd)
    not_hdf5 = tmp_path / "x.h5"
    not_hdf5.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match=r"x\.h5: not an HDF5 file"):
        gedi.read_l4a(not_hdf5)
    import h5py

    with h5py.File(tmp_path / "l2a.h5", "w") as h5:
        h5.create_group("BEAM0000").create_dataset("rh", data=np.zeros(3))
    with pytest.raises(DataError, match=r"l2a\.h5: not a GEDI L4A granule"):
        gedi.read_l4a(tmp_path / "l2a.h5")
    with pytest.raises(DataError, match=r"plots\.csv: not a labels file, it has no column"):
        read_labels(no_agbd)


def test_download_searches_the_l4a_doi_over_the_region_and_year(tmp_path: Path) -> None:
    """earthaccess itself needs a NASA Earthdata login and the network: a stand-in records
    what it is asked."""

    class Earthaccess:
        calls: list = []

        def login(self) -> None:
            self.calls.append("login")

        def search_data(self, **query: object) -> list[str]:
            self.calls.append(query)
            return ["granule"]

        def download(self, granules: list[str], folder: str) -> list[str]:
            self.calls.append((granules, folder))
            return [f"{folder}/GEDI04_A.h5"]

    fake = Earthaccess()
    paths = gedi.download(tmp_path, REGION, 2021, fake)
    assert paths == [tmp_path / "GEDI04_A.h5"]
    login, query, fetched = fake.calls
    assert login == "login" and fetched == (["granule"], str(tmp_path))
    assert query["doi"] == "10.3334/ORNLDAAC/2056"
    assert query["bounding_box"] == tuple(REGION)
    start = dt.datetime(2020, 9, 1, tzinfo=dt.timezone.utc).isoformat()
    assert query["temporal"] == (start, "2021-08-31T23:59:59+00:00")


def _nfi_table(tmp_path: Path) -> tuple[Path, list[tuple[float, float]]]:
    """A national forest inventory's table as one is published: its own column names, with
    units in them and spaces around them, coordinates in the national grid (ETRS-TM35FIN,
    EPSG:3067), a plot size in ha, a year, ";" as the delimiter and one plot without AGB."""
    from pyproj import Transformer

    lonlat = [(27.1, 61.4), (27.2, 61.35), (27.3, 61.3), (27.4, 61.25)]
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:3067", always_xy=True)
    xy = [to_grid.transform(lon, lat) for lon, lat in lonlat]
    rows = [
        f"{i + 101};{x:.3f};{y:.3f};{agb};{size};{year}"
        for i, ((x, y), agb, size, year) in enumerate(
            zip(
                xy,
                ["152.5", "NA", "88", "40.25"],
                [0.04, 0.04, 0.1, 0.04],
                [2021, 2021, 2020, 2021],
                strict=True,
            )
        )
    ]
    path = tmp_path / "nfi_plots.csv"
    path.write_text(
        "Plot ID; X_ETRS ; Y_ETRS ; AGB (t/ha) ;Plot size (ha);Year\n" + "\n".join(rows) + "\n"
    )
    return path, lonlat


NFI_COLUMNS = ["lon=x_etrs", "lat=Y_ETRS", "agbd=agb (t/ha)", "size_ha=plot size (ha)",
               "year=YEAR", "id=plot id"]  # fmt: skip


def test_an_inventory_table_is_read_by_its_own_column_names_and_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, lonlat = _nfi_table(tmp_path)
    out = tmp_path / "labels.gpkg"
    args = ["labels", "--plots", str(path), "--columns", *NFI_COLUMNS, "--plots-crs", "EPSG:3067"]
    assert main([*args, "--out", str(out)]) == 0
    assert (
        "plots in nfi_plots.csv: 4; removed empty 'AGB (t/ha)': 1; kept 3"
        in capsys.readouterr().out
    )
    labels = read_labels(out)
    kept = [0, 2, 3]
    np.testing.assert_allclose(labels.geometry.x, [lonlat[i][0] for i in kept], atol=1e-8)
    np.testing.assert_allclose(labels.geometry.y, [lonlat[i][1] for i in kept], atol=1e-8)
    assert list(labels["agbd"]) == [152.5, 88.0, 40.25]
    # a circle of 0.04 ha and of 0.1 ha
    np.testing.assert_allclose(labels["radius_m"], np.sqrt(np.array([400, 1000, 400]) / np.pi))
    assert labels["date"].iloc[0] == pd.Timestamp("2021-07-01", tz="UTC")
    assert list(labels["source"]) == [f"plots:nfi_plots.csv:{i}" for i in (101, 103, 104)]
    # a year-only plot is dated 1 July: year 2020's is outside --year 2021 (Sept 2020 - Aug 2021)
    assert main([*args, "--year", "2021", "--out", str(out), "--overwrite"]) == 0
    assert "outside the year 2021 (September 2020 to August 2021): 1; kept 2" in (
        capsys.readouterr().out
    )


def test_arcgis_style_and_xlsx_plot_tables_are_read(tmp_path: Path) -> None:
    from agbm.labels.plots import PlotTable

    arcgis = pd.DataFrame({
        "OBJECTID": [1, 2], "POINT_X": [27.05, 27.15], "POINT_Y": [61.3, 61.31],
        "AGBD_Mg_ha": [120.0, None], "SE_Mg_ha": [12.0, 5.0], "Radius": [9.0, 9.0],
        "Survey_Date": ["2021-06-15", "2021-06-16"],
    })  # fmt: skip
    arcgis.to_csv(tmp_path / "plots.csv", index=False)
    arcgis.to_excel(tmp_path / "plots.xlsx", index=False)
    how = PlotTable({"lon": "point_x", "lat": "POINT_Y", "agbd": "agbd_mg_ha", "se": "se_mg_ha",
                     "radius_m": "radius", "date": "survey_date", "id": "objectid"})  # fmt: skip
    for name in ("plots.csv", "plots.xlsx"):
        found = read_plots(tmp_path / name, how)
        assert (found.total, found.removed) == (2, {"empty 'AGBD_Mg_ha'": 1})
        frame = found.frame
        assert (frame.geometry.x.iloc[0], frame.geometry.y.iloc[0]) == pytest.approx((27.05, 61.3))
        assert (frame["agbd"].iloc[0], frame["agbd_se"].iloc[0]) == (120.0, 12.0)
        assert frame["radius_m"].iloc[0] == 9.0 and frame["source"].iloc[0] == f"plots:{name}:1"
        assert frame["date"].iloc[0] == pd.Timestamp("2021-06-15", tz="UTC")


def test_plot_columns_and_crs_are_checked_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _nfi_table(tmp_path)
    args = ["labels", "--plots", str(path), "--out", str(tmp_path / "l.gpkg"), "--columns"]
    cases = {
        ("lon=x_etrs", "lat=y_etrs", "agbd=AGB"): (
            "nfi_plots.csv: no column 'AGB' (--columns agbd='AGB', above-ground biomass "
            "density, t/ha); its columns: 'Plot ID', ' X_ETRS ', ' Y_ETRS ', ' AGB (t/ha) ', "
            "'Plot size (ha)', 'Year'"
        ),
        ("height=h",): "--columns 'height=h': no field 'height'; fields: lon, lat, agbd",
        ("agbd",): "--columns 'agbd': give FIELD=NAME",
        ("year=Year", "date=Year"): "--columns: give date or year, not both",
        (*NFI_COLUMNS, "--plots-crs", "EPSG:99999"): "--plots-crs EPSG:99999: not a CRS",
    }
    for extra, message in cases.items():
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_gedi_values_no_label_can_have_are_dropped_and_counted(tmp_path: Path) -> None:
    good = FOOTPRINTS[0]
    footprints = [
        good,
        (*good[:3], float("nan"), *good[4:]),  # agbd NaN
        (*good[:3], -5.0, *good[4:]),  # agbd negative
        (good[0], good[1], 95.0, *good[3:]),  # lat 95
        (*good[:-1], float("nan")),  # delta_time NaN
    ]
    found = gedi.read_l4a(write_l4a(tmp_path / "bad.h5", footprints))
    assert found.total == 5 and len(found.frame) == 1
    removed = {k: v for k, v in found.removed.items() if v}
    assert removed == {"agbd NaN or negative": 2, "no position": 1, "delta_time NaN": 1}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("27.1,95,100,5,10", "row 2, column 'lat': lat 95 is not a latitude, -90 to 90"),
        ("190,61,100,5,10", "row 2, column 'lon': lon 190 is not a longitude, -180 to 180"),
        ("27.1,61,100,5,-3", "row 2, column 'r': radius_m -3 is not a radius, m > 0"),
        ("27.1,61,100,-4,10", "row 2, column 'se': se -4 is not a standard error, t/ha >= 0"),
        ("27.1,61,-80,5,10", "row 2, column 'agbd': agbd -80 is not a biomass, t/ha >= 0"),
        ("27.1,61,lots,5,10", "row 2, column 'agbd': 'lots' is not a number"),
    ],
)
def test_a_plot_with_a_value_no_plot_can_have_is_refused_naming_its_row_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, message: str
) -> None:
    plots = tmp_path / "plots.csv"
    plots.write_text(f"lon,lat,agbd,se,r\n{row}\n")
    out = tmp_path / "labels.gpkg"
    assert (
        main(["labels", "--plots", str(plots), "--columns", "radius_m=r", "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert f"plots.csv: {message}" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_labels_file_with_no_label_or_a_bad_value_is_refused(tmp_path: Path) -> None:
    from agbm.labels.frame import labels_frame, write_labels

    def labels(name: str, **values: float) -> Path:
        good = {"lon": 27.0, "lat": 61.0, "agbd": 100.0, "agbd_se": 5.0, "radius_m": 12.5}
        bad = good | values
        frame = labels_frame(*([bad[c], good[c]] for c in good))  # a bad label, a good one
        return write_labels(frame, tmp_path / name)

    cases = {
        labels("lat.gpkg", lat=95.0): r"lat\.gpkg: label 0: lat 95 is not a latitude",
        labels("agbd.gpkg", agbd=-80.0): r"agbd\.gpkg: label 0: agbd -80 is not a biomass",
        labels("nan.gpkg", agbd=np.nan): r"nan\.gpkg: label 0: agbd nan is not a biomass",
        labels("r.gpkg", radius_m=-3.0): r"r\.gpkg: label 0: radius_m -3 is not a radius",
        labels("se.gpkg", agbd_se=-4.0): r"se\.gpkg: label 0: agbd_se -4 is not a standard",
        write_labels(labels_frame([], [], []), tmp_path / "empty.gpkg"): r"empty\.gpkg: holds no",
    }
    for path, message in cases.items():
        with pytest.raises(DataError, match=message):
            read_labels(path)
    assert len(read_labels(tmp_path / "nan.gpkg", skip_missing_agbd=True)) == 2


def test_a_date_that_cannot_be_read_names_the_file_the_column_and_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The date parse error named no file, column or value."""
    plots = tmp_path / "plots.csv"
    out = tmp_path / "labels.gpkg"
    args = ["labels", "--plots", str(plots), "--columns", "date=Measured", "--out", str(out)]
    cases = {
        "2021-06-01\n27.1,61.3,90,last June": (
            "plots.csv: row 3, column 'Measured': 'last June' is not a date"
        ),
        "2019\n27.1,61.3,90,2020": (
            "plots.csv: column 'Measured' holds numbers (2019), not dates; if they are years, "
            "give --columns year='Measured'"
        ),
    }
    for rows, message in cases.items():
        plots.write_text(f"lon,lat,agbd,Measured\n27.1,61.4,150,{rows}\n")
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    plots.write_text("lon,lat,agbd,Measured\n27.1,61.4,150,2021-06-01\n27.1,61.3,90,\n")
    assert main(args) == 0
    assert read_labels(out)["date"].iloc[0] == pd.Timestamp("2021-06-01", tz="UTC")


def test_plots_are_checked_before_any_granule_is_downloaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def download(*args: object) -> list[Path]:
        raise AssertionError("downloaded before the plots were checked")

    monkeypatch.setattr(gedi, "download", download)
    plots = tmp_path / "plots.csv"
    plots.write_text("lon,lat,agbd\n27.1,95,100\n")
    args = ["labels", "--download", str(tmp_path / "granules"), "--plots", str(plots)]
    bbox = ["--bbox", *map(str, REGION), "--year", "2021", "--out", str(tmp_path / "l.gpkg")]
    assert main([*args, *bbox]) == 2
    assert "plots.csv: row 2, column 'lat': lat 95 is not a latitude" in capsys.readouterr().err
