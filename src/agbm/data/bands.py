"""The sensors' facts: months, bands, dtypes, no-data values and the fixed normalisation
constants. Plain NumPy: what a model makes of them lives in `conventions` and `normalise`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MONTHS = 12
#: The chips' pixel size, in metres (the challenge's): every grid agbm makes keeps it.
PIXEL_M = 10.0


#: Month names in file order: the BioMassters year runs September -> August.
MONTH_NAMES = (
    "September",
    "October",
    "November",
    "December",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
)


S1_BANDS = ("VV_asc", "VH_asc", "VV_desc", "VH_desc")


S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12", "CLP")


BANDS = S1_BANDS + S2_BANDS


CHANNELS = len(BANDS)


#: S1 backscatter (dB) is mapped to [0, 1] with the winning solution's fixed per-band range:
#: fixed constants (not per-chip statistics) keep absolute backscatter meaningful across chips.
S1_MIN = np.array([-25.0, -62.0, -25.0, -60.0], dtype=np.float32)


S1_MAX = np.array([29.0, 28.0, 30.0, 22.0], dtype=np.float32)


S1_NODATA = -9999.0


#: S2 reflectance (x 10,000) and cloud probability are divided by the winner's per-band maxima.
S2_MAX = np.array(
    [19616, 18400, 17536, 17097, 16928, 16768, 16593, 16492, 15401, 15226, 255], dtype=np.float32
)


#: Cloud probability 255 marks an S2 pixel without data.
S2_NODATA_CLOUD = 255


@dataclass(frozen=True)
class Sensor:
    """Everything agbm knows of one satellite's monthly images, in one record: what each
    reader, writer and normaliser asks of S1 or S2 (one table, not four in step)."""

    #: "S1" or "S2", as the layout's file names spell it.
    name: str
    #: Band names of one month, in file order.
    bands: tuple[str, ...]
    #: The dtype of its files in the layout; the loaders keep it to the device.
    dtype: np.dtype
    #: The value its files mark missing data with (S1's -9999), or None.
    nodata: float | None
    #: The cloud probability that marks a pixel without data (S2's CLP 255), or None.
    cloud_nodata: int | None
    #: Its first channel among the 15 of the model's input.
    first: int

    @property
    def count(self) -> int:
        """Bands per month."""
        return len(self.bands)

    @property
    def channels(self) -> slice:
        """Its channels among the 15."""
        return slice(self.first, self.first + self.count)

    def observed(self, raw: np.ndarray) -> np.ndarray:
        """bool `[h, w]`: the pixels of a month's image `[bands, h, w]` that hold data: S1
        any band not no-data; S2 cloud probability not 255 and not all bands 0 (stacks often
        fill a missing month with zeros)."""
        if self.cloud_nodata is not None:
            return (raw[-1] != self.cloud_nodata) & raw.any(axis=0)
        return (raw != self.nodata).any(axis=0)


S1 = Sensor("S1", S1_BANDS, np.dtype(np.float32), S1_NODATA, None, 0)


S2 = Sensor("S2", S2_BANDS, np.dtype(np.uint16), None, S2_NODATA_CLOUD, len(S1_BANDS))


#: Both sensors, in channel order.
SENSORS = (S1, S2)
