"""Labels: GEDI L4A granules and field plots read, filtered and written as one file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from agbm.cli import main
from agbm.data import gedi
from agbm.data.labels import read_labels, read_plots
from agbm.errors import DataError
from tests.data.l4a import FOOTPRINTS, KEPT, write_l4a

REGION = [26.9, 61.2, 27.5, 61.5]  # W S E N: all but the footprint at 29.5 E


def test_a_granule_keeps_the_footprints_that_pass_every_filter(tmp_path: Path) -> None:
    frame, total, removed = gedi.read_l4a(write_l4a(tmp_path / "GEDI04_A_test.h5"))
    assert total == len(FOOTPRINTS)
    assert removed == {
        "fill values": 1, "l4_quality_flag != 1": 1, "degrade_flag != 0": 1,
        "sensitivity < 0.9": 1,
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
    assert frame["source"].iloc[0] == "gedi-l4a:GEDI04_A_test.h5"


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
        {"agbd": [10.0, 20.0], "radius_m": [9.0, 9.0]},
        geometry=[shapely.Point(500000, 6800000), shapely.Point(500100, 6800000)],
        crs="EPSG:32635",
    )
    points.to_file(tmp_path / "plots.gpkg")
    frame = read_plots(tmp_path / "plots.gpkg")
    assert frame.geometry.x.iloc[0] == pytest.approx(27.0, abs=1e-9)  # 27 E, zone 35's meridian
    assert list(frame["radius_m"]) == [9.0, 9.0]


def test_bad_labels_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    no_agbd = tmp_path / "plots.csv"
    no_agbd.write_text("lon,lat,biomass\n27,61,100\n")
    with pytest.raises(DataError, match=r"plots\.csv: plots need the column\(s\) agbd"):
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
