"""`agbm labels`' sources joined: GEDI L4A granules and plots files, filtered to a region
and a year, into one labels frame, with a line per source on what was removed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agbm.extras import require
from agbm.labels.frame import LABELS_CRS, Filtered, describe_removed, geopandas, within
from agbm.labels.gedi import GediFilters, read_l4a
from agbm.labels.plots import PlotTable, read_plots


def merged(found: Sequence[Filtered]) -> Filtered:
    """Several sources' labels as one: their frames joined, their counts summed."""
    pandas = require("pandas", "labels")
    removed: dict[str, int] = {}
    for part in found:
        for reason, count in part.removed.items():
            removed[reason] = removed.get(reason, 0) + count
    flags = {reason: flag for part in found for reason, flag in part.flags.items()}
    frame = pandas.concat([part.frame for part in found])
    return Filtered(frame, sum(part.total for part in found), removed, flags)


def read_all_plots(plots: Sequence[Path], plot_table: PlotTable | None = None) -> dict:
    """Each plots file's plots (`read_plots`, as `plot_table` says), by path: read, and so
    checked, before any GEDI granule is fetched."""
    return {Path(path): read_plots(path, plot_table) for path in plots}


def collect(
    gedi: Sequence[Path] = (),
    plots: Mapping[Path, Filtered] | None = None,
    area: Any | None = None,
    year: int | None = None,
    gedi_filters: GediFilters | None = None,
) -> tuple[Any, list[str]]:
    """The labels of GEDI L4A granules (kept by `gedi_filters`) and plots files (their
    `read_all_plots`), inside `area` (EPSG:4326) and within `year`: one frame, and one line
    per source on what each filter removed."""
    pandas = require("pandas", "labels")
    frames, lines = [], []
    if gedi:
        found = within(merged([read_l4a(path, gedi_filters) for path in gedi]), area, year)
        lines.append(describe_removed(f"GEDI L4A footprints in {len(gedi)} file(s)", found))
        frames.append(found.frame)
    for path, read in (plots or {}).items():
        found = within(read, area, year)
        lines.append(describe_removed(f"plots in {path.name}", found))
        frames.append(found.frame)
    if not frames:
        raise ValueError("give `gedi` (files), `download` (a folder) or `plots` (files)")
    joined = pandas.concat(frames, ignore_index=True)
    return geopandas().GeoDataFrame(joined, geometry="geometry", crs=LABELS_CRS), lines
