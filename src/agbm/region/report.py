"""What a region run did and would do: its `RegionResult`, the report `region.json` it
leaves in the region folder (`region_report`), the figures of a plan (`plan_figures`, what
`--dry-run` prints), and the command's lines on them (`describe`, `describe_plan`;
`summary` serves `agbm chips` too)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agbm.region.grid import RegionGrid, Tile
from agbm.region.lattice import WindowPlan

#: The region folder's report.
REPORT = "region.json"


@dataclass
class RegionResult:
    """What a run did: tiles mapped now, skipped as done, failed (tile id -> cause), and per
    tile each task's worker, seconds and the worker's peak memory (`task_record`)."""

    folder: Path
    mapped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, dict[str, dict]] = field(default_factory=dict)


#: Bytes fetched per pixel composed, for a year (uncompressed; docs/benchmarks.md's Finland
#: estimate): S2 12 x (11 B of the chosen acquisition's bands + ~12 candidates' scene
#: classes at 0.25 B) = 170 B; S1 RTC 12 x ~12 passes x 8 B (VV, VH float32) = 1,150 B.
FETCH_BYTES_PER_PIXEL = 170 + 1150
#: Bytes of composed inputs kept per pixel: 12 months x (S1's 4 float32 + S2's 11 uint16).
INPUT_BYTES_PER_PIXEL = 12 * (4 * 4 + 11 * 2)


def passes_per_pixel(windows: int, window_area: int, pixels: int) -> float | None:
    """Window passes per map pixel: `windows` predictions of `window_area` pixels each over
    `pixels` pixels of tiles (None for no pixels)."""
    return round(windows * window_area / pixels, 3) if pixels else None


def task_totals(tasks: dict[str, dict[str, dict]]) -> dict[str, dict[str, float]]:
    """Each task kind's count, total seconds and the highest worker peak (MiB) among its
    tasks, from the tasks' own records (`tasks.task_record`)."""
    totals: dict[str, dict[str, float]] = {}
    for records in tasks.values():
        for kind, record in records.items():
            total = totals.setdefault(kind, {"tasks": 0, "seconds": 0.0, "peak_mib": 0})
            total["tasks"] += 1
            total["seconds"] = round(total["seconds"] + record["seconds"], 2)
            total["peak_mib"] = max(total["peak_mib"], record["peak_mib"])
    return totals


def region_report(
    result: RegionResult, grid: RegionGrid, tiles: Sequence[Tile], start: float, window_area: int
) -> dict:
    """`region.json`: the grid, the tiles done and failed with their causes, each task's
    record and each kind's totals (`task_totals`), the windows predicted in this run with
    their passes per pixel of the tiles mapped (windows of `window_area` pixels), the time."""
    windows = sum(t.get("predict", {}).get("windows", 0) for t in result.tasks.values())
    mapped = set(result.mapped)
    pixels = sum(t.height * t.width for t in tiles if t.id in mapped)
    return {
        **grid.fields(),
        "tiles": [asdict(t) for t in tiles],
        **{k: v for k, v in asdict(result).items() if k != "folder"},
        "task_totals": task_totals(result.tasks),
        "windows_predicted": windows,
        "passes_per_pixel": passes_per_pixel(windows, window_area, pixels),
        "seconds": round(time.perf_counter() - start, 1),
    }


def plan_figures(tiles: Sequence[Tile], windows: WindowPlan, window_area: int) -> dict:
    """What a region's run would cost (`agbm map-region --dry-run`): its tiles and pixels,
    the windows predicted (each once) and their passes per pixel, and the bytes to fetch
    (`FETCH_BYTES_PER_PIXEL`) and to keep as composed inputs."""
    pixels = sum(t.height * t.width for t in tiles)
    return {
        "tiles": len(tiles),
        "pixels": pixels,
        "windows": windows.windows(),
        "passes_per_pixel": passes_per_pixel(windows.windows(), window_area, pixels),
        "fetch_bytes": pixels * FETCH_BYTES_PER_PIXEL,
        "inputs_bytes": pixels * INPUT_BYTES_PER_PIXEL,
    }


def describe_plan(figures: dict) -> str:
    """`plan_figures` as the command's lines."""
    fetch, keep = figures["fetch_bytes"] / 1e12, figures["inputs_bytes"] / 1e12
    windows, passes = figures["windows"], figures["passes_per_pixel"]
    return "\n".join([
        f"tiles: {figures['tiles']:,} ({figures['pixels'] / 10_000:,.0f} km² composed)",
        f"windows: {windows:,}, each predicted once: {passes} window passes per pixel",
        f"to fetch: ~{fetch:,.2f} TB (uncompressed estimate; about 0.6x that as deflated "
        f"COGs); composed inputs kept: {keep:,.2f} TB",
    ])  # fmt: skip


def summary(verb: str, now: int, before: int, failed: dict[str, str], noun: str, where: str) -> str:
    """One line on what a run did (`verb` `now` of its `noun`s, `before` done by an earlier
    run, the failed ones, `where` the result is), and a line per failed one with its cause."""
    lines = [f"{verb} {now} {noun}(s), {before} already done, {len(failed)} failed; {where}"]
    lines += [f"  {noun} {name} failed: {cause}" for name, cause in sorted(failed.items())]
    return "\n".join(lines)


def describe(result: RegionResult) -> str:
    """`summary` of a region run."""
    where = f"map: {result.folder / 'agbm.vrt'}"
    return summary("mapped", len(result.mapped), len(result.skipped), result.failed, "tile", where)
