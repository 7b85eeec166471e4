"""`agbm estimate`: design-based estimates of a zone's biomass from a probability sample of
field plots, the map only making them more precise (docs/estimate.md).

A map's own total is model-based: biased wherever its model is. The estimators here are
unbiased whatever the map's bias, when the plots are a simple random (or systematic) sample
of the zone's mapped area, measured in the map's year; their standard errors come from the
plots. Per zone, with `y` the plots' values and `m` the map's mean over each plot's disc
(`footprint_means_on_map`), both t/ha, and n plots:

- `direct`: mean(y), SE = s_y / sqrt(n), the plots alone;
- `model_assisted`, the difference estimator: M + mean(y - m), with M the map's exact mean
  over the zone (`zone_sums`, exactextract), SE = s_e / sqrt(n) of the residuals e = y - m;
- `post_stratified` (`strata`, class edges in t/ha of the map, or polygons with a stratum
  field): sum_h W_h mean(y_h), the weights W_h the shares of the zone's mapped area in each
  stratum (exactextract's sums, weighted by the pixels' true areas as `agbm stats` sums the
  map: of each class's indicator, or of the data mask over each piece of the zone cut by
  the stratum polygons), each plot in the class of the map's pixel under its centre, or in
  the polygon holding its centre; variance (Cochran 1977, 5A.9, as the US FIA uses it)
  sum_h W_h s_h^2 / n + sum_h (1 - W_h) s_h^2 / n^2.

Intervals are Student-t at `coverage`, with n - 1 degrees of freedom (n - H for H strata);
totals are the mean x the mapped area (`mapped_ha`), carbon and CO2e as `agbm stats` gives
them. The relative efficiency is the direct estimator's variance over each method's.

Of a change (`plots_to`, `map_to`: the plots measured again, paired by id, and a later map)
the same estimators, with y each plot's change, m the maps' change over its disc and M the
change of the maps' zone means, and `emissions_co2e_t` (a loss positive).

Honesty before numbers: a zone with fewer than `MIN_PLOTS` plots on the map gets no
estimate and a `reason`; fewer than `FEW_PLOTS` a `warning`; plots without a value or off
the map's data are left out, counted and said; GEDI footprints are refused (not a sample of
the zone, and model predictions themselves).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agbm.data.geotiff import open_map
from agbm.errors import DataError, warn
from agbm.evaluation.totals import (
    CARBON_FRACTION,
    CO2_PER_C,
    densified,
    in_range,
    read_zones,
    zone_rasters,
    zone_sums,
)
from agbm.extras import require
from agbm.inference.intervals import check_coverage
from agbm.io import replacing
from agbm.labels.footprints import footprint_means_on_map
from agbm.labels.frame import read_labels

METHODS = ("direct", "model_assisted", "post_stratified")
#: The estimate table's columns, in order.
COLUMNS = (
    "zone", "method", "n_plots", "mapped_ha", "map_mean_t_ha", "residual_mean_t_ha",
    "mean_t_ha", "se_t_ha", "mean_low_t_ha", "mean_high_t_ha", "agb_t", "agb_t_low",
    "agb_t_high", "carbon_t", "co2e_t", "relative_efficiency", "half_width_pct", "reason",
    "warning",
)  # fmt: skip
#: The change table's columns: the same, of the change, and the emissions (a loss positive).
CHANGE_COLUMNS = (*COLUMNS[: COLUMNS.index("co2e_t") + 1], "emissions_co2e_t",
                  *COLUMNS[COLUMNS.index("co2e_t") + 1 :])  # fmt: skip
#: Fewer plots than this in a zone: no estimate (no standard error from one plot).
MIN_PLOTS = 2
#: Fewer plots than this: a warning (the standard error is itself very uncertain).
FEW_PLOTS = 10
#: How GEDI labels' `source` starts (`agbm labels`): refused.
GEDI_SOURCE = "gedi-l4a:"
#: The zone's name when the whole map is the zone.
WHOLE_MAP = "map"


@dataclass(frozen=True)
class Estimate:
    """A mean, t/ha, with its standard error, from `n` plots; `df`: the degrees of freedom
    of its Student-t interval."""

    mean: float
    se: float
    n: int
    df: int

    def interval(self, coverage: float) -> tuple[float, float]:
        """The Student-t interval of the mean at `coverage`."""
        half = self.half_width(coverage)
        return self.mean - half, self.mean + half

    def half_width(self, coverage: float) -> float:
        """The interval's half-width at `coverage`: t_{(1 + c) / 2, df} x SE."""
        student_t = require("scipy.stats", "labels").t
        return float(student_t.ppf((1 + coverage) / 2, self.df)) * self.se


