"""`agbm compose` and `agbm map` against a static STAC catalog built here: band order, dB
from the linear mean, the least cloudy acquisition over the area, the BOA offset, missing
months, the grid, resuming, one-line errors, and a map end to end."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from agbm import extras as extras_module
from agbm.cli import main
from agbm.compose import compose
from agbm.compose import stacks as compose_module
from agbm.compose.catalog import PLANETARY_COMPUTER, catalog_url, open_catalog, search
from agbm.compose.grid import grid_for_bbox
from agbm.data.bands import S1_NODATA
from agbm.data.calendar import year_months
from agbm.errors import DataError, DependencyError, OutputError
from agbm.models import TemporalUNet, save_model
from bench.catalog import AREA, CRS, X0, Y0, S1Item, S2Item, build
from tests.helpers import PNG, write_calibration

D = dt.date
#: Earth Search's flag: the catalog removed the offset already.
ES_REMOVED = "earthsearch:boa_offset_applied"
S1 = [
    S1Item(D(2020, 9, 2), "ascending", 0.1, 0.01),
    S1Item(D(2020, 9, 14), "ascending", 0.3, 0.03),
    S1Item(D(2020, 9, 20), "descending", 0.05, 0.005),
    S1Item(D(2020, 10, 5), "descending", 0.2, 0.02),
    S1Item(D(2020, 9, 10), "ascending", 100.0, 100.0, elsewhere=True),  # not over the area
    S1Item(D(2021, 9, 3), "ascending", 100.0, 100.0),  # September of the next year
    # November: a pass over the whole area and one over its eastern part only
    S1Item(D(2020, 11, 3), "ascending", 0.1, 0.01),
    S1Item(D(2020, 11, 15), "ascending", 0.3, 0.03, x_shift=320, relative_orbit=2),
    # December: two overlapping slices of one pass (counted once), then another pass
    S1Item(D(2020, 12, 5), "descending", 0.1, 0.01, relative_orbit=7),
    S1Item(D(2020, 12, 5), "descending", 0.3, 0.03, relative_orbit=7),
    S1Item(D(2020, 12, 20), "descending", 0.4, 0.04, relative_orbit=3),
    # January: VV only, so left out
    S1Item(D(2021, 1, 8), "descending", 0.5, 0.05, polarisations=("vv",)),
]
HALF_EMPTY = np.zeros((32, 32), np.uint8)
HALF_EMPTY[:, 16:] = 8  # left half: no data; right half: cloud, medium probability
S2 = [
    S2Item(D(2020, 12, 10), 1500, 4, baseline="04.00"),  # offset to remove
    S2Item(D(2021, 2, 10), 1200, 4, "04.00", extra={ES_REMOVED: True}, earth_search=True),
    S2Item(D(2021, 7, 3), 2000, 9, cloud_cover=1.0),  # the tile says clear; the area is not
    S2Item(D(2021, 7, 20), 3000, 4, cloud_cover=80.0),
    S2Item(D(2021, 8, 5), 2500, HALF_EMPTY),
    # May: one day, two tiles, each over one half of the area
    S2Item(D(2021, 5, 9), 1000, 4, x_shift=-320),
    S2Item(D(2021, 5, 9), 2000, 4, x_shift=320),
]  # fmt: skip


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("stac"), S1, S2)


@pytest.fixture(scope="module")
def composed(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("composed") / "place"
    compose(out, 2021, bbox=AREA, catalog=catalog)
    return out


def pixel_x(path: Path) -> np.ndarray:
    """The easting of each column's pixel centres."""
    with rasterio.open(path) as src:
        return src.transform.c + (np.arange(src.width) + 0.5) * src.transform.a


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def db(linear: float) -> float:
    return 10 * np.log10(linear)


