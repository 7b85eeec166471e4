"""Tables of places (GeoDataFrames) written as a user asked: GeoPackage, GeoParquet, or a
CSV without the geometry; atomically, as every agbm output."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from agbm.io import replacing

#: The suffixes a table may be written as.
SUFFIXES = (".gpkg", ".parquet", ".csv")


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