def direct_estimate(y: np.ndarray) -> Estimate:
    """The plots' mean and its SE, s_y / sqrt(n) (simple random sampling, no finite-population
    correction: the zone's area holds infinitely many plot positions)."""
    y = np.asarray(y, np.float64)
    return Estimate(float(y.mean()), float(y.std(ddof=1) / math.sqrt(len(y))), len(y), len(y) - 1)


def difference_estimate(y: np.ndarray, m: np.ndarray, map_mean: float) -> Estimate:
    """The model-assisted difference estimator: the map's mean over the zone plus the plots'
    mean residual y - m (`m`: the map's mean over each plot's disc); SE = s_e / sqrt(n).
    Unbiased whatever the map's bias: the residuals' mean estimates it."""
    residual = direct_estimate(np.asarray(y, np.float64) - np.asarray(m, np.float64))
    return Estimate(map_mean + residual.mean, residual.se, residual.n, residual.df)


def stratum_shortfall(
    strata: np.ndarray, weights: np.ndarray, names: Sequence[str] = ()
) -> str | None:
    """Why post-stratification cannot estimate: no stratum in the zone's mapped area, or a
    stratum there (a weight > 0) with fewer than 2 plots; else None. `names`: the strata's,
    for the reason (default "map class 1", ...)."""
    if not (weights > 0).any():
        return "no stratum covers the zone's mapped area"
    counts = np.bincount(strata, minlength=len(weights))
    short = np.flatnonzero((weights > 0) & (counts < 2))
    if not len(short):
        return None
    h = int(short[0])
    name = names[h] if len(names) else f"map class {h + 1}"
    return (
        f"{name} (a share {weights[h]:.3f} of the mapped area) has {counts[h]} "
        "plot(s): post-stratification needs at least 2 in each stratum (merge strata)"
    )


def post_stratified_estimate(y: np.ndarray, strata: np.ndarray, weights: np.ndarray) -> Estimate:
    """The post-stratified mean sum_h W_h mean(y_h) and its variance (Cochran 1977, 5A.9):
    sum_h W_h s_h^2 / n + sum_h (1 - W_h) s_h^2 / n^2, over the classes with a weight;
    `strata`: each plot's class index, `weights`: each class's share of the mapped area.
    Each class with a weight needs 2 plots (`stratum_shortfall`)."""
    y, strata = np.asarray(y, np.float64), np.asarray(strata)
    used = np.flatnonzero(np.asarray(weights) > 0)
    w = np.asarray(weights, np.float64)[used]
    means = np.array([y[strata == h].mean() for h in used])
    variances = np.array([y[strata == h].var(ddof=1) for h in used])
    n = int(np.isin(strata, used).sum())
    variance = (w * variances).sum() / n + ((1 - w) * variances).sum() / n**2
    return Estimate(float((w * means).sum()), math.sqrt(variance), n, n - len(used))


@dataclass(frozen=True)
class Zone:
    """One zone's share of the inputs: `y` the values, t/ha, of its plots on the map's data
    and `m` the map's mean over their discs; `map_mean` the map's exact mean over the zone
    and `mapped_ha` its mapped area; with strata, `strata` each plot's stratum (-1: none,
    its centre off the map's data or in no stratum polygon), `weights` the strata's shares
    of the mapped area and `stratum_names` their names for the reasons;
    `off_map`: the zone's plots left out, without map data under them; `change`: the values
    are changes (`estimate(..., plots_to, map_to)`); `notes`: more warnings."""

    name: Any
    y: np.ndarray
    m: np.ndarray
    map_mean: float
    mapped_ha: float
    strata: np.ndarray | None = None
    weights: np.ndarray | None = None
    off_map: int = 0
    change: bool = False
    notes: tuple[str, ...] = ()
    stratum_names: tuple[str, ...] = ()


