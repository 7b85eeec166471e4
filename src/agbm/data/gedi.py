"""GEDI L4A footprints (version 2.1, ORNL DAAC, DOI 10.3334/ORNLDAAC/2056) as labels.

A granule is an HDF5 file with one group per beam (`BEAM0000` ... `BEAM1011`), each holding
one value per footprint: `agbd` and `agbd_se` (Mg/ha = t/ha, float32), `lat_lowestmode` and
`lon_lowestmode` (degrees, float64), `l4_quality_flag` and `degrade_flag` (uint8),
`sensitivity` (float32) and `delta_time` (float64, seconds since 2018-01-01 00:00 UTC),
with -9999 as the fill value (the ORNL DAAC user guide's names and types).

Kept by default, as the user guide recommends: `l4_quality_flag == 1`, `degrade_flag == 0`,
`sensitivity >= 0.9`, and no fill value. The footprint is a 25 m disc (radius 12.5 m).
`download` fetches granules from NASA Earthdata through earthaccess (needs a login).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agbm.data.calendar import year_span
from agbm.data.labels import Filtered, labels_frame
from agbm.errors import DataError
from agbm.extras import require

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


def read_l4a(path: Path | str, min_sensitivity: float = MIN_SENSITIVITY) -> Filtered:
    """One granule's footprints that pass the filters (module docstring), as labels; with
    the number of footprints read and how many each filter removed, in order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such GEDI file")
    beams = _beams(path)
    keep = np.ones(len(beams["agbd"]), bool)
    removed = {}
    tests = {
        "fill values": np.all(
            [beams[f] != FILL for f in ("agbd", "agbd_se", "lat_lowestmode", "lon_lowestmode")],
            axis=0,
        ),
        "l4_quality_flag != 1": beams["l4_quality_flag"] == 1,
        "degrade_flag != 0": beams["degrade_flag"] == 0,
        f"sensitivity < {min_sensitivity}": beams["sensitivity"] >= min_sensitivity,
    }
    for name, passes in tests.items():
        removed[name] = int((keep & ~passes).sum())
        keep &= passes
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
    return Filtered(frame, len(keep), removed)


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
