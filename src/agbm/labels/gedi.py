"""GEDI L4A footprints (version 2.1, ORNL DAAC, DOI 10.3334/ORNLDAAC/2056) as labels.

A granule is an HDF5 file with one group per beam (`BEAM0000` ... `BEAM1011`), each holding
one value per footprint: `agbd` and `agbd_se` (Mg/ha = t/ha, float32), `lat_lowestmode` and
`lon_lowestmode` (degrees, float64), `l4_quality_flag` and `degrade_flag` (uint8),
`sensitivity` (float32) and `delta_time` (float64, seconds since 2018-01-01 00:00 UTC),
with -9999 as the fill value (the ORNL DAAC user guide's names and types).

Kept by default, as the user guide recommends: `l4_quality_flag == 1`, `degrade_flag == 0`,
`sensitivity >= 0.9`, no fill value, and no value a label cannot have (an agbd NaN or
negative, a position off the globe, a NaN `delta_time`: each removed and counted). The
quality filters are the user's (`GediFilters`: `--keep-low-quality`, `--keep-degraded`,
`--min-sensitivity`), since the right filtering differs by region: in some granules every
shot that passes `l4_quality_flag` has a non-zero `degrade_flag`. The footprint is a 25 m
disc (radius 12.5 m).

Version 2 (DOI 10.3334/ORNLDAAC/1986) and 2.1 granules (both named `GEDI04_A_..._V002.h5`)
hold these datasets at the same place, each beam's root, and both are read alike.
`download` fetches granules from NASA Earthdata through earthaccess (needs a login).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agbm.data.calendar import year_span
from agbm.errors import DataError
from agbm.extras import require
from agbm.labels.frame import Filtered, labels_frame

#: The datasets read from each beam.
FIELDS = (
    "agbd", "agbd_se", "lat_lowestmode", "lon_lowestmode", "l4_quality_flag", "degrade_flag",
    "sensitivity", "delta_time",
)  # fmt: skip
FILL = -9999.0
RADIUS_M = 12.5
#: `delta_time`'s epoch.
EPOCH = dt.datetime(2018, 1, 1, tzinfo=dt.timezone.utc)
#: The L4A v2.1 collection's DOI, what earthaccess searches by.
DOI = "10.3334/ORNLDAAC/2056"
#: The default `sensitivity` threshold (`--min-sensitivity`).
MIN_SENSITIVITY = 0.9


@dataclass(frozen=True)
class GediFilters:
    """The quality filters `read_l4a` applies, each a flag of `agbm labels`: the user
    guide's by default. `min_sensitivity` (0 to 1; 0 keeps any) is the lowest `sensitivity`
    kept; `keep_degraded` keeps footprints with a non-zero `degrade_flag`;
    `keep_low_quality` those with `l4_quality_flag` 0."""

    min_sensitivity: float = MIN_SENSITIVITY
    keep_degraded: bool = False
    keep_low_quality: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_sensitivity <= 1:  # NaN too
            raise ValueError(
                f"`min_sensitivity` {self.min_sensitivity}: give a sensitivity from 0 to 1"
            )


def _beams(path: Path) -> dict[str, np.ndarray]:
    """Every beam's `FIELDS`, concatenated; a file that is not an L4A granule is a one-line
    `DataError` naming it."""
    h5py = require("h5py", "labels")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not an HDF5 file ({exc})") from None
    with h5:
        beams = [h5[name] for name in sorted(h5) if name.startswith("BEAM")]
        usable = [b for b in beams if all(f in b for f in FIELDS)]
        if not usable:
            raise DataError(
                f"{path}: not a GEDI L4A granule (no BEAMxxxx group with {', '.join(FIELDS)})"
            )
        return {f: np.concatenate([b[f][()] for b in usable]) for f in FIELDS}


def _tests(
    beams: dict[str, np.ndarray], filters: GediFilters
) -> list[tuple[str, np.ndarray, str | None]]:
    """(reason, which footprints pass, the parameter that keeps those it removes) of each test,
    in order: the values no label can have, then the user's filters that are on."""
    fields = ("agbd", "agbd_se", "lat_lowestmode", "lon_lowestmode")
    lat, lon = beams["lat_lowestmode"], beams["lon_lowestmode"]
    tests = [
        ("fill values", np.all([beams[f] != FILL for f in fields], axis=0), None),
        ("agbd NaN or negative", beams["agbd"] >= 0, None),
        ("no position", (np.abs(lat) <= 90) & (np.abs(lon) <= 180), None),
        ("delta_time NaN", np.isfinite(beams["delta_time"]), None),
    ]
    if not filters.keep_low_quality:
        tests.append(("l4_quality_flag != 1", beams["l4_quality_flag"] == 1, "`keep_low_quality`"))
    if not filters.keep_degraded:
        tests.append(("degrade_flag != 0", beams["degrade_flag"] == 0, "`keep_degraded`"))
    if filters.min_sensitivity > 0:
        tests.append((
            f"sensitivity < {filters.min_sensitivity}",
            beams["sensitivity"] >= filters.min_sensitivity,
            "a lower `min_sensitivity`",
        ))  # fmt: skip
    return tests


def read_l4a(path: Path | str, filters: GediFilters | None = None) -> Filtered:
    """One granule's footprints that pass the `filters` (module docstring), as labels; with
    the number of footprints read, how many each filter removed, in order, and its flag."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such GEDI file")
    beams = _beams(path)
    keep = np.ones(len(beams["agbd"]), bool)
    removed, flags = {}, {}
    for reason, passes, flag in _tests(beams, filters or GediFilters()):
        removed[reason] = int((keep & ~passes).sum())
        keep &= passes
        if flag:
            flags[reason] = flag
    seconds = beams["delta_time"][keep]
    epoch = np.datetime64(EPOCH.replace(tzinfo=None), "ns")
    when = epoch + (seconds * 1e9).astype("timedelta64[ns]")
    frame = labels_frame(
        beams["lon_lowestmode"][keep],
        beams["lat_lowestmode"][keep],
        beams["agbd"][keep],
        beams["agbd_se"][keep],
        RADIUS_M,
        when,
        f"gedi-l4a:{path.name}",
    )
    return Filtered(frame, len(keep), removed, flags)


def download(
    folder: Path | str, bounds: Sequence[float], year: int, earthaccess: Any = None
) -> list[Path]:
    """The L4A granules over `bounds` (W S E N, degrees) within `year`'s 12 months, from
    NASA Earthdata into `folder` (earthaccess: its login is a ~/.netrc, the environment
    variables EARTHDATA_USERNAME and EARTHDATA_PASSWORD, or a prompt); returns their paths.
    Granules already in `folder` are not fetched again (earthaccess skips them)."""
    earthaccess = earthaccess or require("earthaccess", "gedi")
    start, end = year_span(year)
    earthaccess.login()
    granules = earthaccess.search_data(
        doi=DOI,
        bounding_box=tuple(float(b) for b in bounds),
        temporal=(start.isoformat(), (end - dt.timedelta(seconds=1)).isoformat()),
    )
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in earthaccess.download(granules, str(folder))]
