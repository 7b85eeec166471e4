"""Sparse biomass labels: points where the biomass is known, each with its footprint.

A labels file (GeoPackage, or GeoParquet by its `.parquet` suffix) holds one point per
label in EPSG:4326 and the columns `LABEL_COLUMNS`:

- `agbd`: above-ground biomass density, t/ha (= Mg/ha);
- `agbd_se`: its standard error, t/ha (NaN when unknown: a plot without one);
- `radius_m`: the footprint's radius in metres (GEDI: 12.5 m; a plot: its own);
- `date`: when it was measured (UTC; missing when unknown);
- `source`: where it came from (`gedi-l4a:{granule}`, `plots:{file}`, `plots:{file}:{id}`).

A label's value is compared with a map's mean over its footprint disc, never with the one
pixel under its centre: GEDI's 25 m footprint spans several 10 m pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agbm.data.calendar import year_span
from agbm.data.vector import read_vector, write_table
from agbm.errors import DataError
from agbm.extras import require

LABEL_COLUMNS = ("agbd", "agbd_se", "radius_m", "date", "source")
#: Where a labels file's points are.
LABELS_CRS = "EPSG:4326"
#: The default plot radius, m: a 0.05 ha circular plot (`--plot-radius`).
PLOT_RADIUS_M = 12.62
#: What each value of a label must be: (its test, what a message asks for). NaN fails each
#: test but `agbd_se`'s (an unknown se).
LABEL_RULES = {
    "lon": (lambda v: np.abs(v) <= 180, "a longitude, -180 to 180"),
    "lat": (lambda v: np.abs(v) <= 90, "a latitude, -90 to 90"),
    "agbd": (lambda v: v >= 0, "a biomass, t/ha >= 0"),
    "agbd_se": (lambda v: np.isnan(v) | (v >= 0), "a standard error, t/ha >= 0 (or empty)"),
    "radius_m": (lambda v: np.isfinite(v) & (v > 0), "a radius, m > 0"),
}


def geopandas() -> Any:
    """geopandas, or the `pip install` of the extra that brings it."""
    return require("geopandas", "labels")


def labels_frame(
    lon: Sequence[float],
    lat: Sequence[float],
    agbd: Sequence[float],
    agbd_se: Sequence[float] | float = np.nan,
    radius_m: Sequence[float] | float = PLOT_RADIUS_M,
    date: Sequence[Any] | None = None,
    source: Sequence[str] | str = "",
) -> Any:
    """A labels GeoDataFrame (`LABEL_COLUMNS`, points in EPSG:4326) from its columns; scalars
    are broadcast to every label."""
    gpd = geopandas()
    n = len(agbd)
    pandas = require("pandas", "labels")
    dates = pandas.to_datetime(pandas.Series([None] * n if date is None else list(date)), utc=True)
    columns = {
        "agbd": np.asarray(agbd, np.float64),
        "agbd_se": np.broadcast_to(np.asarray(agbd_se, np.float64), n).copy(),
        "radius_m": np.broadcast_to(np.asarray(radius_m, np.float64), n).copy(),
        "date": dates.to_numpy(),
        "source": np.broadcast_to(np.asarray(source, object), n).copy(),
    }
    points = gpd.points_from_xy(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    return gpd.GeoDataFrame(columns, geometry=points, crs=LABELS_CRS)


def write_labels(frame: Any, path: Path | str) -> Path:
    """Write `frame` (`labels_frame`'s) to `path`, atomically: GeoPackage or GeoParquet."""
    return write_table(frame, path, "labels", (".gpkg", ".parquet"))


def find_bad(
    values: Mapping[str, np.ndarray], rules: Mapping[str, tuple], where: np.ndarray | None = None
) -> tuple[str, int, int] | None:
    """The first of `values` (by field, each array one value per label; only where `where`)
    that breaks its field's rule in `rules`: (the field, its index, how many break it)."""
    for name, array in values.items():
        test = rules[name][0]
        with np.errstate(invalid="ignore"):
            bad = ~test(np.asarray(array, np.float64))
        bad = np.flatnonzero(bad if where is None else bad & where)
        if len(bad):
            return name, int(bad[0]), len(bad)
    return None


def check_labels(frame: Any, path: Path | str, skip_missing_agbd: bool = False) -> Any:
    """`frame`, or a one-line `DataError` naming the labels file at `path` when it holds no
    label or a value no label can have (`LABEL_RULES`): its label's index, field and value.
    With `skip_missing_agbd` an agbd of NaN passes (the scores skip and count it)."""
    if frame.empty:
        raise DataError(f"{path}: holds no labels")
    values = {
        "lon": frame.geometry.x.to_numpy(), "lat": frame.geometry.y.to_numpy(),
        **{c: frame[c].to_numpy(np.float64) for c in ("agbd", "agbd_se", "radius_m")},
    }  # fmt: skip
    checked = dict(values)
    if skip_missing_agbd:
        checked["agbd"] = np.where(np.isnan(values["agbd"]), 0.0, values["agbd"])
    found = find_bad(checked, LABEL_RULES)
    if found:
        name, index, count = found
        raise DataError(
            f"{path}: label {index}: {name} {values[name][index]:g} is not "
            f"{LABEL_RULES[name][1]} ({count} such labels)"
        )
    return frame


def read_labels(path: Path | str, skip_missing_agbd: bool = False) -> Any:
    """A labels file (`write_labels`'s, or any points file with those columns) in EPSG:4326,
    or a one-line `DataError` naming the file, also when it holds no labels or a bad value
    (`check_labels`; `skip_missing_agbd` lets an agbd of NaN through)."""
    path = Path(path)
    frame = read_vector(path, "labels file", "labels")
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a labels file, it has no column {', '.join(missing)}")
    if frame.crs is None or not frame.geom_type.eq("Point").all():
        raise DataError(f"{path}: labels must be points with a CRS")
    return check_labels(frame.to_crs(LABELS_CRS), path, skip_missing_agbd)


@dataclass(frozen=True)
class Filtered:
    """A source's labels after its filters: how many it had (`total`), how many each filter
    removed, in order, and the parameter that keeps what a filter removed (`flags`, in
    backticks: the CLI spells it as its flag)."""

    frame: Any
    total: int
    removed: dict[str, int] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)


