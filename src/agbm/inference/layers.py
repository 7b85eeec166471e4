"""What a map holds: its bands (the AGBM, the calibrated bounds, the members' spread) and
the tags that say what made it, written by the map writers and read back by `map_model`.

`InferenceOptions.layers` decides a run's `MapLayers`; the writers (`scene`, `chips`, the
region's tiles and mosaic) only follow them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from agbm.data.calendar import YEAR_TAG, tagged_year
from agbm.data.geotiff import open_map
from agbm.errors import warn

#: The map's band name and tags: what a GIS shows of it.
MAP_BAND = "AGBM (t/ha)"
MAP_TAGS = {"AGBM_UNITS": "above-ground biomass, t/ha; NaN = no observation in any month"}
#: The bands a map with calibrated bounds has after its first, and the spread's band.
BOUND_BANDS = ("lower bound (t/ha)", "upper bound (t/ha)")
SPREAD_BAND = "spread between members (t/ha)"
#: The tags naming the model that made a map: its checkpoints' SHA-256 (comma-separated)
#: and TTA, which `agbm stats` checks against a calibration.
CHECKPOINTS_TAG, TTA_TAG = "AGBM_CHECKPOINTS", "AGBM_TTA"

#: A map's calibrated bounds: AGBM `[h, w]` -> (low, high) `[h, w]` (`Calibration.bounds`).
Bounds = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MapLayers:
    """What a map holds besides its AGBM (band 1): the calibrated `bounds` (bands 2-3) when
    there are, then the members' `spread` when asked (the last band), and the `tags` that
    say what made it (beside `MAP_TAGS`, which every map has: `map_tags`), and the `note`
    for the user of what the bounds cannot give (`Calibration.pixel_note`), if any."""

    bounds: Bounds | None = None
    spread: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None

    def warn(self) -> None:
        """Warn of the `note`, once per command, before the work."""
        if self.note:
            warn(self.note)

    def of_year(self, year: int | None) -> MapLayers:
        """These layers with the imagery's `year` in the tags (`YEAR_TAG`, which `agbm
        change` reads), or as they are when the year is not known."""
        if year is None:
            return self
        return replace(self, tags={**self.tags, YEAR_TAG: str(year)})

    def map_tags(self) -> dict[str, str]:
        """Every tag the map carries."""
        return {**MAP_TAGS, **self.tags}

    def check(self, pred: np.ndarray) -> None:
        """Refuse a predictor's layers `[layers, h, w]` that are not these layers' (the
        spread without a predictor giving it would be the AGBM again, silently)."""
        if len(pred) != 1 + self.spread:
            raise ValueError(
                f"the predictor gives {len(pred)} layer(s), the map needs {1 + self.spread}: "
                "make it with spread=layers.spread"
            )

    def bands(self) -> list[str]:
        """The names of `stack`'s bands."""
        bounds = BOUND_BANDS if self.bounds is not None else ()
        return [MAP_BAND, *bounds, *([SPREAD_BAND] if self.spread else [])]

    def stack(self, pred: np.ndarray) -> np.ndarray:
        """`[bands, h, w]` of a map from the predictor's `[layers, h, w]` (AGBM, and the
        spread when asked)."""
        bounds = self.bounds(pred[0]) if self.bounds is not None else ()
        return np.stack([pred[0], *bounds, *(pred[1:2] if self.spread else ())])


def map_model(path: Path | str) -> tuple[list[str], str] | None:
    """(checkpoints' SHA-256, TTA) of the model that made the map at `path`, from its tags;
    None for a map without them (made by another program); a one-line `DataError` for a
    file that is not a map."""
    with open_map(path) as src:
        tags = src.tags()
    if CHECKPOINTS_TAG not in tags or TTA_TAG not in tags:
        return None
    return tags[CHECKPOINTS_TAG].split(","), tags[TTA_TAG]


def map_year(path: Path | str) -> int | None:
    """The year of the imagery the map at `path` was made from (its `YEAR_TAG`), None for a
    map without it; a one-line `DataError` for a file that is not a map."""
    with open_map(path) as src:
        return tagged_year(src.tags(), path)
