"""One Dask cluster for the region tests that do not test the local default itself: each
cluster start spawns two worker processes that import torch, seconds every time."""

from __future__ import annotations

from collections.abc import Iterator

import distributed
import pytest


@pytest.fixture(scope="session")
def scheduler() -> Iterator[str]:
    """The address of a running two-worker cluster of this machine (`--scheduler`)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        yield c.scheduler_address