def test_s1_is_the_months_linear_mean_in_db_in_the_chips_band_order(composed: Path) -> None:
    s1 = read(composed / "S1.tif").reshape(12, 4, *read(composed / "S1.tif").shape[1:])
    assert s1.dtype == np.float32
    expected = {
        0: [db(0.2), db(0.02), db(0.05), db(0.005)],  # mean of 0.1 and 0.3, not of their dB
        1: [S1_NODATA, S1_NODATA, db(0.2), db(0.02)],  # October: descending only
        3: [S1_NODATA, S1_NODATA, db(0.25), db(0.025)],  # one pass of two slices, one more
    }
    x = pixel_x(composed / "S1.tif")
    west, east = x < X0 + 310, x > X0 + 330
    np.testing.assert_allclose(s1[2][0][:, west], db(0.1), rtol=1e-5)  # one pass sees it
    np.testing.assert_allclose(s1[2][0][:, east], db(0.2), rtol=1e-5)  # two passes do
    np.testing.assert_allclose(s1[2][1][:, east], db(0.02), rtol=1e-5)
    assert (s1[2][2:] == S1_NODATA).all()
    for month in (0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11):  # January's VV-only item is left out
        want = expected.get(month, [S1_NODATA] * 4)
        np.testing.assert_allclose(s1[month].mean(axis=(1, 2)), want, rtol=1e-5)
        assert (s1[month] == s1[month][:, :1, :1]).all()  # constant: nothing from elsewhere


def test_s2_takes_the_least_cloudy_acquisition_removes_the_offset_and_marks_gaps(
    composed: Path,
) -> None:
    s2 = read(composed / "S2.tif")
    s2 = s2.reshape(12, 11, *s2.shape[1:])
    assert s2.dtype == np.uint16
    bands = np.arange(10) * 10
    # December 2020, baseline 04.00: 1500 - 1000; February 2021: Earth Search's item, whose
    # catalog removed it already
    np.testing.assert_array_equal(s2[3, :10, 5, 5], 500 + bands)
    np.testing.assert_array_equal(s2[5, :10, 5, 5], 1200 + bands)
    # July: the 20th, clear over the area, not the 3rd that the tile calls clearer
    np.testing.assert_array_equal(s2[10, :10, 5, 5], 3000 + bands)
    assert (s2[[3, 5, 10], 10] == 0).all()
    for month in (0, 1, 2, 4, 6, 7, 9):  # no acquisition: no data
        assert (s2[month, :10] == 0).all() and (s2[month, 10] == 255).all()
    x = pixel_x(composed / "S2.tif")
    left, right = x < X0 + 310, x > X0 + 330  # SCL: no data left of X0 + 320 m, cloud right
    # May: the day's two tiles, each where it has data, no gap between them
    np.testing.assert_array_equal(s2[8, :10][:, :, left][:, 0, 0], 1000 + bands)
    np.testing.assert_array_equal(s2[8, :10][:, :, right][:, 0, 0], 2000 + bands)
    assert (s2[8, 10] == 0).all()
    assert (s2[11, 10][:, left] == 255).all() and (s2[11, :10][:, :, left] == 0).all()
    assert (s2[11, 10][:, right] == 50).all() and (s2[11, 0][:, right] == 2500).all()


def test_the_grid_is_10_m_in_the_areas_utm_zone_and_covers_it(composed: Path) -> None:
    with rasterio.open(composed / "S1.tif") as s1, rasterio.open(composed / "S2.tif") as s2:
        assert s1.crs == s2.crs == rasterio.crs.CRS.from_string(CRS)
        assert s1.transform == s2.transform and s1.shape == s2.shape
        assert s1.res == (10.0, 10.0) and s1.transform.c % 10 == 0 and s1.transform.f % 10 == 0
        left, bottom, right, top = s1.bounds
    assert left <= X0 + 120 and right >= X0 + 520 and bottom <= Y0 - 520 and top >= Y0 - 120
    assert right - left < 440 and top - bottom < 440


def test_band_names_units_and_the_items_used_are_recorded(composed: Path) -> None:
    with rasterio.open(composed / "S1.tif") as s1, rasterio.open(composed / "S2.tif") as s2:
        assert s1.descriptions[:4] == tuple(
            f"00 September {b}" for b in ("VV_asc", "VH_asc", "VV_desc", "VH_desc")
        )
        assert s2.descriptions[-1] == "11 August CLP" and "dB" in s1.tags()["AGBM_UNITS"]
        assert s1.nodata == S1_NODATA
    sidecar = json.loads((composed / "compose.json").read_text())
    months = sidecar["months"]
    assert months[0]["S1"] == {"ascending": ["S1_0", "S1_1"], "descending": ["S1_2"]}
    july = months[10]["S2"]
    assert july["items"] == ["S2_3"] and july["date"] == "2021-07-20"
    assert july["candidates"] == ["2021-07-03", "2021-07-20"] and july["cloud_fraction"] == 0.0
    assert months[3]["S2"]["boa_offset_removed"] == [1000]
    assert months[5]["S2"]["boa_offset_removed"] == [0]
    assert months[0]["S2"] == {"items": [], "date": None}
    assert months[11]["S2"]["cloud_fraction"] == 1.0  # every observed pixel is cloud
    assert months[3]["S1"]["descending"] == ["S1_8", "S1_9", "S1_10"]
    assert months[4]["S1"] == {"ascending": [], "descending": [], "without_vv_and_vh": ["S1_11"]}
    assert len(sidecar["bands"]["S2"]) == 132


