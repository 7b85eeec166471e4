"""A small GEDI L4A v2.1 granule in the real layout (ORNL DAAC user guide): one group per
beam with the footprint datasets in their real types, -9999 fill values, and the
`ANCILLARY` and `METADATA` groups a real granule also has."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np

#: One footprint per row: beam, lon, lat, agbd, agbd_se, quality, degrade, sensitivity,
#: seconds since 2018-01-01 UTC.
MARCH_2021 = (dt.datetime(2021, 3, 1) - dt.datetime(2018, 1, 1)).total_seconds()
FOOTPRINTS = [
    ("BEAM0000", 27.01, 61.31, 120.5, 15.0, 1, 0, 0.95, MARCH_2021),  # kept
    ("BEAM0000", 27.02, 61.32, 80.0, 10.0, 1, 0, 0.97, MARCH_2021 + 1),  # kept
    ("BEAM0000", 27.03, 61.33, -9999.0, -9999.0, 1, 0, 0.95, MARCH_2021),  # fill
    ("BEAM0101", 27.04, 61.34, 60.0, 9.0, 0, 0, 0.95, MARCH_2021),  # quality flag
    ("BEAM0101", 27.05, 61.35, 60.0, 9.0, 1, 1, 0.95, MARCH_2021),  # degraded
    ("BEAM0101", 27.06, 61.36, 60.0, 9.0, 1, 0, 0.85, MARCH_2021),  # low sensitivity
    ("BEAM1011", 27.07, 61.37, 200.25, 30.0, 1, 0, 0.99, MARCH_2021 + 86_400),  # kept
    ("BEAM1011", 29.50, 61.37, 50.0, 5.0, 1, 0, 0.99, MARCH_2021),  # outside the region
    ("BEAM1011", 27.08, 61.38, 50.0, 5.0, 1, 0, 0.99, MARCH_2021 + 365 * 86_400),  # 2022
]
KEPT = [0, 1, 6]
TYPES = {
    "lon_lowestmode": np.float64, "lat_lowestmode": np.float64, "agbd": np.float32,
    "agbd_se": np.float32, "l4_quality_flag": np.uint8, "degrade_flag": np.uint8,
    "sensitivity": np.float32, "delta_time": np.float64,
}  # fmt: skip


def write_l4a(path: Path, footprints: list[tuple] = FOOTPRINTS) -> Path:
    with h5py.File(path, "w") as h5:
        h5.create_group("ANCILLARY")
        h5.create_group("METADATA").attrs["shortName"] = "GEDI_L4A"
        for beam in sorted({f[0] for f in footprints}):
            group = h5.create_group(beam)
            rows = [f[1:] for f in footprints if f[0] == beam]
            for k, (name, dtype) in enumerate(TYPES.items()):
                group.create_dataset(name, data=np.array([r[k] for r in rows], dtype))
            group.create_dataset("shot_number", data=np.arange(len(rows), dtype=np.uint64))
    return path
