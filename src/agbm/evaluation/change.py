"""How much changed between two years' maps of one model, with intervals valid by
construction (`agbm change`).

The errors of two maps made by one model over one place are correlated, in a way no one can
know without paired reference data. The union bound needs no such knowledge: if each year's
interval covers its truth with probability at least 1 - (1 - c)/2 (`year_coverage`), both
cover theirs with probability at least c, and then the true change B - A lies in
[low_B - high_A, high_B - low_A], whatever the correlation. The price is width: the
interval is conservative.

Where paired references exist (the same chips with targets in two years, like the region's),
the change itself can be calibrated (`agbm calibrate --change`: a calibration of kind
"change"): then the change interval is the change +- its bin's conformal quantile at
coverage c directly (the bins are of the predicted change), and a block's the block
quantile; the two years' correlated errors cancel in those residuals as they do in the
change, so the interval is as wide as it needs to be, not wider.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from agbm.data.geotiff import geotiff_profile, geotiff_writer, open_map, reason, write_geotiff
from agbm.data.layout import agbm_chips, prediction_path
from agbm.errors import DataError, warn
from agbm.evaluation.totals import (
    CARBON_FRACTION,
    CO2_PER_C,
    check_map_model,
    zone_calibration,
    zone_halfwidths,
    zone_stats,
)
from agbm.inference.intervals import PIXEL_HA, Calibration, check_coverage, read_calibration
from agbm.inference.layers import map_model, map_year
from agbm.io import replacing, writable_folder

#: The change map's bands (a map without a calibration has the first only).
CHANGE_BANDS = (
    "AGB change, B - A (t/ha)",
    "lower bound of the change (t/ha)",
    "upper bound of the change (t/ha)",
    "significant change: -1 loss, 0 none, +1 gain",
)
#: The files of a chip's change, by layer (prediction folders).
CHANGE_LAYERS = ("change", "low", "high", "significant")
#: Rows of a map read and written at once: memory stays one strip, whatever the map's size.
STRIP = 512


def year_coverage(coverage: float) -> float:
    """The coverage each year's interval needs for their union bound to give `coverage`."""
    return 1 - (1 - coverage) / 2


