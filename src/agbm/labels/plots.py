"""Field plots as labels: inventory tables as users have them.

A plots file is a CSV (any delimiter), an Excel workbook (`.xlsx`: its first sheet) or
any vector file GDAL reads (points, in their own CRS). Its columns are named by
`PlotTable.columns` (`agbm labels --columns FIELD=NAME ...`, `PLOT_FIELDS`); a field not
named is looked for under its own name. Names match after trimming spaces, ignoring case
(" AGB (t/ha) " is `agbd="agb (t/ha)"`).

- Coordinates: the `lon`, `lat` columns, in `PlotTable.crs` (a projected grid such as
  EPSG:3067: then they are its x and y); or a vector file's points, in their CRS.
- `size_ha`, a plot's area, gives the radius of a circle of that area; without `radius_m`
  or `size_ha` a plot is a disc of `PlotTable.radius_m`.
- `year`, a year without a day, dates a plot on 1 July of that year (`YEAR_DATE`): the
  field season, so that `--year Y` (September Y-1 to August Y) keeps the plots of year Y.
- A row with an empty (or "NA") coordinate, agbd, radius or size is skipped and counted;
  an empty se or date is unknown. A value that is not a number is an error naming the
  file, the row and the column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agbm.data.vector import read_vector
from agbm.errors import DataError
from agbm.extras import require
from agbm.labels.frame import (
    LABEL_RULES,
    LABELS_CRS,
    PLOT_RADIUS_M,
    Filtered,
    find_bad,
    labels_frame,
)

#: What each field of a plots table holds (`--columns FIELD=NAME`).
PLOT_FIELDS = {
    "lon": "longitude (degrees), or x in `plots_crs`",
    "lat": "latitude (degrees), or y in `plots_crs`",
    "agbd": "above-ground biomass density, t/ha",
    "se": "agbd's standard error, t/ha",
    "date": "the day it was measured",
    "year": "the year it was measured (dated 1 July)",
    "radius_m": "the plot's radius, m",
    "size_ha": "the plot's area, ha (a circle of that area)",
    "id": "the plot's id (kept in the label's source)",
}
#: Fields that say the same thing: a table gives one of each pair at most.
EITHER = (("date", "year"), ("radius_m", "size_ha"))
#: The (month, day) a plot dated by its year only is given.
YEAR_DATE = (7, 1)
#: Text that means "no value" in a table's cell (pandas reads most as NA already).
NA_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none"})
#: Suffixes read as spreadsheets, as text tables; anything else is a vector file.
SPREADSHEETS, TEXT_TABLES = (".xlsx", ".xlsm"), (".csv", ".txt", ".tsv")


@dataclass(frozen=True)
class PlotTable:
    """How a plots file is read: `columns` maps a field of `PLOT_FIELDS` to the table's
    column name; `crs` is that of the `lon`, `lat` columns; `radius_m` the radius of a
    plot the table gives none."""

    columns: Mapping[str, str] = field(default_factory=dict)
    crs: str = LABELS_CRS
    radius_m: float = PLOT_RADIUS_M


def parse_columns(items: Sequence[str]) -> dict[str, str]:
    """`--columns FIELD=NAME ...` as a field -> column name map, or a one-line `ValueError`
    naming the item at fault."""
    columns: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        name = name.strip().lower()
        if not sep or not column.strip():
            raise ValueError(f"`columns` {item!r}: give FIELD=NAME, e.g. agbd='AGB (t/ha)'")
        if name not in PLOT_FIELDS:
            raise ValueError(
                f"`columns` {item!r}: no field {name!r}; fields: {', '.join(PLOT_FIELDS)}"
            )
        columns[name] = column
    for pair in EITHER:
        if all(f in columns for f in pair):
            raise ValueError(f"`columns`: give {pair[0]} or {pair[1]}, not both")
    return columns


def check_crs(crs: str) -> str:
    """`crs` as `--plots-crs` takes it (any CRS pyproj knows), or a one-line `ValueError`."""
    pyproj = require("pyproj", "labels")
    try:
        pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        raise ValueError(f"`plots_crs` {crs}: not a CRS (give e.g. EPSG:3067)") from None
    return crs


def read_table(path: Path) -> tuple[Any, int]:
    """A plots file as a (Geo)DataFrame, and the number a spreadsheet would give its first
    data row (2 below a header row; 1 for a vector file's first feature)."""
    pandas = require("pandas", "labels")
    suffix = path.suffix.lower()
    if suffix in SPREADSHEETS:
        require("openpyxl", "labels")
    if suffix not in (*TEXT_TABLES, *SPREADSHEETS):
        return read_vector(path, "plots file", "labels"), 1
    try:
        if suffix in TEXT_TABLES:  # the delimiter sniffed: inventories often use ";"
            return pandas.read_csv(path, sep=None, engine="python"), 2
        return pandas.read_excel(path), 2
    except Exception as exc:  # pandas' and openpyxl's parse errors: say which file
        raise DataError(f"{path}: not a readable plots file ({exc})") from None


def find_columns(table: Any, names: Mapping[str, str], path: Path, needed: Sequence[str]) -> dict:
    """Each field's column in `table`: the one `names` gives it (or the field's own name),
    matched after trimming spaces and ignoring case. A `needed` field or a named column
    not found is a one-line `DataError` naming it and listing the file's columns."""
    key = {}
    for column in table.columns:
        if column != "geometry":
            key.setdefault(str(column).strip().casefold(), column)
    found = {}
    for name in PLOT_FIELDS:
        wanted = names.get(name, name)
        column = key.get(wanted.strip().casefold())
        if column is not None:
            found[name] = column
        elif name in names or name in needed:
            listed = ", ".join(repr(str(c)) for c in table.columns if c != "geometry")
            how = f"`columns` {name}={wanted!r}" if name in names else f"a {name!r} column"
            raise DataError(
                f"{path}: no column {wanted!r} ({how}, {PLOT_FIELDS[name]}); its columns: "
                f"{listed or 'none'}"
            )
    for first, second in EITHER:  # both found: the one named, else the first
        if first in found and second in found:
            del found[first if second in names else second]
    return found


def missing(values: Any) -> np.ndarray:
    """Which cells hold no value: NA, or text such as "" and "NA" (`NA_TEXT`)."""
    text = values.astype("string").str.strip().str.casefold()
    return (values.isna() | text.isin(NA_TEXT)).fillna(True).to_numpy(bool)


def numbers(table: Any, column: str, path: Path, first_row: int) -> np.ndarray:
    """A column as float64 (NaN where empty); a cell that is not a number is a one-line
    `DataError` naming the file, its row and the column."""
    pandas = require("pandas", "labels")
    values = table[column]
    empty = missing(values)
    parsed = pandas.to_numeric(values.where(~empty), errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~empty & np.isnan(parsed))
    if len(bad):
        raise bad_cells(path, first_row, column, values, bad, "a number")
    return parsed


def bad_cells(
    path: Path, first_row: int, column: str, values: Any, bad: np.ndarray, what: str
) -> DataError:
    """The one-line error of a column's cells at `bad` (positions) that are not `what`:
    the file, the first one's row (`first_row` the first data row's), the column, its text."""
    row = int(bad[0])
    return DataError(
        f"{path}: row {row + first_row}, column {str(column)!r}: {values.iloc[row]!r} is not "
        f"{what} ({len(bad)} such rows)"
    )


def plot_radii(values: Mapping[str, np.ndarray], default: float) -> np.ndarray | float:
    """Each plot's radius, m: its `radius_m`, the circle of its `size_ha`, or `default`."""
    if "radius_m" in values:
        return values["radius_m"]
    if "size_ha" in values:
        return np.sqrt(values["size_ha"] * 1e4 / math.pi)
    return default


def parse_dates(table: Any, column: str, path: Path, first_row: int) -> Any:
    """A date column as UTC datetimes (NaT where empty); a cell that is not a date, or a
    column of numbers (years belong in `year=`), is a one-line `DataError` naming the file,
    the column and the value."""
    pandas = require("pandas", "labels")
    values = table[column]
    empty = missing(values)
    if pandas.api.types.is_numeric_dtype(values) and not empty.all():
        first = values[~empty].iloc[0]
        raise DataError(
            f"{path}: column {str(column)!r} holds numbers ({first}), not dates; if they "
            f"are years, give `columns` year={str(column).strip()!r}"
        )
    dates = pandas.to_datetime(values.where(~empty), utc=True, errors="coerce")
    bad = np.flatnonzero(~empty & dates.isna().to_numpy(bool))
    if len(bad):
        raise bad_cells(path, first_row, column, values, bad, "a date such as 2021-06-15")
    return dates


def plot_dates(table: Any, found: Mapping[str, str], path: Path, first_row: int) -> Any:
    """Each plot's date (NaT where unknown; None: no date at all): its `date`, or 1 July of
    its `year`."""
    pandas = require("pandas", "labels")
    if "year" in found:
        years = numbers(table, found["year"], path, first_row)
        check_values(path, first_row, found, {"year": years}, ~np.isnan(years))
        month, day = YEAR_DATE
        text = [None if np.isnan(y) else f"{int(y):04d}-{month:02d}-{day:02d}" for y in years]
        return pandas.to_datetime(pandas.Series(text), utc=True)
    if "date" in found:
        return parse_dates(table, found["date"], path, first_row)
    return None


def plot_points(
    table: Any, found: Mapping[str, str], path: Path, first_row: int, crs: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each plot's lon and lat (NaN where unknown): its `lon`, `lat` columns in `crs`, or a
    vector file's points in their own CRS (`crs` where the file has none)."""
    if "lon" in found and "lat" in found:
        x, y = (numbers(table, found[c], path, first_row) for c in ("lon", "lat"))
    else:
        geometry = table.geometry
        if not geometry.dropna().geom_type.eq("Point").all():
            raise DataError(f"{path}: plots must be points (this file holds other shapes)")
        x, y = geometry.x.to_numpy(np.float64), geometry.y.to_numpy(np.float64)
        crs = geometry.crs or crs
    to_lonlat = require("pyproj", "labels").Transformer.from_crs(crs, LABELS_CRS, always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    return np.asarray(lon, np.float64), np.asarray(lat, np.float64)


#: What each of a plot's values must be: the labels' rules (`LABEL_RULES`), and a size and
#: a year pandas can date.
PLOT_RULES = {
    **{f: LABEL_RULES[f] for f in ("lon", "lat", "agbd", "radius_m")},
    "se": LABEL_RULES["agbd_se"],
    "size_ha": (lambda v: np.isfinite(v) & (v > 0), "an area, ha > 0"),
    "year": (lambda v: (v % 1 == 0) & (v >= 1678) & (v <= 2261), "a year"),
}


def check_values(
    path: Path,
    first_row: int,
    found: Mapping[str, str],
    values: Mapping[str, np.ndarray],
    where: np.ndarray | None = None,
) -> None:
    """A one-line `DataError` naming the file, the row and the column of the first of the
    plots' `values` (by field; only the rows `where`) that no plot can have (`PLOT_RULES`)."""
    bad = find_bad(values, PLOT_RULES, where)
    if bad:
        name, row, count = bad
        raise DataError(
            f"{path}: row {row + first_row}, column {str(found.get(name, 'geometry'))!r}: "
            f"{name} {values[name][row]:g} is not {PLOT_RULES[name][1]} ({count} such rows)"
        )


def has_points(table: Any) -> bool:
    """Whether a table read from a vector file has point geometries to place its plots."""
    return "geometry" in getattr(table, "columns", ()) and bool(table.geometry.notna().any())


def read_plots(path: Path | str, how: PlotTable | None = None) -> Filtered:
    """A plots file's plots as labels (module docstring), with how many rows it has and how
    many were skipped for an empty value, by column; a value no plot can have is a one-line
    `DataError` naming the file, the row and the column (`check_values`)."""
    path, how = Path(path), how or PlotTable()
    if not path.is_file():
        raise DataError(f"{path}: no such plots file")
    table, first_row = read_table(path)
    columns = not has_points(table) or "lon" in how.columns or "lat" in how.columns
    needed = ("lon", "lat", "agbd") if columns else ("agbd",)
    found = find_columns(table, how.columns, path, needed)
    if not columns:  # a vector file's own points, not its attributes called lon and lat
        found.pop("lon", None), found.pop("lat", None)
    lon, lat = plot_points(table, found, path, first_row, how.crs)
    values = {"lon": lon, "lat": lat}
    for name in ("agbd", "radius_m", "size_ha", "se"):
        if name in found:
            values[name] = numbers(table, found[name], path, first_row)
    keep, removed = np.ones(len(table), bool), {}
    for name in ("lon", "lat", "agbd", "radius_m", "size_ha"):  # the values a plot needs
        empty = keep & np.isnan(values[name]) if name in values else np.zeros_like(keep)
        if empty.any():
            removed[f"empty {str(found.get(name, 'geometry')).strip()!r}"] = int(empty.sum())
        keep &= ~empty
    check_values(path, first_row, found, values, keep)
    dates = plot_dates(table, found, path, first_row)
    source = f"plots:{path.name}"
    if "id" in found:
        source = (source + ":" + table[found["id"]].astype("string").fillna("")).to_numpy(object)
    every = len(keep)
    kept = labels_frame(
        lon[keep], lat[keep], values["agbd"][keep],
        np.broadcast_to(values.get("se", np.nan), every)[keep],
        np.broadcast_to(plot_radii(values, how.radius_m), every)[keep],
        None if dates is None else dates[keep],
        np.broadcast_to(source, every)[keep],
    )  # fmt: skip
    return Filtered(kept, len(table), removed)
