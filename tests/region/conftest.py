"""What the region tests share: one Dask cluster for those that do not test the local
default itself (each cluster start spawns two worker processes that import torch, seconds
every time), and one small region's catalog and model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import distributed
import pytest

from agbm.models import TemporalUNet, save_model
from bench.catalog import AREA, S1Item, S2Item, build


@pytest.fixture(scope="session")
def scheduler() -> Iterator[str]:
    """The address of a running two-worker cluster of this machine (`--scheduler`)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        yield c.scheduler_address


@pytest.fixture(scope="session")
def small_region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """(static STAC catalog, an untrained tiny model's checkpoint, a bbox two 256 px tiles
    wide): S1 in July 2021 (year 2021) and October 2021 (year 2022 only), S2 in July 2021."""
    root = tmp_path_factory.mktemp("region")
    s1 = [S1Item(dt.date(2021, 7, 2), "ascending", 0.1, 0.01, gradient=True)]
    s1.append(S1Item(dt.date(2021, 10, 2), "ascending", 0.1, 0.01))  # in 2022's year only
    stac = build(root / "stac", s1, [S2Item(dt.date(2021, 7, 20), 3000, 4, gradient=True)])
    save_model(root / "m.pt", TemporalUNet("test_efficientnet", decoder_channels=(16,) * 5))
    west, south, _, north = AREA
    bbox = [west, south, west + 0.05, north]  # 2.7 km wide: two 256 px tiles, one 512 px
    return stac, root / "m.pt", [str(v) for v in bbox]
