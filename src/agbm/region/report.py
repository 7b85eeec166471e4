"""What a region run did: its `RegionResult`, the report `region.json` it leaves in the
region folder (`region_report`), and the command's lines on it (`describe`; `summary`
serves `agbm chips` too)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agbm.region.grid import RegionGrid, Tile

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


def region_report(
    result: RegionResult, grid: RegionGrid, tiles: Sequence[Tile], start: float
) -> dict:
    """`region.json`: the grid, the tiles done and failed with their causes, the time."""
    return {
        **grid.fields(),
        "tiles": [asdict(t) for t in tiles],
        **{k: v for k, v in asdict(result).items() if k != "folder"},
        "seconds": round(time.perf_counter() - start, 1),
    }


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
