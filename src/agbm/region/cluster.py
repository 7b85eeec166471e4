"""The Dask cluster a region's tasks run on, and where each kind of task goes on it.

This machine's cluster (`local_cluster`: one single-threaded worker per core, one per GPU
predicting on it and the others composing) or one already running (`connect`: an address,
or a scheduler file); `client_for` gives a client of either. Tasks are placed by Dask worker
resources (`placement`): when predicting on GPUs, predict tasks need the resource `GPU` and
compose tasks the resource `COMPOSE`. `agbm map-region` (`engine`) and `agbm chips`
(`chips`) both run on it. Light to import: each local worker preloads this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from agbm.errors import ConfigError, reason
from agbm.extras import require

#: The Dask worker resources that place tasks: a worker with `GPU` predicts on its GPU (and
#: does nothing else), a worker with `COMPOSE` composes.
GPU, COMPOSE = "GPU", "COMPOSE"
#: `--predict-on`: on `GPU` workers when any is connected at the start (`auto`), always
#: (`gpu`: they may join later, as batch jobs do), or on any worker (`any`).
PREDICT_ON = ("auto", "gpu", "any")
#: Each local worker's GDAL block cache, MB. GDAL's default, 5 % of the machine's memory
#: per process, adds up to most of it over one worker per core; 256 MB costs a predict task
#: no time and saves ~0.5 GB of its peak (bench/region.py, docs/benchmarks.md).
GDAL_CACHE_MB = 256


def worker_specs(cores: int, gpus: int, memory: int) -> dict[str, dict[str, Any]]:
    """The workers of this machine's cluster, as `distributed.SpecCluster` specs: one
    single-threaded worker per core (torch and GDAL keep to one thread in each, as Dask
    sets; a GDAL block cache of `GDAL_CACHE_MB` each), of which one per GPU predicts on it
    (`CUDA_VISIBLE_DEVICES`, resource `GPU`) and the others compose (resource `COMPOSE`, no
    GPU); with no GPU every worker does either. `memory` (bytes) is shared evenly: each
    worker's limit. Each worker keeps Dask's log to itself (its INFO lines at start, a
    "Compute Failed" per try of a failed task, its warnings at Ctrl-C: the run reports each
    failed tile once, with its cause) and runs `dask_setup`."""
    nanny = require("distributed", "region").Nanny
    count = max(1, cores - gpus) + gpus
    limit = memory // count

    def spec(resources: dict[str, int] | None, devices: str | None) -> dict[str, Any]:
        env = {"GDAL_CACHEMAX": str(GDAL_CACHE_MB)}
        env |= {} if devices is None else {"CUDA_VISIBLE_DEVICES": devices}
        options = {"nthreads": 1, "memory_limit": limit, "resources": resources, "env": env}
        options |= {"silence_logs": logging.CRITICAL, "preload": [__name__]}
        return {"cls": nanny, "options": options}

    if not gpus:
        return {f"cpu-{n}": spec(None, None) for n in range(count)}
    specs = {f"compose-{n}": spec({COMPOSE: 1}, "") for n in range(count - gpus)}
    return specs | {f"gpu-{n}": spec({GPU: 1}, str(n)) for n in range(gpus)}


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process of `local_cluster` as it starts (its
    `preload` is this module): the worker ignores Ctrl-C, which a terminal sends to every
    process of the run, so that the run alone stops and closes the cluster, instead of each
    worker printing its own KeyboardInterrupt traceback."""
    del worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def local_cluster() -> Any:
    """A cluster of this machine (`worker_specs` of its cores, GPUs and memory): what
    `distributed.LocalCluster` is, with the compose and predict workers told apart."""
    import torch  # here, not in the workers that preload this module

    distributed = require("distributed", "region")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    specs = worker_specs(cores or 1, torch.cuda.device_count(), distributed.system.MEMORY_LIMIT)
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0"}}
    return distributed.SpecCluster(specs, scheduler, silence_logs=logging.ERROR)


@contextlib.contextmanager
def local_client() -> Iterator[Any]:
    """A client of `local_cluster()`, which goes with it. Ctrl-C closes both without a word
    from Dask (its warnings on workers stopped while busy): the command's one line on what
    is kept says it all."""
    distributed = require("distributed", "region")
    logger = logging.getLogger("distributed")
    level = logger.level
    try:
        with local_cluster() as cluster, distributed.Client(cluster) as client:
            try:
                yield client
            except KeyboardInterrupt:
                logger.setLevel(logging.CRITICAL)  # while the cluster closes
                raise
    finally:
        logger.setLevel(level)


def scheduler_address(scheduler: str) -> str:
    """The address `--scheduler` names: an address as it is, or the one in a scheduler file
    (`dask scheduler --scheduler-file`'s JSON); a folder, or a file that is not one, is a
    one-line `ConfigError` naming it."""
    path = Path(scheduler)
    if path.is_dir():
        raise ConfigError(
            f"`scheduler` {scheduler}: a folder, not a scheduler file or address (tcp://HOST:PORT)"
        )
    if not path.is_file():
        return scheduler
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # unreadable, not text, not JSON
        raise ConfigError(f"`scheduler` {scheduler}: not a Dask scheduler file ({exc})") from None
    address = record.get("address") if isinstance(record, dict) else None
    if not isinstance(address, str):
        raise ConfigError(
            f'`scheduler` {scheduler}: not a Dask scheduler file (it has no "address")'
        )
    return address


def connect(scheduler: str) -> Any:
    """A Dask client of the running cluster `--scheduler` names (`scheduler_address`); an
    address that is none, or no scheduler answering, is a one-line `ConfigError`."""
    distributed = require("distributed", "region")
    address = scheduler_address(scheduler)
    try:
        return distributed.Client(address)
    except ValueError as exc:  # "missing port number in address", an unknown protocol
        raise ConfigError(
            f"`scheduler` {scheduler}: neither a scheduler file nor an address "
            f"tcp://HOST:PORT ({reason(exc)})"
        ) from None
    except OSError as exc:  # refused, timed out
        raise ConfigError(f"`scheduler` {scheduler}: no scheduler answers at {address} "
                          f"({reason(exc)})") from None  # fmt: skip


@contextlib.contextmanager
def client_for(scheduler: str | None) -> Iterator[Any]:
    """A Dask client: of the cluster at `scheduler` (an address, or a scheduler file's path:
    `connect`), or of `local_cluster()`, which goes with the client (`local_client`)."""
    if scheduler is None:
        with local_client() as client:
            yield client
        return
    with connect(scheduler) as client:
        yield client


def placement(
    workers: Iterable[Mapping[str, float]], predict_on: str = "auto"
) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    """The Dask resources compose and predict tasks ask for, given the connected workers'
    declared resources and `--predict-on` (`PREDICT_ON`): `COMPOSE` and `GPU` when
    predicting on GPU workers, else none (any worker runs either)."""
    if predict_on not in PREDICT_ON:
        raise ValueError(f"`predict_on` must be one of {', '.join(PREDICT_ON)}, not {predict_on}")
    on_gpu = predict_on == "gpu" or (predict_on == "auto" and any(GPU in w for w in workers))
    return ({COMPOSE: 1}, {GPU: 1}) if on_gpu else (None, None)


def worker_resources(client: Any) -> list[dict[str, float]]:
    """The resources each connected worker declares."""
    return [w.get("resources", {}) for w in client.scheduler_info()["workers"].values()]
