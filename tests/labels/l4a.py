"""Small GEDI L4A granules in the real layout, version 2 and 2.1: one group per beam with
the footprint datasets at its root in their real types and units, -9999 fill values, the
`agbd_prediction`, `geolocation` and `land_cover_data` subgroups a beam also has, and the
`ANCILLARY` and `METADATA` groups.

Sources (facts only): the ORNL DAAC L4A user guides; a real V2 granule's DAP4 description
(test.opendap.org, GEDI04_A_2019107224731_O01958_01_T02638_02_002_02_V002.h5: `delta_time`
float64 "Time delta since Jan 1 00:00 2018", `lat_lowestmode`/`lon_lowestmode` float64,
`agbd_se` float32 in "Mg / ha", `algorithm_run_flag` byte, all at the beam's root); GEDI4R's
V2 reader (`degrade_flag`, `l4_quality_flag`, `l2_quality_flag`, `sensitivity`, `agbd`,
`shot_number` at the root, `land_cover_data/pft_class` below it). Versions 2 (DOI
10.3334/ORNLDAAC/1986) and 2.1 (DOI 10.3334/ORNLDAAC/2056) keep these datasets in the same
place; their granules are named alike, `GEDI04_A_{time}_O{orbit}_{sub}_T{track}_02_002_0N_V002`
(`VERSIONS`), and both must read the same.
"""

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
#: As a real 2021 granule over northern Europe: every shot that passes `l4_quality_flag`
#: has a non-zero `degrade_flag` (4, 34, 74); those with `degrade_flag` 0 fail the quality.
DEGRADED = [
    ("BEAM0000", 27.01, 61.31, 120.5, 15.0, 1, 4, 0.95, MARCH_2021),
    ("BEAM0000", 27.02, 61.32, 80.0, 10.0, 1, 34, 0.97, MARCH_2021),
    ("BEAM0101", 27.03, 61.33, 60.0, 9.0, 1, 74, 0.96, MARCH_2021),
    ("BEAM0101", 27.04, 61.34, 0.0, 9.0, 0, 0, 0.40, MARCH_2021),
    ("BEAM1011", 27.05, 61.35, 55.0, 8.0, 0, 0, 0.70, MARCH_2021),
]
#: (the dataset's type, its units) of each footprint dataset written, in `FOOTPRINTS`' order.
TYPES = {
    "lon_lowestmode": (np.float64, "degrees"), "lat_lowestmode": (np.float64, "degrees"),
    "agbd": (np.float32, "Mg / ha"), "agbd_se": (np.float32, "Mg / ha"),
    "l4_quality_flag": (np.uint8, "-"), "degrade_flag": (np.uint8, "-"),
    "sensitivity": (np.float32, "-"), "delta_time": (np.float64, "s"),
}  # fmt: skip
#: Each version's DOI and a granule's name (the PGE version `02_002_01` or `02_002_02`).
VERSIONS = {
    "2": ("10.3334/ORNLDAAC/1986", "GEDI04_A_2020036151358_O06515_02_T00198_02_002_01_V002.h5"),
    "2.1": ("10.3334/ORNLDAAC/2056", "GEDI04_A_2021060101010_O12345_02_T01234_02_002_02_V002.h5"),
}


def write_l4a(path: Path, footprints: list[tuple] = FOOTPRINTS, version: str = "2.1") -> Path:
    """A granule at `path` (a folder: the version's granule name in it) of `footprints`."""
    doi, name = VERSIONS[version]
    path = path / name if path.is_dir() else path
    with h5py.File(path, "w") as h5:
        h5.create_group("ANCILLARY")
        metadata = h5.create_group("METADATA/DatasetIdentification")
        metadata.attrs.update({"shortName": "GEDI_L4A", "DOI": doi, "fileName": path.name})
        for beam in sorted({f[0] for f in footprints}):
            group = h5.create_group(beam)
            rows = [f[1:] for f in footprints if f[0] == beam]
            for k, (field, (dtype, units)) in enumerate(TYPES.items()):
                data = group.create_dataset(field, data=np.array([r[k] for r in rows], dtype))
                data.attrs["units"] = units
            n = len(rows)
            group.create_dataset("shot_number", data=np.arange(n, dtype=np.uint64))
            group.create_dataset("l2_quality_flag", data=np.ones(n, np.uint8))
            group.create_dataset("algorithm_run_flag", data=np.ones(n, np.uint8))
            group.create_dataset("agbd_prediction/agbd_a1", data=np.zeros(n, np.float32))
            group.create_dataset("geolocation/sensitivity_a1", data=np.ones(n, np.float32))
            group.create_dataset("land_cover_data/pft_class", data=np.ones(n, np.uint8))
    return path