def test_pixels_land_where_they_belong_and_20_m_bands_are_interpolated(tmp_path: Path) -> None:
    """Rasters whose values rise eastwards: on the 10 m grid each pixel must hold the value
    at its own centre. A half-pixel shift, or 20 m bands resampled nearest instead of
    bilinear (steps of two columns), would not."""
    day = D(2021, 7, 1)
    stac = build(
        tmp_path / "stac",
        [S1Item(day, "ascending", 0.01, 0.002, gradient=True)],
        [S2Item(day, 1000, 4, gradient=True)],
    )
    done = compose(tmp_path / "out", 2021, bbox=AREA, catalog=stac)
    x = pixel_x(done.s1)
    inner = slice(1, -1)  # away from the grid's own edge
    offset = (x - X0 - 5) / 10  # columns east of the rasters' first pixel centre
    s1 = read(done.s1).reshape(12, 4, *read(done.s1).shape[1:])[10]
    np.testing.assert_allclose(s1[0, 0, inner], db(0.01 + 0.001 * offset[inner]), atol=1e-4)
    np.testing.assert_allclose(s1[1, 0, inner], db(0.002 + 0.001 * offset[inner]), atol=1e-4)
    s2 = read(done.s2).reshape(12, 11, *read(done.s2).shape[1:])[10]
    for k in range(10):  # B2, B3, B4, B8 at 10 m; B5, B6, B7, B8A, B11, B12 at 20 m
        want = 1000 + 10 * k + 4 * offset[inner]
        np.testing.assert_allclose(s2[k, 0, inner], want, atol=1, err_msg=f"band {k}")


def test_a_like_grid_is_kept(catalog: Path, tmp_path: Path) -> None:
    like = tmp_path / "grid.tif"
    transform = rasterio.transform.from_origin(X0 + 200, Y0 - 150, 10, 10)
    with rasterio.open(
        like, "w", driver="GTiff", width=20, height=30, count=1, dtype="uint8", crs=CRS,
        transform=transform,
    ) as dst:  # fmt: skip
        dst.write(np.zeros((1, 30, 20), np.uint8))
    done = compose(tmp_path / "out", 2021, like=like, catalog=catalog)
    with rasterio.open(done.s1) as s1:
        assert s1.transform == transform and s1.shape == (30, 20) and s1.crs == CRS
    np.testing.assert_allclose(read(done.s1)[0], db(0.2), rtol=1e-5)