def zone_warning(zone: Zone) -> str:
    """What a reader of the zone's estimates should know: few plots, plots left out."""
    notes = []
    if MIN_PLOTS <= len(zone.y) < FEW_PLOTS:
        notes.append(
            f"only {len(zone.y)} plots: the standard error from so few is itself uncertain"
        )
    if zone.off_map:
        notes.append(f"{zone.off_map} plot(s) of the zone have no map data under them: left out")
    return "; ".join([*notes, *zone.notes])


def zone_reason(zone: Zone) -> str:
    """Why the zone gets no estimate at all ('' when it gets one)."""
    if zone.mapped_ha <= 0:
        return "the map has no data in the zone"
    if len(zone.y) < MIN_PLOTS:
        return (
            f"{len(zone.y)} plot(s) on the map in the zone: an estimate needs at least {MIN_PLOTS}"
        )
    return ""


def zone_estimates(zone: Zone) -> dict[str, Estimate | str]:
    """Each method's estimate of the zone's mean, or the reason it has none."""
    reason = zone_reason(zone)
    methods = METHODS if zone.weights is not None else METHODS[:2]
    if reason:
        return dict.fromkeys(methods, reason)
    found: dict[str, Estimate | str] = {
        "direct": direct_estimate(zone.y),
        "model_assisted": difference_estimate(zone.y, zone.m, zone.map_mean),
    }
    if zone.weights is not None:
        classed = zone.strata >= 0
        short = stratum_shortfall(zone.strata[classed], zone.weights, zone.stratum_names)
        found["post_stratified"] = short or post_stratified_estimate(
            zone.y[classed], zone.strata[classed], zone.weights
        )
    return found


def zone_rows(zone: Zone, coverage: float = 0.9) -> list[dict[str, Any]]:
    """The zone's rows of the estimate table (`COLUMNS`, of a change `CHANGE_COLUMNS`), one
    per method."""
    found = zone_estimates(zone)
    direct = found["direct"]
    base = {
        "zone": zone.name, "n_plots": len(zone.y), "mapped_ha": zone.mapped_ha,
        "map_mean_t_ha": zone.map_mean,
        "residual_mean_t_ha": float(np.mean(zone.y - zone.m)) if len(zone.y) else math.nan,
        "warning": zone_warning(zone),
    }  # fmt: skip
    rows = []
    for method, est in found.items():
        columns = CHANGE_COLUMNS if zone.change else COLUMNS
        row = dict.fromkeys(columns, math.nan) | base | {"method": method, "reason": ""}
        if isinstance(est, str):
            row["reason"] = est
        else:
            row |= estimate_columns(est, direct, zone.mapped_ha, coverage, zone.change)
        rows.append(row)
    return rows