@dataclass(frozen=True)
class ChangeIntervals:
    """How a change and its interval are made from two years' AGB (t/ha).

    calibration: the calibration of the maps' model: of the stocks (`agbm calibrate`,
        kind "stock": the union bound) or of the change (`agbm calibrate --change`, kind
        "change": paired); None for the change alone (no bounds, no significance).
    coverage: the change intervals' coverage (with a stock calibration each year's is
        `year_coverage` of it).
    """

    calibration: Calibration | None
    coverage: float = 0.9

    @property
    def bands(self) -> int:
        return len(CHANGE_BANDS) if self.calibration is not None else 1

    @property
    def paired(self) -> bool:
        """Whether the intervals come from a calibration of the change itself."""
        return self.calibration is not None and self.calibration.kind == "change"

    @property
    def each(self) -> float:
        """The coverage the calibration's own intervals are taken at: the change's when it is
        paired, each year's (`year_coverage`) for the union bound."""
        return self.coverage if self.paired else year_coverage(self.coverage)

    @property
    def rule(self) -> str:
        """How the bounds are made, for the map's tags and its record."""
        if self.paired:
            return "paired: the change +- the calibrated change's quantile at coverage"
        return "union bound: each year's calibrated interval at 1 - (1 - coverage) / 2"

    def layers(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """`[bands, h, w]` float32: the change, and with a calibration its bounds and its
        significance (-1 where the whole interval is below 0, +1 where above; NaN where
        either year has no data or no bounds)."""
        change = after - before
        if self.calibration is None:
            return change[None].astype(np.float32)
        if self.paired:
            half = self.calibration.halfwidths(change, self.coverage)
            low, high = change - half, change + half
        else:
            low_a, high_a = self.calibration.bounds(before, self.each)
            low_b, high_b = self.calibration.bounds(after, self.each)
            low, high = low_b - high_a, high_b - low_a
        significant = np.where(high < 0, -1.0, np.where(low > 0, 1.0, 0.0))
        significant[~(np.isfinite(low) & np.isfinite(high))] = np.nan
        return np.stack([change, low, high, significant]).astype(np.float32)

    def minimum_detectable(self) -> dict[int, float]:
        """The smallest change a block's mean must show to be significant, t/ha, by block
        side in px: the half-width of its change interval at zero change, the two years'
        block half-widths added (union bound) or the calibrated change's block quantile
        (paired); NaN where the calibration has too few residuals."""
        if self.calibration is None:
            return {}
        sides = sorted(int(s) for s in self.calibration.blocks)
        terms = 1 if self.paired else 2
        return {s: terms * self.calibration.block_quantile(s, self.each) for s in sides}


def check_one_calibration(calibration: Any, change_calibration: Any) -> None:
    """Refuse both rules at once: a change's bounds are the union bound's or paired."""
    if calibration is not None and change_calibration is not None:
        raise ValueError(
            "give `calibration` (the union bound) or `change_calibration` (paired), not both"
        )


def change_intervals(
    maps: Sequence[Path],
    *,
    calibration: Path | str | None = None,
    change_calibration: Path | str | None = None,
    coverage: float = 0.9,
) -> ChangeIntervals:
    """How a change's bounds are made at `coverage`: by the union bound on `calibration`'s
    (the maps' model's stock calibration, `agbm calibrate`), from `change_calibration`'s
    (its paired calibration of the change, `agbm calibrate --change`), or, with neither,
    none. The file is checked to be of the model of each of `maps` (both years' maps, or a
    chip's prediction of each folder); a coverage some bins cannot give is warned of."""
    check_one_calibration(calibration, change_calibration)
    given = calibration if calibration is not None else change_calibration
    if given is None:
        return ChangeIntervals(None, coverage)
    check_coverage(coverage)
    loaded = read_calibration(given, "stock" if calibration is not None else "change")
    for path in maps:
        check_map_model(loaded, path, given)
    intervals = ChangeIntervals(loaded, coverage)
    note = loaded.pixel_note(intervals.each, given)
    if note:  # (a coverage no bin can give was refused by pixel_note)
        warn(note)
    return intervals


def check_pair(before: Path, after: Path) -> None:
    """Refuse, in one line that says which, two maps on different grids or of different
    models (their checkpoints' and TTA tags): a change of model is no change of forest."""
    with open_map(before) as a, open_map(after) as b:
        differ = [
            what
            for what, x, y in (
                ("CRS", a.crs, b.crs),
                ("transform", a.transform, b.transform),
                ("size", a.shape, b.shape),
            )
            if x != y
        ]
    if differ:
        raise DataError(
            f"{after} is not on the grid of {before} (its {', '.join(differ)} differ): map "
            "both years on one grid"
        )
    models = map_model(before), map_model(after)
    if None not in models and models[0] != models[1]:
        (a_sha, a_tta), (b_sha, b_tta) = models
        raise DataError(
            f"{before} and {after} were made by different models ({[s[:12] for s in a_sha]} "
            f"TTA {a_tta}; {[s[:12] for s in b_sha]} TTA {b_tta}): a change needs one model"
        )


def _strips(src: DatasetReader) -> Iterator[Window]:
    for row in range(0, src.height, STRIP):
        yield Window(0, row, src.width, min(STRIP, src.height - row))


def _agbm(path: Path, src: DatasetReader, window: Window) -> np.ndarray:
    """Band 1 of a map in a window, float64, its no-data value as NaN."""
    try:
        values = src.read(1, window=window).astype(np.float64)
    except RasterioError as exc:
        raise DataError(f"{path}: unreadable or truncated map ({reason(exc)})") from None
    if src.nodata is not None and not math.isnan(src.nodata):
        values[values == src.nodata] = np.nan
    return values


def map_change(
    before: Path | str,
    after: Path | str,
    out: Path | str,
    *,
    intervals: ChangeIntervals,
    years: Sequence[int] | None = None,
) -> tuple[int, int] | None:
    """Write the change map `out` (GeoTIFF, `CHANGE_BANDS`) of two maps on one grid: files,
    region VRTs or region folders (their agbm.vrt), strip by strip; returns its years.

    before, after: the maps of years A and B. intervals: how bounds are made.
    years: (A, B) for the map's tags; by default the maps' own (`pair_years`).
    """
    before, after = map_path(before), map_path(after)
    check_pair(before, after)
    years = pair_years(before, after, years)
    with open_map(before) as a, open_map(after) as b:
        profile = geotiff_profile(a.shape, intervals.bands, np.float32, a.crs, a.transform, np.nan)
        tags = change_tags(before, after, intervals, years)
        with geotiff_writer(Path(out), profile, CHANGE_BANDS[: intervals.bands], tags) as dst:
            for window in _strips(a):
                layers = intervals.layers(_agbm(before, a, window), _agbm(after, b, window))
                dst.write(layers, window=window)
    return years


def map_path(path: Path | str) -> Path:
    """A map given as a file, or a region folder (its agbm.vrt)."""
    path = Path(path)
    return path / "agbm.vrt" if path.is_dir() and (path / "agbm.vrt").is_file() else path


def pair_years(
    before: Path, after: Path, years: Sequence[int] | None = None
) -> tuple[int, int] | None:
    """The years (A, B) of the maps `before` and `after`: `years` when given, else the
    years both maps are tagged with (`agbm.inference.layers.map_year`; agbm's maps of
    composed imagery are), else None."""
    if years is not None:
        return int(years[0]), int(years[1])
    tagged = map_year(before), map_year(after)
    return None if None in tagged else (tagged[0], tagged[1])


def change_tags(
    before: Path, after: Path, intervals: ChangeIntervals, years: Sequence[int] | None
) -> dict[str, str]:
    """What a change map says of itself: from what, which years, which interval rule."""
    tags = {"AGBM_CHANGE": f"{after} minus {before}, t/ha"}
    if years is not None:
        tags["AGBM_YEARS"] = f"{years[0]} {years[1]}"
    if intervals.paired:
        tags["AGBM_BOUNDS"] = (
            f"bands 2-3: {intervals.coverage:.0%} bounds of the change from its paired "
            "calibration (agbm calibrate --change)"
        )
    elif intervals.calibration is not None:
        tags["AGBM_BOUNDS"] = (
            f"bands 2-3: {intervals.coverage:.0%} bounds of the change by the union bound "
            f"(each year's calibrated bounds at {intervals.each:.1%})"
        )
    return tags


def folder_change(
    before: Path | str, after: Path | str, out: Path | str, *, intervals: ChangeIntervals
) -> list[str]:
    """Write `{chip}_change.tif` (and with a calibration `_low`, `_high`, `_significant`)
    to `out` for every chip two `agbm predict` folders share; returns those chips."""
    before, after, out = Path(before), Path(after), Path(out)
    chips = sorted(set(agbm_chips(before)) & set(agbm_chips(after)))
    if not chips:
        raise DataError(f"{before} and {after} share no chip ({{chip}}_agbm.tif)")
    writable_folder(out)
    for chip in chips:
        a, b = prediction_path(before, chip), prediction_path(after, chip)
        check_pair(a, b)
        with open_map(a) as src_a, open_map(b) as src_b:
            whole = Window(0, 0, src_a.width, src_a.height)
            layers = intervals.layers(_agbm(a, src_a, whole), _agbm(b, src_b, whole))
            crs, transform = src_a.crs, src_a.transform
        for name, layer in zip(CHANGE_LAYERS, layers, strict=False):
            write_geotiff(prediction_path(out, chip, name), layer[None], crs, transform, np.nan)
    return chips


def detectable_rows(intervals: ChangeIntervals) -> list[tuple[str, str]]:
    """The minimum detectable change per block, as `agbm change` prints it."""
    return [
        (f"block of {side} px ({side * side * PIXEL_HA:,.2f} ha)", f"± {mdc:.1f}")
        for side, mdc in intervals.minimum_detectable().items()
    ]


def write_record(
    path: Path, before: Path, after: Path, intervals: ChangeIntervals, years: Sequence[int] | None
) -> None:
    """CHANGE.json: what was compared, the interval rule and the minimum detectable change."""
    record = {
        "from": str(before),
        "to": str(after),
        "years": list(years) if years is not None else None,
        "coverage": intervals.coverage if intervals.calibration is not None else None,
        "rule": intervals.rule if intervals.calibration is not None else None,
        "minimum_detectable_change_t_ha": {
            f"{side} px ({side * side * PIXEL_HA:g} ha)": round(mdc, 3)
            for side, mdc in intervals.minimum_detectable().items()
        },
    }
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")


def zone_change(
    before: Path | str,
    after: Path | str,
    zones: Path | str,
    *,
    id_field: str | None = None,
    calibration: Path | str | None = None,
    change_calibration: Path | str | None = None,
    coverage: float = 0.9,
    carbon_fraction: float = CARBON_FRACTION,
    years: Sequence[int] | None = None,
) -> Any:
    """Each zone's net change between two maps of one model (a GeoDataFrame, one row per
    zone): both years' AGB, `delta_agb_t`, carbon, and emissions in CO2e (a loss is a
    positive emission), per year between `years` when given; with `calibration`, the
    intervals of the change by the union bound on each year's block intervals (at
    `year_coverage`) and the areas of significant loss and gain (`loss_ha`, `gain_ha`);
    with `change_calibration` instead, the intervals of the change from the paired block
    quantile at `coverage` nearest each zone's mapped area (`interval_block_px` its side),
    and those areas by the paired rule.

    before, after: the two years' maps. zones: polygons (any CRS); id_field: their id.
    calibration: the maps' model's stock calibration. change_calibration: its paired
    calibration of the change (`agbm calibrate --change`). coverage: the change's coverage.
    carbon_fraction: carbon per unit of dry biomass. years: (A, B); by default the maps'
    own (`pair_years`).
    """
    check_one_calibration(calibration, change_calibration)
    before, after = map_path(before), map_path(after)
    check_pair(before, after)
    years = pair_years(before, after, years)
    each = year_coverage(coverage) if calibration is not None else coverage
    a, b = (
        zone_stats(m, zones, id_field, calibration, each, carbon_fraction) for m in (before, after)
    )
    paired = zone_calibration(before, change_calibration, coverage, "change")
    if paired is not None:  # of the model of both maps (one note is enough)
        check_map_model(paired, after, change_calibration)
    table = b[["zone", "area_ha", "geometry"]].copy()
    table["mapped_ha"] = np.minimum(a["mapped_ha"], b["mapped_ha"])
    table["agb_t_from"], table["agb_t_to"] = a["agb_t"], b["agb_t"]
    delta = {"delta_agb_t": b["agb_t"] - a["agb_t"]}
    if calibration is not None:
        delta["delta_agb_t_low"] = b["agb_t_low"] - a["agb_t_high"]
        delta["delta_agb_t_high"] = b["agb_t_high"] - a["agb_t_low"]
    if paired is not None:
        mapped = table["mapped_ha"].to_numpy(float)
        half, sides = zone_halfwidths(paired, mapped, coverage)
        delta["delta_agb_t_low"] = delta["delta_agb_t"] - half * mapped
        delta["delta_agb_t_high"] = delta["delta_agb_t"] + half * mapped
        table["interval_block_px"] = sides
    span = years[1] - years[0] if years is not None else None
    for name, values in delta.items():
        table[name] = values
        carbon = values * carbon_fraction
        table[name.replace("agb_t", "carbon_t")] = carbon
        emission = name.replace("delta_agb_t", "emissions_co2e_t")
        table[_swapped(emission)] = -carbon * CO2_PER_C  # the change's low is emissions' high
        if span:
            table[f"{_swapped(emission)}_per_year"] = -carbon * CO2_PER_C / span
    intervals = paired or (read_calibration(calibration) if calibration is not None else None)
    if intervals is not None:
        table["coverage"] = coverage
        table["loss_ha"], table["gain_ha"] = _significant_areas(
            before, after, zones, id_field, ChangeIntervals(intervals, coverage)
        )
    return table


def _swapped(name: str) -> str:
    """An emission bound's name from the change bound it comes from (low <-> high)."""
    return name.replace("_low", "_HIGH").replace("_high", "_low").replace("_HIGH", "_high")


def _significant_areas(
    before: Path, after: Path, zones: Path | str, id_field: str | None, intervals: ChangeIntervals
) -> tuple[np.ndarray, np.ndarray]:
    """Each zone's area (ha, true area) of significant loss and of significant gain: the
    mapped area of a raster that has data only where the change's significance is -1 (then
    +1), both written in one pass over the two maps, through the same zonal sums as every
    total."""
    with tempfile.TemporaryDirectory(prefix=".agbm-change-") as tmp:
        masks = (Path(tmp) / "loss.tif", Path(tmp) / "gain.tif")
        with open_map(before) as a, open_map(after) as b:
            profile = geotiff_profile(a.shape, 1, np.float32, a.crs, a.transform, np.nan)
            with (
                geotiff_writer(masks[0], profile) as loss,
                geotiff_writer(masks[1], profile) as gain,
            ):
                for window in _strips(a):
                    layers = intervals.layers(_agbm(before, a, window), _agbm(after, b, window))
                    for dst, sign in ((loss, -1.0), (gain, 1.0)):
                        mask = np.where(layers[3] == sign, 1.0, np.nan).astype(np.float32)
                        dst.write(mask[None], window=window)
        loss_ha, gain_ha = (zone_stats(m, zones, id_field)["mapped_ha"].to_numpy() for m in masks)
    return loss_ha, gain_ha