def within(found: Filtered, area: Any | None = None, year: int | None = None) -> Filtered:
    """`found`'s labels inside `area` (a geometry in EPSG:4326; None: all) and measured
    within `year`'s 12 months (labels without a date are kept), with what each removed."""
    frame, removed = found.frame, dict(found.removed)
    if area is not None:
        inside = frame.geometry.within(area)
        removed["outside the region"] = int((~inside).sum())
        frame = frame[inside]
    if year is not None:
        start, end = year_span(year)
        dated = frame["date"].notna()
        in_year = ~dated | ((frame["date"] >= start) & (frame["date"] < end))
        removed[f"outside the year {year} (September {year - 1} to August {year})"] = int(
            (~in_year).sum()
        )
        frame = frame[in_year]
    return Filtered(frame, found.total, removed, found.flags)


def describe_removed(what: str, found: Filtered) -> str:
    """One line: how many `what` there were, how many each filter removed (with the
    parameter that keeps them), how many stay; and when a filter removed every label left,
    that parameter."""
    parts = ", ".join(
        f"{reason}: {count:,}" + (f" ({found.flags[reason]})" if reason in found.flags else "")
        for reason, count in found.removed.items()
    )
    line = f"{what}: {found.total:,}; removed {parts or 'none'}; kept {len(found.frame):,}"
    last = [reason for reason, count in found.removed.items() if count]
    if found.total and not len(found.frame) and last and last[-1] in found.flags:
        line += f"; {last[-1]} removed every one left: {found.flags[last[-1]]} keeps them"
    return line
