"""Two years of one region in one run (`agbm map-region --year A B`): each year's map in its
own region folder on one grid, then the change between them.

Both years are mapped by one model on one grid, so their difference is a change of forest,
not of processing. `OUT/A/` and `OUT/B/` are region folders as a one-year run makes them
(each resumable, each with its own record), and `OUT/change.tif` is `agbm change` of the
two (`agbm.evaluation.change`), with `OUT/change.json` its record. Its bounds come from the
paired change calibration when one is given, else by the union bound on the options' stock
calibration; without either the change has no bounds. A year with failed tiles leaves the
change unwritten: a rerun finishes the tiles, then writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agbm.evaluation.change import (
    ChangeIntervals,
    change_intervals,
    detectable_rows,
    map_change,
    map_path,
    write_record,
)
from agbm.evaluation.evaluate import format_rows
from agbm.inference.options import InferenceOptions
from agbm.region.engine import RegionPlan, RegionResult, map_region
from agbm.region.report import describe

#: The change map and its record in a two-year run's folder.
CHANGE_MAP, CHANGE_RECORD = "change.tif", "change.json"


@dataclass
class YearsResult:
    """What a two-year run did: each year's `results` (by year), the `change` map written
    (None while a year has failed tiles) and the `intervals` it was made with."""

    results: dict[int, RegionResult]
    change: Path | None
    intervals: ChangeIntervals | None


def check_years(years: Sequence[int]) -> tuple[int, int]:
    """Two years, the earlier first (the change is the later minus the earlier), or a
    one-line `ValueError` naming `years`."""
    if len(years) != 2 or years[0] >= years[1]:
        raise ValueError(f"`years` must be two years, the earlier first, not {list(years)}")
    return int(years[0]), int(years[1])


def year_plan(plan: RegionPlan, year: int) -> RegionPlan:
    """The plan of one year of a two-year run: its region folder `OUT/{year}`."""
    return replace(plan, folder=Path(plan.folder) / str(year), year=year)


def map_region_years(
    plan: RegionPlan,
    years: Sequence[int],
    *,
    options: InferenceOptions,
    change_calibration: Path | str | None = None,
    progress: bool = False,
) -> YearsResult:
    """Map `plan`'s region in each of `years` (two, the earlier first) into `plan.folder /
    str(year)` by the model of `options` (`map_region`, one year after the other), then
    write their change `plan.folder / CHANGE_MAP` and its record, unless a year has failed
    tiles. `change_calibration`: a paired calibration of the change (`agbm calibrate
    --change`) of this model, for the change's bounds (else the union bound on
    `options.calibration`, if any); `progress`: bars of each year's run."""
    years = check_years(years)
    if change_calibration is not None:  # before any work
        options.own_calibration(change_calibration, "change")
    results = {y: map_region(year_plan(plan, y), options=options, progress=progress) for y in years}
    if any(r.failed for r in results.values()):
        return YearsResult(results, None, None)
    maps = [map_path(year_plan(plan, y).folder) for y in years]
    stock = options.calibration if change_calibration is None else None
    intervals = change_intervals(
        maps, calibration=stock, change_calibration=change_calibration, coverage=options.coverage
    )
    out = Path(plan.folder) / CHANGE_MAP
    map_change(*maps, out, intervals=intervals, years=years)
    write_record(Path(plan.folder) / CHANGE_RECORD, *maps, intervals, years)
    return YearsResult(results, out, intervals)


def describe_years(result: YearsResult) -> str:
    """What a two-year run did: each year's `describe`, then the change map and its minimum
    detectable change per block, or why it is not written yet."""
    lines = [f"{year}: {describe(r)}" for year, r in result.results.items()]
    if result.change is None:
        lines.append("no change map yet: a year has failed tiles; rerun to finish them")
        return "\n".join(lines)
    lines.append(f"change: {result.change}")
    rows = detectable_rows(result.intervals) if result.intervals is not None else []
    if rows:
        lines += [f"minimum detectable change at {result.intervals.coverage:.0%}, t/ha:"]
        lines.append(format_rows(rows))
    return "\n".join(lines)