def test_the_catalog_is_opened_searched_and_loaded_by_the_libraries_an_api_uses(
    catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against the static catalog, compose opens it with pystac-client, filters by the same
    collection, bbox and dates, and loads with odc-stac: the functions an API run uses."""
    import odc.stac
    import pystac_client

    calls: dict[str, list] = {"open": [], "load": []}
    real_open, real_load = pystac_client.Client.open, odc.stac.load
    monkeypatch.setattr(
        pystac_client.Client,
        "open",
        lambda url, **kw: calls["open"].append(url) or real_open(url, **kw),
    )
    monkeypatch.setattr(
        odc.stac, "load", lambda items, **kw: calls["load"].append(kw) or real_load(items, **kw)
    )
    compose(tmp_path / "out", 2021, bbox=AREA, catalog=f"file://{catalog}")
    assert calls["open"] == [str(catalog)]
    assert calls["load"] and all(kw["geobox"].crs == CRS for kw in calls["load"])


def test_a_static_catalog_is_named_alike_however_it_is_given(
    catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What workers open and records compare: a run is the same run whichever way."""
    monkeypatch.chdir(catalog.parent.parent)
    relative = os.path.relpath(catalog)
    given = [catalog, relative, f"./{relative}", f"file://{catalog}", catalog.parent]
    given.append(f"{catalog.parent}/../{catalog.parent.name}/catalog.json")
    assert {catalog_url(g) for g in given} == {str(catalog)}
    assert catalog_url(PLANETARY_COMPUTER) == PLANETARY_COMPUTER


def test_an_api_is_asked_with_the_same_filters(
    catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API branch of `search`: the catalog answers the query itself."""
    opened = open_catalog(catalog)
    answer = list(opened.client.get_collection("sentinel-2-l2a").get_items())[::-1]
    opened.client.add_conforms_to("ITEM_SEARCH")
    asked = {}

    class Answer:
        def items(self):
            return iter(answer)

    def fake_search(**kwargs):
        asked.update(kwargs)
        return Answer()

    monkeypatch.setattr(opened.client, "search", fake_search)
    start, end = year_months(2021)[10]
    items = search(opened, "sentinel-2-l2a", AREA, start, end)
    assert asked == {
        "collections": ["sentinel-2-l2a"],
        "bbox": list(AREA),
        "datetime": [start, end - dt.timedelta(microseconds=1)],  # STAC: both ends included
    }
    oldest_first = sorted(answer, key=lambda i: (i.datetime, i.id))
    assert [i.id for i in items] == [i.id for i in oldest_first]


def test_an_interrupted_run_resumes_with_the_months_done(
    composed: Path, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = Path(shutil.copytree(composed, tmp_path / "place"))
    (out / "months" / "05.json").unlink()  # month 5 was being composed when the run died
    (out / "S1.tif").unlink()
    done = []
    real = compose_module.compose_month
    monkeypatch.setattr(
        compose_module, "compose_month", lambda f, m, *a: done.append(m) or real(f, m, *a)
    )
    compose(out, 2021, bbox=AREA, catalog=catalog)
    assert done == [5]
    np.testing.assert_array_equal(read(out / "S1.tif"), read(composed / "S1.tif"))
    np.testing.assert_array_equal(read(out / "S2.tif"), read(composed / "S2.tif"))


def test_a_folder_composed_for_another_place_is_refused(composed: Path, catalog: Path) -> None:
    """Resuming is by month: months of another grid must never be mixed into this one."""
    west, south, east, north = AREA
    shifted = (west + 0.001, south, east + 0.001, north)
    with pytest.raises(OutputError, match=r"months was made with other settings \(shape: "):
        compose(composed, 2021, bbox=shifted, catalog=catalog)


def test_a_scene_that_cannot_be_read_is_named_in_one_line(catalog: Path, tmp_path: Path) -> None:
    """A read that fails half-way (the network, a broken asset) stops with the month, and
    a second run resumes after the months already done."""
    copy = Path(shutil.copytree(catalog.parent, tmp_path / "stac")) / "catalog.json"
    (copy.parent / "data" / "S2_3_B04.tif").unlink()  # July 20th's red band
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"^month 10 July: reading its scenes failed .*resume"):
        compose(out, 2021, bbox=AREA, catalog=copy)
    assert len(list((out / "months").glob("??.json"))) == 10  # months 00..09 are kept


PLACE = ["--bbox", *map(str, AREA)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bbox", "27.1", "61.3", "27.0", "61.4", "--year", "2021"], "is not W S E N"),
        (["--bbox", "20", "60", "20.6", "60.4", "--year", "2021"], "spans more than"),
        ([*PLACE, "--year", "2015"], "no Sentinel-1 or Sentinel-2 acquisition"),
        ([*PLACE, "--year", "-5"], "--year -5: a year names its months September -6 to August -5"),
        ([*PLACE, "--year", "2021", "--catalog", "http://127.0.0.1:9/api"], "cannot be read"),
        ([*PLACE, "--year", "2021", "--catalog", "/nowhere/catalog.json"], "no such file"),
    ],
    ids=["bbox-order", "bbox-size", "no-data-that-year", "before-sentinel", "unreachable",
         "missing-file"],
)  # fmt: skip
def test_bad_places_years_and_catalogs_fail_in_one_line(
    catalog: Path, tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    argv = ["compose", *args, "--out", str(tmp_path / "out")]
    if "--catalog" not in args:
        argv += ["--catalog", str(catalog)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str):
        raise ImportError(name)

    monkeypatch.setattr(extras_module.importlib, "import_module", missing)
    # Its own class (it was the bare AgbmError), an ImportError too for library callers.
    with pytest.raises(DependencyError, match=r"pip install 'agbm\[compose\]'"):
        open_catalog("https://example.org/stac")


def test_the_grid_of_a_bbox_is_in_its_utm_zone() -> None:
    assert grid_for_bbox((-3.1, 40.0, -3.0, 40.1)).crs == "EPSG:32630"
    assert grid_for_bbox((151.0, -33.9, 151.1, -33.8)).crs == "EPSG:32756"


def test_map_runs_from_a_place_to_a_geotiff_with_bounds_and_a_png(
    catalog: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)  # some random weights map every pixel alike: no spread to check
    model = TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16))
    save_model(tmp_path / "model.pt", model)
    calib = write_calibration(tmp_path / "model.pt", "hv", [10.0] * 7, tmp_path / "calib.json")
    out = tmp_path / "maps" / "agbm.tif"
    argv = ["map", "--bbox", *map(str, AREA), "--year", "2021", "--catalog", str(catalog)]
    argv += ["--checkpoint", str(tmp_path / "model.pt"), "--out", str(out), "--tta", "hv"]
    assert main([*argv, "--calibration", str(calib)]) == 0
    inputs = tmp_path / "maps" / "agbm_inputs"
    with rasterio.open(out) as agbm, rasterio.open(inputs / "S1.tif") as s1:
        assert agbm.shape == s1.shape and agbm.transform == s1.transform
        assert agbm.count == 4 and "calibrated 90% bounds" in agbm.tags()["AGBM_BOUNDS"]
        assert agbm.tags()["AGBM_YEAR"] == s1.tags()["AGBM_YEAR"] == "2021"  # for agbm change
        values, low, high, spread = agbm.read()
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(high, values + 10.05, atol=1e-3)
    assert (low >= 0).all() and (spread >= 0).all() and spread.max() > 0
    assert not np.allclose(spread, values)
    assert out.with_suffix(".png").read_bytes()[:8] == PNG
    assert (inputs / "compose.json").is_file()


def test_map_reads_its_checkpoint_before_composing(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "model.pt").write_text("garbage")
    out = tmp_path / "maps" / "agbm.tif"
    argv = ["map", "--bbox", *map(str, AREA), "--year", "2021", "--catalog", str(catalog)]
    assert main([*argv, "--checkpoint", str(tmp_path / "model.pt"), "--out", str(out)]) == 2
    assert f"{tmp_path / 'model.pt'}: " in capsys.readouterr().err
    assert not (tmp_path / "maps" / "agbm_inputs").exists()  # nothing composed


def test_the_core_install_loads_no_catalog_library() -> None:
    """The CLI (with compose and map in it) starts without the compose extra's libraries:
    they are imported when a catalog is opened."""
    code = (
        "import sys, agbm.cli, agbm.mapping; agbm.cli.build_parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pystac', 'pystac_client', 'odc', 'planetary_computer', 'xarray', 'dask'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]


def test_a_pass_across_midnight_utc_is_one_acquisition() -> None:
    """Grouping by UTC date split a pass in two: near 90 W, S1's 18:00 local pass is at
    midnight UTC, and its slices fell on two dates (two acquisitions, averaged twice)."""
    from types import SimpleNamespace

    from agbm.compose.catalog import solar_day
    from agbm.compose.s1 import passes
    from agbm.compose.s2 import acquisitions

    def item(name: str, when: dt.datetime, lon: float, orbit: int = 1) -> SimpleNamespace:
        return SimpleNamespace(
            id=name,
            datetime=when.replace(tzinfo=dt.timezone.utc),
            bbox=[lon - 1, 40, lon + 1, 42],
            properties={"sat:relative_orbit": orbit},
        )

    before = item("a", dt.datetime(2021, 3, 4, 23, 59, 40), -90.0)
    after = item("b", dt.datetime(2021, 3, 5, 0, 0, 5), -90.0)
    next_day = item("c", dt.datetime(2021, 3, 5, 23, 59, 50), -90.0)
    assert solar_day(before) == solar_day(after) == dt.date(2021, 3, 4)
    assert [[i.id for i in p] for p in passes([after, next_day, before])] == [["a", "b"], ["c"]]
    assert [[i.id for i in d] for d in acquisitions([next_day, after, before])] == [
        ["a", "b"],
        ["c"],
    ]
    east = item("e", dt.datetime(2021, 3, 4, 23, 0), 179.5)  # across the antimeridian too
    east.bbox = [179.0, 40, -179.5, 42]  # centred on 179.75 E
    assert solar_day(east) == dt.date(2021, 3, 5)


def test_a_cog_truncated_halfway_is_named(catalog: Path, tmp_path: Path) -> None:
    """It said "reading its scenes failed (Read failed. See previous exception for
    details.)", naming no file."""
    copy = Path(shutil.copytree(catalog.parent, tmp_path / "stac")) / "catalog.json"
    band = copy.parent / "data" / "S2_3_B04.tif"
    band.write_bytes(band.read_bytes()[: band.stat().st_size // 2])
    with pytest.raises(DataError, match=r"month 10 July: reading its scenes failed") as err:
        compose(tmp_path / "out", 2021, bbox=AREA, catalog=copy)
    assert "S2_3_B04.tif" in str(err.value) and "See previous" not in str(err.value)


def like_grid(path: Path, of: Path, columns: slice) -> Path:
    """A GeoTIFF with the grid of some of the columns of `of`: one tile of a region."""
    with rasterio.open(of) as src:
        transform = src.transform @ rasterio.Affine.translation(columns.start, 0)
        width = columns.stop - columns.start
        profile = {"driver": "GTiff", "height": src.height, "width": width, "count": 1}
        profile.update(dtype="uint8", crs=src.crs, transform=transform)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((1, src.height, width), np.uint8))
    return path


def test_s2_is_chosen_per_block_so_tiles_compose_what_the_whole_composes(
    composed: Path, tmp_path: Path
) -> None:
    """Two July days, each clear over one half of the area: chosen over the area, one day
    wins everywhere, and two tiles of the area would each pick their own clear day, so the
    inputs depended on the tiling. Per 20-px block, the whole and its two tiles agree."""
    west_cloud = np.full((32, 32), 4, np.uint8)
    west_cloud[:, :16] = 9  # 20 m columns < 16: west of X0 + 320, the area's middle
    east_cloud = np.full((32, 32), 4, np.uint8)
    east_cloud[:, 16:] = 9
    days = [S2Item(D(2021, 7, 3), 2000, west_cloud), S2Item(D(2021, 7, 20), 3000, east_cloud)]
    stac = build(tmp_path / "stac", [S1Item(D(2021, 7, 2), "ascending", 0.1, 0.01)], days)
    whole = composed / "S1.tif"
    width = rasterio.open(whole).width
    assert width == 40  # the grid's columns 0..19 are the area's west half
    maps = {}
    for name, columns in (("all", slice(0, 40)), ("west", slice(0, 20)), ("east", slice(20, 40))):
        like = like_grid(tmp_path / f"{name}.tif", whole, columns)
        out = compose(tmp_path / name, 2021, like=like, catalog=stac, s2_block=20)
        maps[name] = read(out.s2).reshape(12, 11, -1, columns.stop - columns.start)[10, 0]
    np.testing.assert_array_equal(maps["all"], np.hstack([maps["west"], maps["east"]]))
    assert (maps["all"][:, :20] == 3000).all() and (maps["all"][:, 20:] == 2000).all()
    record = json.loads((tmp_path / "all" / "compose.json").read_text())["months"][10]["S2"]
    assert record["dates_by_block"] == [["2021-07-20", "2021-07-03"]] * 2
    one = compose(tmp_path / "one", 2021, like=tmp_path / "all.tif", catalog=stac)
    assert len(np.unique(read(one.s2).reshape(12, 11, 40, 40)[10, 0])) == 1  # one day wins


def test_asset_urls_are_signed_as_they_are_read_not_when_searched(
    catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planetary Computer tokens expire after about 45 minutes: a URL signed when the items
    were found is dead by the time a late month (or tile) reads it. Every signature must be
    made inside the read that uses it, and every read must be signed."""
    import dataclasses

    import odc.stac

    state = {"reading": False, "loads": 0}
    signed: list[bool] = []
    real_open, real_load = compose_module.open_catalog, odc.stac.load

    def sign(href: str) -> str:
        signed.append(state["reading"])  # True: made while a read runs
        return href

    def load(items, **kw):
        state["reading"], state["loads"] = True, state["loads"] + 1
        try:
            return real_load(items, **kw)
        finally:
            state["reading"] = False

    monkeypatch.setattr(odc.stac, "load", load)
    monkeypatch.setattr(
        compose_module,
        "open_catalog",
        lambda url: dataclasses.replace(real_open(url), patch_url=sign),
    )
    compose(tmp_path / "out", 2021, bbox=AREA, catalog=catalog)
    assert signed and all(signed)  # each URL signed during its own read
    assert len(signed) >= state["loads"]  # and no read without a signature
