"""Finding the scenes: a STAC catalog (an API or a static catalog), searched by area and month.

The same functions serve the Planetary Computer's STAC API, Earth Search and a static
catalog on disk (`catalog.json`, as the tests build one): `open_catalog` opens any of them
with pystac-client, and `search` asks an API to filter by collection, bbox and dates, or
applies those same filters itself while pystac-client walks a static catalog, which cannot
be queried. The Planetary Computer's asset URLs are signed (planetary-computer) when read.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agbm import extras
from agbm.errors import AgbmError, DataError, reason

PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"
EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
S1_COLLECTION = "sentinel-1-rtc"
S2_COLLECTION = "sentinel-2-l2a"


def require(module: str) -> Any:
    """Import one of the `compose` extra's libraries, or say which extra to install."""
    return extras.require(module, "compose")


@dataclass(frozen=True)
class Catalog:
    """An opened catalog and how its asset URLs are to be read."""

    url: str
    client: Any  # pystac_client.Client
    #: Maps an asset's URL to the one to read (signed on the Planetary Computer).
    patch_url: Callable[[str], str] | None


def catalog_url(catalog: str | Path) -> str:
    """An API's URL as it is; a static catalog's path (or `file://` URL, or its folder) as the
    absolute path of its `catalog.json`: what a Dask worker in another working folder opens,
    and what a run's record compares, whichever way the catalog was named."""
    text = str(catalog)
    if text.startswith(("http://", "https://")):
        return text
    path = Path(os.path.abspath(text.removeprefix("file://")))
    return str(path / "catalog.json" if path.is_dir() else path)


def open_catalog(catalog: str | Path) -> Catalog:
    """Open a STAC API or static catalog; an unreachable or unreadable one is a one-line
    `DataError` naming it."""
    pystac_client = require("pystac_client")
    url = catalog_url(catalog)
    if not url.startswith("http") and not Path(url).is_file():
        raise DataError(f"catalog {catalog}: no such file (a STAC API URL or a catalog.json)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a static catalog declares no API conformance
            client = pystac_client.Client.open(url)
    except Exception as exc:  # requests, pystac and JSON errors alike: the catalog is not usable
        raise DataError(f"catalog {url}: cannot be read ({reason(exc)})") from None
    patch = None
    if url.startswith(PLANETARY_COMPUTER):
        patch = require("planetary_computer").sign
    return Catalog(url, client, patch)


def is_api(catalog: Catalog) -> bool:
    """Whether the catalog answers item searches (an API), rather than being walked."""
    return catalog.client.conforms_to("ITEM_SEARCH")


def overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether two (west, south, east, north) boxes share any area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def search(
    catalog: Catalog,
    collection: str,
    bbox: tuple[float, float, float, float],
    start: dt.datetime,
    end: dt.datetime,
    limit: int | None = None,
) -> list[Any]:
    """The items of `collection` over `bbox` (lon/lat) acquired in [start, end), oldest
    first; only the first `limit` found when given (whether there are any: one item asked
    of an API, a walk that stops at the first match). An API filters them; a static
    catalog is walked and filtered the same way."""
    try:
        if is_api(catalog):
            # STAC intervals include both ends: stop just before the next month starts
            last = end - dt.timedelta(microseconds=1)
            found = catalog.client.search(
                collections=[collection], bbox=list(bbox), datetime=[start, last],
                **({} if limit is None else {"max_items": limit}),
            ).items()  # fmt: skip
        else:
            with warnings.catch_warnings():  # pystac-client: "falling back to pystac"
                warnings.simplefilter("ignore")
                matches = (
                    i
                    for i in catalog.client.get_collection(collection).get_items()
                    if overlaps(tuple(i.bbox), bbox) and start <= i.datetime < end
                )
                found = list(itertools.islice(matches, limit))
        return sorted(found, key=lambda item: (item.datetime, item.id))
    except AgbmError:
        raise
    except Exception as exc:
        raise DataError(
            f"catalog {catalog.url}: search in {collection} failed ({reason(exc)})"
        ) from None


def solar_day(item: Any) -> dt.date:
    """The local solar date of an item's acquisition: its UTC time shifted by the longitude
    of its footprint's centre (15 degrees an hour), as odc-stac's `groupby="solar_day"`. A
    satellite pass over one place lasts minutes, but one that crosses midnight UTC (S1's
    06:00 and 18:00 local passes near +-90 degrees) has two UTC dates and one solar day."""
    west, _, east, _ = item.bbox
    centre = (west + east) / 2 if west <= east else (west + east + 360) / 2  # antimeridian
    lon = (centre + 180) % 360 - 180
    return (item.datetime + dt.timedelta(hours=lon / 15)).date()
