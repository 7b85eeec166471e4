"""Tables of places (GeoDataFrames): read from any vector file, with one error naming the
file, and written as a user asked: GeoPackage, GeoParquet, or a CSV without the geometry;
atomically, as every agbm output."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from agbm.errors import DataError
from agbm.extras import require
from agbm.io import replacing

#: The suffixes a table may be written as.
SUFFIXES = (".gpkg", ".parquet", ".csv")


def read_vector(path: Path | str, what: str, extra: str) -> Any:
    """A vector file as a GeoDataFrame (anything pyogrio reads; GeoParquet for .parquet),
    or a one-line `DataError` naming the file: missing, or not readable (with the reading
    library's own reason). What the rows must be is the caller's to check.

    path: the file (or a folder GDAL reads as one, such as a FileGDB).
    what: what the file is, for the messages: "vector file", "labels file", ...
    extra: the extra that brings geopandas, named if it is missing.
    """
    geopandas = require("geopandas", extra)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such {what}")
    try:
        if path.suffix.lower() == ".parquet":
            return geopandas.read_parquet(path)
        return geopandas.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio's and pyarrow's errors alike: not such a file
        raise DataError(f"{path}: not a readable {what} ({exc})") from None


def write_table(
    frame: Any, path: Path | str, layer: str, suffixes: tuple[str, ...] = SUFFIXES
) -> Path:
    """Write `frame` to `path` by its suffix (one of `suffixes`), atomically; `layer` names
    a GeoPackage's layer."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise ValueError(f"{path}: give a {', '.join(suffixes)} file")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        if suffix == ".csv":
            frame.drop(columns="geometry").to_csv(tmp, index=False, float_format="%.4f")
        elif suffix == ".parquet":
            frame.to_parquet(tmp)
        else:
            with warnings.catch_warnings():  # GDAL: "extension should be 'gpkg'" (the tmp name)
                warnings.simplefilter("ignore", RuntimeWarning)
                frame.to_file(tmp, driver="GPKG", engine="pyogrio", layer=layer)
    return path