def estimate_columns(
    est: Estimate, direct: Estimate, mapped_ha: float, coverage: float, change: bool = False
) -> dict[str, float]:
    """One estimate's numbers: its mean, SE and interval (of a stock the low end clamped at
    0: no biomass is negative), totals over `mapped_ha`, carbon and CO2e (IPCC's carbon
    fraction; of a change the emissions too, a loss positive), the relative efficiency
    (`direct`'s variance over its own) and the half-width in % of the mean."""
    low, high = est.interval(coverage)
    low = low if change else max(low, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.float64(direct.se) ** 2 / np.float64(est.se) ** 2
        half_pct = 100 * np.float64(est.half_width(coverage)) / abs(np.float64(est.mean))
    agb = est.mean * mapped_ha
    co2e = agb * CARBON_FRACTION * CO2_PER_C
    return {
        "n_plots": est.n, "mean_t_ha": est.mean, "se_t_ha": est.se, "mean_low_t_ha": low,
        "mean_high_t_ha": high, "agb_t": agb, "agb_t_low": low * mapped_ha,
        "agb_t_high": high * mapped_ha, "carbon_t": agb * CARBON_FRACTION, "co2e_t": co2e,
        "relative_efficiency": float(efficiency), "half_width_pct": float(half_pct),
    } | ({"emissions_co2e_t": -co2e} if change else {})  # fmt: skip


def check_strata(
    strata: Sequence[float] | Path | str | None, strata_field: str | None = None
) -> np.ndarray | Any | None:
    """`strata` as increasing class edges in t/ha (at least 2: two classes; the first takes
    anything below its lower edge), or of a polygon file its strata (`read_strata`), or a
    one-line error naming `strata` or `strata_field`."""
    if isinstance(strata, (str, Path)):
        if strata_field is None:
            raise ValueError(f"`strata` {strata}: name its stratum field with `strata_field`")
        return read_strata(strata, strata_field)
    if strata_field is not None:
        raise ValueError(
            f"`strata_field` {strata_field}: only with `strata` FILE (polygons), not without "
            "strata or with class edges"
        )
    if strata is None:
        return None
    edges = np.asarray(strata, np.float64)
    if edges.ndim != 1 or len(edges) < 2 or not np.isfinite(edges).all():
        raise ValueError(f"`strata`: give at least 2 finite class edges in t/ha, not {strata}")
    if (np.diff(edges) <= 0).any():
        raise ValueError(f"`strata`: class edges must increase, not {list(strata)}")
    return edges


def read_strata(path: Path | str, field: str) -> Any:
    """The strata of a polygon file (any CRS): its polygons dissolved by `field`, one row
    per stratum (indexed by the field's values, sorted; polygons without one dropped), or a
    one-line `DataError` naming the file: not polygons, no such field, no stratum, strata
    that overlap (a place in two would count twice)."""
    shapely = require("shapely", "labels")
    frame = read_zones(path, field, "strata_field")
    strata = frame[[field, "geometry"]].dissolve(by=field)
    if not len(strata):
        raise DataError(f"{path}: no polygon has a value of {field!r}: no stratum")
    polygons = strata.geometry.to_numpy()
    if shapely.union_all(polygons).area < shapely.area(polygons).sum() * (1 - 1e-9):
        raise DataError(f"{path}: its strata overlap: a place may be in one stratum only")
    return strata


def stratum_areas(map_path: Path | str, outlines: Any, strata: Any) -> np.ndarray:
    """The covered true area, ha, of the map's data in each stratum polygon per zone
    `[zones, strata]`: the zones cut by the strata (geopandas' overlay, in the map's CRS),
    each piece's mapped area by `zone_sums`."""
    geopandas = require("geopandas", "labels")
    with open_map(map_path) as src:
        crs = src.crs.to_wkt()
    polygons = densified(strata).to_crs(crs)
    pieces = geopandas.overlay(
        outlines.to_crs(crs).assign(zone=np.arange(len(outlines))),
        polygons.assign(stratum=np.arange(len(strata))),
        how="intersection", keep_geom_type=True,
    )  # fmt: skip
    areas = np.zeros((len(outlines), len(strata)))
    if len(pieces):
        mapped, _ = zone_sums(Path(map_path), pieces)
        np.add.at(areas, (pieces["zone"].to_numpy(), pieces["stratum"].to_numpy()), mapped)
    return areas


def plot_strata(plots: Any, strata: Any) -> np.ndarray:
    """Each plot's stratum: the index of the stratum polygon holding its centre (-1: none)."""
    found = np.full(len(plots), -1)
    for h, inside in enumerate(plots_in_zones(plots, strata)):
        found[inside] = h
    return found


def strata_of(
    map_path: Path | str, plots: Any, outlines: Any, strata: Any
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(each plot's stratum, -1 for none; each stratum's mapped area per zone `[zones,
    strata]`, ha; the strata's names) of `strata`, class edges (`check_strata`) or the
    dissolved polygons of `read_strata`."""
    if isinstance(strata, np.ndarray):
        names = tuple(f"map class {h + 1}" for h in range(len(strata)))
        classes = centre_classes(map_path, plots, strata)
        return classes, class_areas(map_path, outlines, strata), names
    names = tuple(f"stratum {value!r}" for value in strata.index)
    return plot_strata(plots, strata), stratum_areas(map_path, outlines, strata), names


def strata_notes(classes: np.ndarray, areas: np.ndarray, mapped_ha: float) -> tuple[str, ...]:
    """A zone's warnings of its strata: its plots in none (left out of post-stratification),
    its mapped area not all in one (the estimate is then of the part that is)."""
    notes = []
    if (classes < 0).any():
        notes.append(
            f"{int((classes < 0).sum())} plot(s) of the zone in no stratum: left out of "
            "post_stratified"
        )
    if mapped_ha > 0 and 0 < areas.sum() < mapped_ha * (1 - 1e-3):
        notes.append(
            f"the strata cover {100 * areas.sum() / mapped_ha:.1f} % of the zone's mapped "
            "area: post_stratified estimates the mean of that part"
        )
    return tuple(notes)


def class_ranges(edges: np.ndarray) -> list[tuple[float, float]]:
    """The map classes of `edges`: [e0, e1), [e1, e2), ..., [ek, inf), the first open below."""
    lows = np.r_[-math.inf, edges[1:]]
    return list(zip(lows.tolist(), np.r_[edges[1:], math.inf].tolist(), strict=True))


def read_plots(path: Path | str) -> Any:
    """The plots (a labels file, `agbm labels --plots`), GEDI footprints refused in one line;
    plots without a value are kept (their agbd NaN) to be counted."""
    labels = read_labels(path, skip_missing_agbd=True)
    gedi = labels["source"].astype(str).str.startswith(GEDI_SOURCE)
    if gedi.any():
        raise DataError(
            f"{path}: {int(gedi.sum()):,} of its labels are GEDI footprints (source "
            f"{GEDI_SOURCE}...): they are no probability sample of a zone and are model "
            "predictions themselves; give field plots (agbm labels --plots)"
        )
    return labels


def map_zone(map_path: Path | str) -> Any:
    """The whole map as one zone: its extent's polygon, in its CRS."""
    geopandas, shapely = require("geopandas", "labels"), require("shapely", "labels")
    with open_map(map_path) as src:
        if src.crs is None:
            raise DataError(f"{map_path}: the map has no CRS, so its pixels' areas are unknown")
        extent, crs = shapely.box(*src.bounds), src.crs.to_wkt()
    return geopandas.GeoDataFrame(geometry=[extent], crs=crs)


def class_areas(map_path: Path | str, outlines: Any, edges: np.ndarray) -> np.ndarray:
    """The covered true area, ha, of each map class (`class_ranges`) per zone `[zones,
    classes]`: exactextract's sums of each class's indicator weighted by the pixels' true
    areas, as `zone_sums` sums the map."""
    exactextract = require("exactextract", "labels")
    with open_map(map_path) as src:
        local = outlines.to_crs(src.crs.to_wkt())[["geometry"]]
        (band, _), areas = zone_rasters(src)
        ranges = class_ranges(edges)
        rasters = [in_range(band, lo, hi, f"class{h}") for h, (lo, hi) in enumerate(ranges)]
        table = exactextract.exact_extract(
            rasters, local, ["weighted_sum"], weights=areas, output="pandas"
        )
    columns = [f"class{h}_area_weighted_sum" for h in range(len(ranges))]
    return table[columns].to_numpy(np.float64).reshape(len(outlines), len(ranges))


def centre_classes(map_path: Path | str, plots: Any, edges: np.ndarray) -> np.ndarray:
    """Each plot's map class: that of the pixel under its centre (-1: no data there). With
    plots placed at random over the zone, a class's plots are a sample of its area."""
    with open_map(map_path) as src:
        points = plots.geometry.to_crs(src.crs.to_wkt())
        found = src.sample(zip(points.x, points.y, strict=True), indexes=1, masked=True)
        values = np.ma.masked_invalid(np.ma.concatenate(list(found))).filled(np.nan)
    classes = np.searchsorted(edges[1:], values, side="right")
    return np.where(np.isnan(values), -1, classes)


def plots_in_zones(plots: Any, zones: Any) -> list[np.ndarray]:
    """The indices of the plots inside each zone (a plot may be in several)."""
    geopandas = require("geopandas", "labels")
    points = geopandas.GeoDataFrame(geometry=plots.geometry.to_crs(zones.crs).to_numpy(),
                                    crs=zones.crs)  # fmt: skip
    pairs = geopandas.sjoin(points, zones[["geometry"]].reset_index(drop=True), predicate="within")
    groups = pairs.groupby("index_right").groups
    return [np.sort(np.asarray(groups.get(z, []), int)) for z in range(len(zones))]


def estimate(
    map: Path | str,
    plots: Path | str,
    zones: Path | str | None = None,
    id_field: str | None = None,
    coverage: float = 0.9,
    strata: Sequence[float] | Path | str | None = None,
    plots_to: Path | str | None = None,
    map_to: Path | str | None = None,
    strata_field: str | None = None,
) -> Any:
    """The design-based estimates (module docstring) per zone and method as a DataFrame of
    `COLUMNS`; with `plots_to` and `map_to`, of the change from `map` to `map_to`
    (`CHANGE_COLUMNS`).

    `map`: an AGB map (t/ha, GeoTIFF or VRT); `plots`: field plots as a labels file (`agbm
    labels --plots`; GEDI refused), a probability sample of each zone measured in the
    map's year; `zones`: polygons (any CRS; default: the whole map, a zone named "map");
    `id_field`: the zones' name field (default: row numbers); `coverage`: the intervals';
    `strata`: for post-stratification, map class edges in t/ha (`[0, 100, 200]`: 0-100,
    100-200 and over 200; of `map`'s values for a change) or a polygon file (any CRS) whose
    `strata_field` names each polygon's stratum (polygons of one value are one stratum);
    `plots_to`, `map_to`: the same plots measured again (paired by their id, `agbm labels
    --columns id=NAME`) and the later map, for the change."""
    check_coverage(coverage)
    layers = check_strata(strata, strata_field)
    labels, y = read_sample(plots, plots_to, map_to)
    frame = read_zones(zones, id_field) if zones is not None else map_zone(map)
    outlines = densified(frame)
    values = map_at_plots(map, labels, outlines)
    if map_to is not None:
        values = values.change_to(map_at_plots(map_to, labels, outlines))
    usable = ~np.isnan(y) & np.isfinite(values.at_plots)
    maps = map if map_to is None else f"{map} or {map_to}"
    note_left_out(plots, maps, int(np.isnan(y).sum()), int((~np.isnan(y) & ~usable).sum()))
    classes, shares, strata_names = (
        strata_of(map, labels, outlines, layers) if layers is not None else (None, None, ())
    )
    names, rows = zone_names(frame, id_field, zones is None), []
    for z, inside in enumerate(plots_in_zones(labels, frame)):
        used = inside[usable[inside]]
        notes = values.notes(z)
        if layers is not None:
            notes += strata_notes(classes[used], shares[z], values.mapped[z])
        zone = Zone(
            names[z], y[used], values.at_plots[used], values.means[z], values.mapped[z],
            classes[used] if layers is not None else None,
            shares[z] / max(shares[z].sum(), 1e-300) if layers is not None else None,
            int((~np.isnan(y[inside]) & ~usable[inside]).sum()), map_to is not None,
            notes, strata_names,
        )  # fmt: skip
        rows += zone_rows(zone, coverage)
    pandas = require("pandas", "labels")
    return pandas.DataFrame(rows, columns=list(CHANGE_COLUMNS if map_to else COLUMNS))


@dataclass(frozen=True)
class MapValues:
    """A map's (or a change's) values: per zone its mapped area, ha, and exact mean, t/ha;
    per plot its mean over the plot's disc (NaN: no data there); of a change, the later
    map's mapped areas too (`mapped_to`)."""

    mapped: np.ndarray
    means: np.ndarray
    at_plots: np.ndarray
    mapped_to: np.ndarray | None = None

    def change_to(self, later: MapValues) -> MapValues:
        """The change from these values to `later`'s, over this map's mapped areas."""
        return MapValues(
            self.mapped, later.means - self.means, later.at_plots - self.at_plots, later.mapped
        )

    def notes(self, z: int) -> tuple[str, ...]:
        """Zone `z`'s warning of a change whose two maps cover it differently (by over 0.1
        %): the change of their means is then not the mean change of one area."""
        if self.mapped_to is None or math.isclose(self.mapped[z], self.mapped_to[z], rel_tol=1e-3):
            return ()
        return (
            f"the two maps cover the zone differently ({self.mapped[z]:,.2f} ha and "
            f"{self.mapped_to[z]:,.2f} ha with data): the change of their means may be biased",
        )


def map_at_plots(map_path: Path | str, plots: Any, outlines: Any) -> MapValues:
    """The map's `MapValues` over the zones' `outlines` and at the plots: exactextract's
    exact zone means (`zone_sums`) and footprint means (`footprint_means_on_map`)."""
    mapped, sums = zone_sums(Path(map_path), outlines)
    has = mapped > 0
    means = np.where(has, sums / np.where(has, mapped, 1.0), math.nan)
    return MapValues(mapped, means, footprint_means_on_map(map_path, plots))


def read_sample(
    plots: Path | str, plots_to: Path | str | None, map_to: Path | str | None
) -> tuple[Any, np.ndarray]:
    """The plots and their values (`read_plots`), or for a change (`plots_to` and `map_to`
    both given) the first file's plots measured again in `plots_to` and their changes."""
    if (plots_to is None) != (map_to is None):
        raise ValueError("a change needs both `plots_to` (the plots measured again) and `map_to`")
    labels = read_plots(plots)
    if plots_to is None:
        return labels, labels["agbd"].to_numpy(np.float64)
    return paired_change(labels, read_plots(plots_to), plots, plots_to)


def plot_ids(labels: Any, path: Path | str) -> np.ndarray:
    """The plots' ids, from their `source` (`plots:{file}:{id}`, `agbm labels --columns
    id=NAME`), or a one-line `DataError` naming the file: a plot without one, an id twice."""
    parts = labels["source"].astype("string").str.split(":", n=2)
    ids = parts.str.get(2).astype("string").fillna("")
    if (ids == "").any():
        raise DataError(
            f"{path}: {int((ids == '').sum()):,} plot(s) have no id (a source plots:FILE:ID, "
            "from agbm labels --columns id=NAME): a change pairs the plots by their ids"
        )
    twice = ids[ids.duplicated()]
    if len(twice):
        raise DataError(f"{path}: plot id {twice.iloc[0]!r} is there more than once")
    return ids.to_numpy(object)


def paired_change(
    before: Any, after: Any, path: Path | str, path_to: Path | str
) -> tuple[Any, np.ndarray]:
    """The plots of `before` also in `after` (by id, at `before`'s places and radii) and
    their change, t/ha (NaN where either has no value); the others are counted and said."""
    first, second = plot_ids(before, path), plot_ids(after, path_to)
    _, ia, ib = np.intersect1d(first, second, return_indices=True)
    if not len(ia):
        raise DataError(f"{path_to}: none of its plot ids is one of {path}'s")
    order = np.argsort(ia)
    ia, ib = ia[order], ib[order]
    for count, of, other in (
        (len(first) - len(ia), path, path_to),
        (len(second) - len(ib), path_to, path),
    ):
        if count:
            warn(f"{count:,} plot(s) of {of} are not in {other}: left out")
    change = after["agbd"].to_numpy(np.float64)[ib] - before["agbd"].to_numpy(np.float64)[ia]
    return before.iloc[ia].reset_index(drop=True), change


def zone_names(frame: Any, id_field: str | None, whole_map: bool) -> np.ndarray:
    """The zones' names: their `id_field`, else their row numbers; the whole map's "map"."""
    if whole_map:
        return np.array([WHOLE_MAP], object)
    return frame[id_field].to_numpy() if id_field else np.arange(len(frame))


def note_left_out(plots: Path | str, map: Path | str, unvalued: int, off_map: int) -> None:
    """Warn of how many plots are left out, and why."""
    if unvalued:
        warn(f"{unvalued:,} plot(s) of {plots} have no value: left out")
    if off_map:
        warn(
            f"{off_map:,} plot(s) of {plots} have no data of {map} under them (outside it "
            "or on no-data): left out"
        )


def write_estimates(table: Any, path: Path | str) -> Path:
    """The estimate table as CSV, written atomically."""
    path = Path(path)
    with replacing(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return path
