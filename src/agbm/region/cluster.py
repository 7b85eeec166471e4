"""The Dask cluster a region's tasks run on, and where each kind of task goes on it.

This machine's cluster (`local_cluster`: workers that compose, single-threaded, and workers
that predict, one per GPU or, with none, one using the cores the composers leave) or one
already running (`connect`: an address, or a scheduler file); `client_for` gives a client of
either. Tasks are placed by Dask worker resources (`placement`): predict tasks need the
resource `GPU` (or `PREDICT`, a CPU predict worker) and compose tasks the resource
`COMPOSE`, so that a compose worker never loads torch. `agbm map-region` (`engine`) and
`agbm chips` (`chips`, compose workers only) both run on it. Light to import: each local
worker preloads this module.
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

from agbm.errors import ConfigError, reason, warn
from agbm.extras import require

#: The Dask worker resources that place tasks: a worker with `GPU` predicts on its GPU, one
#: with `PREDICT` on the CPU (each does nothing else), a worker with `COMPOSE` composes.
GPU, PREDICT, COMPOSE = "GPU", "PREDICT", "COMPOSE"
#: `--predict-on`: on `GPU` workers when any is connected at the start, else on `PREDICT`
#: workers when any is (`auto`); on `GPU` workers always (`gpu`: they may join later, as
#: batch jobs do); or on any worker (`any`).
PREDICT_ON = ("auto", "gpu", "any")
#: Each local worker's GDAL block cache, MB. GDAL's default, 5 % of the machine's memory
#: per process, adds up to most of it over one worker per core; 256 MB costs a predict task
#: no time and saves ~0.5 GB of its peak (bench/region.py, docs/benchmarks.md).
GDAL_CACHE_MB = 256


def composers(cores: int) -> int:
    """How many compose workers a machine of `cores` cores and no GPU runs beside its one
    CPU predict worker, whose torch threads use every core: a quarter of the cores (at
    least one). Composing waits on the catalog's files more than on the CPU, and the model,
    most of a CPU run's time, is then the work (one copy of the models, not one per core;
    measured in bench/region.py: with its threads on the composers' cores too, a 2-core
    machine predicts on both once the first tiles are composed)."""
    return max(1, cores // 4)


def thread_env(threads: int) -> dict[str, str]:
    """The environment that gives a worker's torch `threads` threads: Dask sets all three
    of these to 1 for its workers, and torch takes `MKL_NUM_THREADS` over `OMP_NUM_THREADS`
    (measured: with only the latter, a worker's torch kept to one thread)."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return dict.fromkeys(names, str(threads))


def worker_specs(
    cores: int, gpus: int, memory: int, *, predicting: bool = True
) -> dict[str, dict[str, Any]]:
    """The workers of this machine's cluster, as `distributed.SpecCluster` specs. Compose
    workers are single-threaded (GDAL keeps to one thread in each, as Dask sets; a GDAL
    block cache of `GDAL_CACHE_MB` each; resource `COMPOSE`, no GPU). With `gpus`, one
    worker per GPU predicts on it (`CUDA_VISIBLE_DEVICES`, resource `GPU`) and the other
    cores compose; with none, `composers(cores)` compose and one worker predicts (resource
    `PREDICT`) with torch's threads on every core (`thread_env`); not `predicting`
    (`agbm chips`), every core composes. `memory` (bytes) is shared by threads: each
    worker's limit. Each worker keeps Dask's log to itself (its INFO lines at start, a
    "Compute Failed" per try of a failed task, its warnings at Ctrl-C: the run reports each
    failed tile once, with its cause) and runs `dask_setup`."""
    nanny = require("distributed", "region").Nanny
    if not predicting:
        composing, predictors = max(1, cores), {}
    elif gpus:
        composing = max(1, cores - gpus)
        predictors = {
            f"gpu-{n}": ({GPU: 1}, {"CUDA_VISIBLE_DEVICES": str(n)}, 1) for n in range(gpus)
        }
    else:
        composing, threads = composers(cores), max(1, cores)
        predictors = {"predict-0": ({PREDICT: 1}, thread_env(threads), threads)}
    share = memory // (composing + sum(threads for *_, threads in predictors.values()))

    def spec(resources: dict[str, int], env: dict[str, str], threads: int) -> dict[str, Any]:
        env = {"GDAL_CACHEMAX": str(GDAL_CACHE_MB)} | env
        options = {"nthreads": 1, "memory_limit": share * threads, "resources": resources}
        options |= {"env": env, "silence_logs": logging.CRITICAL, "preload": [__name__]}
        return {"cls": nanny, "options": options}

    compose = ({COMPOSE: 1}, {"CUDA_VISIBLE_DEVICES": ""}, 1)
    specs = {f"compose-{n}": spec(*compose) for n in range(composing)}
    return specs | {name: spec(*predictor) for name, predictor in predictors.items()}


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process of `local_cluster` as it starts (its
    `preload` is this module): the worker ignores Ctrl-C, which a terminal sends to every
    process of the run, so that the run alone stops and closes the cluster, instead of each
    worker printing its own KeyboardInterrupt traceback."""
    del worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def local_cluster(predicting: bool = True) -> Any:
    """A cluster of this machine (`worker_specs` of its cores, GPUs and memory; with
    `predicting`, its predict workers): what `distributed.LocalCluster` is, with the compose
    and predict workers told apart."""
    distributed = require("distributed", "region")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = _gpu_count() if predicting else 0
    memory = distributed.system.MEMORY_LIMIT
    specs = worker_specs(cores or 1, gpus, memory, predicting=predicting)
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0"}}
    return distributed.SpecCluster(specs, scheduler, silence_logs=logging.ERROR)


def _gpu_count() -> int:
    """How many GPUs torch sees here: imported here, on the machine that runs the command,
    not in the workers that preload this module."""
    import torch

    return torch.cuda.device_count()


@contextlib.contextmanager
def local_client(predicting: bool = True) -> Iterator[Any]:
    """A client of `local_cluster(predicting)`, which goes with it. Ctrl-C closes both
    without a word from Dask (its warnings on workers stopped while busy): the command's
    one line on what is kept says it all."""
    distributed = require("distributed", "region")
    logger = logging.getLogger("distributed")
    level = logger.level
    try:
        with local_cluster(predicting) as cluster, distributed.Client(cluster) as client:
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
def client_for(scheduler: str | None, *, predicting: bool = True) -> Iterator[Any]:
    """A Dask client: of the cluster at `scheduler` (an address, or a scheduler file's path:
    `connect`), or of `local_cluster(predicting)`, which goes with the client
    (`local_client`; `predicting`: with predict workers, else compose workers only)."""
    if scheduler is None:
        with local_client(predicting) as client:
            yield client
        return
    with connect(scheduler) as client:
        yield client


def placement(
    workers: Iterable[Mapping[str, float]], predict_on: str = "auto"
) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    """The Dask resources compose and predict tasks ask for, given the connected workers'
    declared resources and `predict_on` (`PREDICT_ON`): `COMPOSE`, and `GPU` or `PREDICT`,
    when predicting on such workers; else none (any worker runs either)."""
    if predict_on not in PREDICT_ON:
        raise ValueError(f"`predict_on` must be one of {', '.join(PREDICT_ON)}, not {predict_on}")
    workers = list(workers)
    if predict_on == "gpu" or (predict_on == "auto" and any(GPU in w for w in workers)):
        return {COMPOSE: 1}, {GPU: 1}
    if predict_on == "auto" and any(PREDICT in w for w in workers):
        return {COMPOSE: 1}, {PREDICT: 1}
    return None, None


def warn_without_composers(
    workers: Iterable[Mapping[str, float]], compose_on: Mapping[str, int] | None
) -> None:
    """Warn when compose tasks ask for `compose_on` (`placement`'s) and no connected worker
    (`workers`' declared resources) declares it yet: the run is not stuck, its tiles wait."""
    if compose_on and not any(COMPOSE in w for w in workers):
        warn(f"no worker declares the resource {COMPOSE} yet: the tiles wait for one")


def worker_resources(client: Any) -> list[dict[str, float]]:
    """The resources each connected worker declares."""
    return [w.get("resources", {}) for w in client.scheduler_info()["workers"].values()]
