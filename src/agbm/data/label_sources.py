"""`agbm labels`' sources joined: GEDI L4A granules and plots files, filtered to a region
and a year, into one labels frame, with a line per source on what was removed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agbm.data.gedi import MIN_SENSITIVITY, read_l4a
from agbm.data.labels import (
    LABELS_CRS,
    PLOT_RADIUS_M,
    describe_removed,
    geopandas,
    read_plots,
    within,
)
from agbm.extras import require


def collect(
    gedi: Sequence[Path] = (),
    plots: Sequence[Path] = (),
    area: Any | None = None,
    year: int | None = None,
    min_sensitivity: float = MIN_SENSITIVITY,
    plot_radius_m: float = PLOT_RADIUS_M,
) -> tuple[Any, list[str]]:
    """The labels of GEDI L4A granules and plots files, inside `area` (EPSG:4326) and within
    `year`: one frame, and one line per source on what each filter removed."""
    pandas = require("pandas", "labels")
    frames, lines = [], []
    if gedi:
        found = [read_l4a(path, min_sensitivity) for path in gedi]
        total = sum(n for _, n, _ in found)
        removed: dict[str, int] = {}
        for _, _, counts in found:
            for reason, count in counts.items():
                removed[reason] = removed.get(reason, 0) + count
        frame, outside = within(pandas.concat([f for f, _, _ in found]), area, year)
        lines.append(describe_removed(
            f"GEDI L4A footprints in {len(gedi)} file(s)", total, removed | outside, len(frame)
        ))  # fmt: skip
        frames.append(frame)
    for path in plots:
        frame = read_plots(path, plot_radius_m)
        total = len(frame)
        frame, outside = within(frame, area, year)
        lines.append(describe_removed(f"plots in {Path(path).name}", total, outside, len(frame)))
        frames.append(frame)
    if not frames:
        raise ValueError("give --gedi FILE ..., --download DIR or --plots FILE ...")
    joined = pandas.concat(frames, ignore_index=True)
    return geopandas().GeoDataFrame(joined, geometry="geometry", crs=LABELS_CRS), lines
