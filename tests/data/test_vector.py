"""Vector files in and out (`agbm.data.vector`): one reader for every command that takes
one (regions, zones, labels, plots), with one error naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas
import pytest
import shapely

from agbm.data.vector import read_vector
from agbm.errors import DataError
from agbm.evaluation.totals import read_zones
from agbm.labels.frame import read_labels
from agbm.labels.plots import read_plots
from agbm.region.grid import read_area


def test_a_vector_file_reads_alike_from_a_geopackage_and_a_geoparquet(tmp_path: Path) -> None:
    frame = geopandas.GeoDataFrame(
        {"name": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1), shapely.Point(2, 3)], crs=4326
    )
    frame.to_file(tmp_path / "places.gpkg")
    frame.to_parquet(tmp_path / "places.parquet")
    for path in (tmp_path / "places.gpkg", tmp_path / "places.parquet"):
        read = read_vector(path, "vector file", "labels")
        assert list(read["name"]) == ["a", "b"] and read.crs == frame.crs
        assert read.geometry.geom_equals(frame.geometry).all()


#: Each reader of a vector file, and what its messages call the file.
READERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "region": (read_area, "vector file"),
    "zones": (lambda path: read_zones(path, None), "vector file"),
    "labels": (read_labels, "labels file"),
    "plots": (read_plots, "plots file"),
}


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_of_a_vector_file_refuses_a_bad_one_in_one_line(
    reader: str, tmp_path: Path
) -> None:
    """The four readers used to spell their own read and error (under two extra names);
    now they share `read_vector`'s."""
    read, what = READERS[reader]
    missing, junk = tmp_path / "missing.gpkg", tmp_path / "junk.gpkg"
    junk.write_bytes(b"not a geopackage")
    with pytest.raises(DataError, match=f"^{missing}: no such {what}$"):
        read(missing)
    with pytest.raises(DataError, match=f"^{junk}: not a readable {what} \\(") as refused:
        read(junk)
    assert "\n" not in str(refused.value)
