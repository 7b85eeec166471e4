"""The BioMassters year: 12 months from September (month 00) of `year - 1` to August
(month 11) of `year`, the year every agbm command names. Composing, labels and STAC items
all cut time by it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from agbm.errors import DataError

#: The first year with any Sentinel data: Sentinel-1A's began in October 2014, in the year
#: that runs September 2014 to August 2015 (Sentinel-2A's in June 2015).
FIRST_YEAR = 2015


#: The tag of a file made for one year: agbm's composed stacks and the maps made from them,
#: which `agbm change` and `stats --change` read their years from.
YEAR_TAG = "AGBM_YEAR"


def tagged_year(tags: Mapping[str, str], path: Path | str) -> int | None:
    """The year in a file's `tags` (`YEAR_TAG`), None when it has none, or a one-line
    `DataError` naming the file at `path` when the tag is not a year."""
    if YEAR_TAG not in tags:
        return None
    try:
        return int(tags[YEAR_TAG])
    except ValueError:
        raise DataError(f"{path}: its {YEAR_TAG} tag {tags[YEAR_TAG]!r} is not a year") from None


def check_year(year: int) -> int:
    """`year` as `--year` takes it, or a one-line `ValueError` saying which years there are."""
    if not FIRST_YEAR <= year <= dt.MAXYEAR:
        raise ValueError(
            f"`year` {year}: a year names its months September {year - 1} to August {year}; "
            f"Sentinel-1 data begin in October 2014, so give a year from {FIRST_YEAR}"
        )
    return year


def year_months(year: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """The BioMassters year's 12 months, [start, end) in UTC: September `year - 1` (month 00)
    to August `year` (month 11)."""
    check_year(year)
    starts = [dt.datetime(year - 1 + (m + 8) // 12, (m + 8) % 12 + 1, 1) for m in range(13)]
    return [
        (a.replace(tzinfo=dt.timezone.utc), b.replace(tzinfo=dt.timezone.utc))
        for a, b in zip(starts, starts[1:], strict=False)
    ]


def year_span(year: int) -> tuple[dt.datetime, dt.datetime]:
    """The BioMassters year as one interval [start, end) in UTC: September 1st of
    `year - 1` to September 1st of `year`."""
    months = year_months(year)
    return months[0][0], months[-1][1]
