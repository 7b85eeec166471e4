"""`agbm map-region` end to end on a LocalCluster, against a static catalog."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import dask
import distributed
import geopandas
import numpy as np
import psutil
import pystac
import pystac.validation
import pytest
import rasterio
import rasterio.errors
import shapely

from agbm.cli import main
from agbm.errors import AgbmWarning, ConfigError, DataError, TileError
from agbm.inference.layers import SPREAD_BAND
from agbm.io import file_sha256
from agbm.region import cluster, grid_of, tasks
from agbm.region.cluster import placement, warn_without_composers, worker_specs
from tests.helpers import write_calibration

PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"


def _connected(scheduler_file: Path) -> int:
    """How many workers the scheduler of `scheduler_file` has."""
    with distributed.Client(scheduler_file=str(scheduler_file), timeout=30) as client:
        return len(client.scheduler_info()["workers"])


def test_this_machine_s_cluster_has_a_predict_worker_per_gpu_and_composes_on_the_rest() -> None:
    specs = worker_specs(cores=16, gpus=2, memory=64 * 2**30)
    options = {name: spec["options"] for name, spec in specs.items()}
    assert list(options) == [*(f"compose-{n}" for n in range(14)), "gpu-0", "gpu-1"]
    assert all(o["nthreads"] == 1 and o["memory_limit"] == 4 * 2**30 for o in options.values())
    assert options["gpu-1"]["resources"] == {"GPU": 1}
    assert options["gpu-1"]["env"] == {"CUDA_VISIBLE_DEVICES": "1", "GDAL_CACHEMAX": "256"}
    assert options["compose-3"]["resources"] == {"COMPOSE": 1}
    assert options["compose-3"]["env"]["CUDA_VISIBLE_DEVICES"] == ""  # no GPU for compose
    assert sorted(worker_specs(cores=1, gpus=1, memory=2**30)) == ["compose-0", "gpu-0"]


def test_with_no_gpu_one_worker_predicts_on_every_core_beside_the_composers() -> None:
    """16 cores: 4 compose workers and one predict worker of 16 torch threads, the memory
    shared by threads; compose workers never get a predict task, so never load torch."""
    specs = worker_specs(cores=16, gpus=0, memory=20 * 2**30)
    options = {n: s["options"] for n, s in specs.items()}
    assert list(options) == ["compose-0", "compose-1", "compose-2", "compose-3", "predict-0"]
    assert options["predict-0"]["resources"] == {"PREDICT": 1}
    threads = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    assert [options["predict-0"]["env"][name] for name in threads] == ["16"] * 3
    assert options["predict-0"]["memory_limit"] == 16 * 2**30
    assert options["compose-0"]["resources"] == {"COMPOSE": 1}
    assert options["compose-0"]["memory_limit"] == 2**30
    assert "OMP_NUM_THREADS" not in options["compose-0"]["env"]  # Dask's 1
    two = worker_specs(cores=2, gpus=0, memory=2**30)
    assert sorted(two) == ["compose-0", "predict-0"]
    assert two["predict-0"]["options"]["env"]["OMP_NUM_THREADS"] == "2"


def test_agbm_chips_cluster_only_composes() -> None:
    """`agbm chips` predicts nothing: every core composes, GPUs or not."""
    specs = worker_specs(cores=3, gpus=1, memory=3 * 2**30, predicting=False)
    assert list(specs) == ["compose-0", "compose-1", "compose-2"]
    assert all(s["options"]["memory_limit"] == 2**30 for s in specs.values())


def test_tasks_ask_for_predict_and_compose_workers_only_when_some_declare_them() -> None:
    on_gpus = ({"COMPOSE": 1}, {"GPU": 1})
    assert placement([{"COMPOSE": 1}, {"GPU": 1}]) == on_gpus
    assert placement([{"COMPOSE": 1}, {"GPU": 1}, {"PREDICT": 1}]) == on_gpus
    assert placement([{"COMPOSE": 1}, {"PREDICT": 1}]) == ({"COMPOSE": 1}, {"PREDICT": 1})
    assert placement([{"PREDICT": 1}], "any") == (None, None)
    assert placement([{}, {}]) == (None, None)
    assert placement([], "gpu") == on_gpus  # GPU workers that join later, as batch jobs do
    assert placement([{"GPU": 1}], "any") == (None, None)
    with pytest.raises(ValueError, match="`predict_on` must be one of auto, gpu, any"):
        placement([], "cuda")


def test_a_run_whose_compose_workers_have_not_joined_warns_that_its_tiles_wait() -> None:
    with pytest.warns(AgbmWarning, match="no worker declares the resource COMPOSE yet"):
        warn_without_composers([{"GPU": 1}], {"COMPOSE": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_without_composers([{"GPU": 1}, {"COMPOSE": 1}], {"COMPOSE": 1})
        warn_without_composers([{}], None)


def _validate(folder: Path) -> None:
    """The collection and its items against pystac's bundled STAC core schemas (the
    projection extension's schema is online only: its fields are asserted by hand)."""
    for path in [folder / "collection.json", *sorted((folder / "items").glob("*.json"))]:
        stac = json.loads(path.read_text())
        assert stac.pop("stac_extensions", []) in ([], [PROJECTION])
        assert pystac.validation.validate_dict({**stac, "stac_extensions": []})


def read_map(folder: Path, crs: str | None = None) -> np.ndarray:
    with rasterio.open(folder / "agbm.vrt") as src:
        assert crs is None or src.crs.to_string() == crs
        return src.read(1)


def test_a_region_is_mapped_tile_by_tile_resumes_and_refuses_other_settings(
    small_region: tuple[Path, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stac, checkpoint, bbox = small_region
    args = ["map-region", "--bbox", *bbox, "--year", "2021", "--catalog", str(stac)]
    args += ["--checkpoint", str(checkpoint), "--tta", "none", "--window", "64"]
    args += ["--overlap", "16", "--batch-size", "4", "--tile-size", "256", "--crs", "EPSG:3067"]
    out = tmp_path / "small"
    assert main([*args, "--out", str(out)]) == 0
    assert "mapped 2 tile(s), 0 already done, 0 failed" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "tiles").iterdir()) == [
        "r0000_c0000.tif",
        "r0000_c0001.tif",
    ]
    collection = pystac.Collection.from_file(str(out / "collection.json"))
    _validate(out)
    items = sorted(collection.get_items(recursive=True), key=lambda i: i.id)
    assert [i.id for i in items] == ["r0000_c0000", "r0000_c0001"]
    assert (
        items[0].properties["proj:code"] == "EPSG:3067" and items[0].properties["agbm:year"] == 2021
    )
    assert items[0].properties["agbm:inputs"]  # the Sentinel items it was composed from
    with rasterio.open(items[0].assets["agbm"].get_absolute_href()) as src:
        assert src.shape == tuple(items[0].properties["proj:shape"])
    report = json.loads((out / "region.json").read_text())
    assert len(report["tiles"]) == 2 and report["failed"] == {}
    assert main([*args, "--out", str(out)]) == 0  # a rerun skips the tiles done
    assert "mapped 0 tile(s), 2 already done" in capsys.readouterr().out
    mapped = read_map(out, "EPSG:3067")
    assert np.isfinite(mapped).any() and np.isnan(mapped).any()  # data in the catalog's 640 m
    other_year = ["2022" if a == "2021" else a for a in args]
    assert main([*other_year, "--out", str(out)]) == 2
    assert "was made with other settings (year: 2021 -> 2022" in capsys.readouterr().err


def test_a_region_runs_on_a_cluster_already_there(
    small_region: tuple[Path, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """distributed's own command-line tools start a scheduler and two workers on 127.0.0.1,
    one declaring the resource COMPOSE, the other GPU; `--scheduler FILE` runs the same
    graph on them, composing and blending on the first and predicting on the second only
    (on its CPU, as this machine has no GPU)."""
    stac, checkpoint, bbox = small_region
    bin_dir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    common = {"cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", ":0", "--scheduler-file", scheduler_file], **common,
    )  # fmt: skip
    workers = []
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for name, resource in (("composer", "COMPOSE=1"), ("gpu", "GPU=1")):
            workers.append(subprocess.Popen(
                [bin_dir / "dask", "worker", "--scheduler-file", scheduler_file, "--name", name,
                 "--resources", resource, "--nthreads", "1", "--host", "127.0.0.1"], **common,
            ))  # fmt: skip
        args = ["map-region", "--bbox", *bbox, "--year", "2021", "--catalog", str(stac)]
        args += ["--checkpoint", str(checkpoint), "--tta", "none", "--window", "64"]
        args += ["--overlap", "16", "--tile-size", "256", "--scheduler", str(scheduler_file)]
        deadline = time.monotonic() + 60
        while _connected(scheduler_file) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert main([*args, "--out", str(tmp_path / "out")]) == 0
        assert "mapped 2 tile(s)" in capsys.readouterr().out
        assert np.isfinite(read_map(tmp_path / "out")).any()
        tasks = json.loads((tmp_path / "out" / "region.json").read_text())["tasks"]
        assert {t["compose"]["worker"] for t in tasks.values()} == {"composer"}
        predicts = [t["predict"] for t in tasks.values() if "predict" in t]  # tiles owning windows
        assert predicts and {p["worker"] for p in predicts} == {"gpu"}
        assert {t["blend"]["worker"] for t in tasks.values()} == {"composer"}  # no torch there
    finally:
        for process in (*workers, scheduler):
            process.terminate()
        for process in (*workers, scheduler):
            process.wait(timeout=30)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def test_a_run_killed_with_sigkill_is_finished_by_a_rerun_with_no_leftovers(
    small_region: tuple[Path, Path, list[str]], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """kill -9 of the run and every Dask worker once a tile is composed; the rerun maps what
    was lost and leaves no temporary file behind, on this machine's cluster, with not a line
    of Dask's log (its workers' included: `capfd` reads the process's stderr)."""
    stac, checkpoint, bbox = small_region
    args = ["map-region", "--bbox", *bbox, "--year", "2021", "--catalog", str(stac)]
    args += ["--checkpoint", str(checkpoint), "--tta", "none", "--window", "64"]
    args += ["--overlap", "16", "--tile-size", "256", "--out", str(tmp_path / "out")]
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "agbm", *args], start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(out.glob("inputs/tiles/*/S2.tif")) and time.monotonic() < deadline:
        assert run.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    everything = [run.pid, *(c.pid for c in psutil.Process(run.pid).children(recursive=True))]
    for pid in everything:  # the run and its Dask workers, all at once
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run.wait(timeout=30)
    psutil.wait_procs([p for p in map(_process, everything) if p is not None], timeout=30)
    done = len(list(out.glob("tiles/*.tif")))
    assert done < 2
    capfd.readouterr()
    assert main(args) == 0
    printed = capfd.readouterr()
    assert f"mapped {2 - done} tile(s), {done} already done, 0 failed" in printed.out
    assert not [line for line in printed.err.splitlines() if "distributed." in line]
    leftovers = [p for p in out.rglob("*") if re.match(r"^\..+\.tmp\d+$", p.name)]
    assert leftovers == []
    assert np.isfinite(read_map(out)).any()


def test_a_region_with_a_calibration_carries_bounds_and_spread_in_every_tile_and_the_vrt(
    small_region: tuple[Path, Path, list[str]], tmp_path: Path, scheduler: str
) -> None:
    stac, checkpoint, bbox = small_region
    calib = write_calibration(checkpoint, "hv", [10.0] * 7, tmp_path / "calib.json")
    args = ["map-region", "--bbox", *bbox, "--year", "2021", "--catalog", str(stac)]
    args += ["--checkpoint", str(checkpoint), "--tta", "hv", "--window", "64", "--overlap"]
    args += ["16", "--tile-size", "256", "--scheduler", scheduler, "--calibration", str(calib)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    with rasterio.open(tmp_path / "out" / "agbm.vrt") as src:
        assert src.count == 4 and src.descriptions[2:] == ("upper bound (t/ha)", SPREAD_BAND)
        assert src.tags()["AGBM_CHECKPOINTS"] == file_sha256(checkpoint)
        agbm, low, high, spread = src.read()
    seen = np.isfinite(agbm)
    np.testing.assert_allclose(high[seen], agbm[seen] + 10.05, atol=1e-3)
    assert (low[seen] >= 0).all() and np.isnan(low[~seen]).all()
    assert (spread[seen] >= 0).all() and spread[seen].max() > 0 and np.isnan(spread[~seen]).all()
    assert not np.allclose(spread[seen], agbm[seen])
    for tile in (tmp_path / "out" / "tiles").glob("*.tif"):
        with rasterio.open(tile) as src:
            assert src.count == 4 and "calibrated 90% bounds" in src.tags()["AGBM_BOUNDS"]
            assert src.tags()["AGBM_TTA"] == "hv"


def test_relative_paths_reach_the_workers_of_a_cluster_in_another_folder_as_absolute_ones(
    small_region: tuple[Path, Path, list[str]],
    tmp_path: Path,
    scheduler: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The cluster's workers run in the folder the session started in; this run's relative
    --out, --catalog, --checkpoint and --calibration name files of another folder. The
    same files named by absolute paths are the same run."""
    stac, checkpoint, bbox = small_region
    write_calibration(checkpoint, "none", [10.0] * 7, tmp_path / "calib.json")
    monkeypatch.chdir(tmp_path)
    args = ["map-region", "--bbox", *bbox, "--year", "2021", "--tta", "none", "--window", "64"]
    args += ["--catalog", os.path.relpath(stac), "--checkpoint", os.path.relpath(checkpoint)]
    args += ["--calibration", "calib.json", "--overlap", "16", "--tile-size", "256"]
    assert main([*args, "--scheduler", scheduler, "--out", "out"]) == 0
    assert "mapped 2 tile(s), 0 already done, 0 failed" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "tiles").glob("*.tif"))) == 2
    mapped = read_map(tmp_path / "out")
    assert np.isfinite(mapped).any()
    paths = ("--catalog", "--checkpoint", "--calibration")
    args = [str(Path(a).absolute()) if args[i - 1] in paths else a for i, a in enumerate(args)]
    assert main([*args, "--scheduler", scheduler, "--out", str(tmp_path / "out")]) == 0
    assert "mapped 0 tile(s), 2 already done" in capsys.readouterr().out  # the same run


def _empty_region(folder: Path) -> list[str]:
    path = folder / "empty.geojson"
    geopandas.GeoDataFrame(geometry=[shapely.Polygon()], crs="EPSG:4326").to_file(path)
    return ["--region", str(path)]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda _, bbox: ["--bbox", bbox[0], bbox[1], bbox[0], bbox[3]], "has no width"),
        (lambda _, bbox: ["--bbox", bbox[0], bbox[1], str(float(bbox[0]) + 1e-4), bbox[3]],
         "is 42 x 2 pixels of 10 m, under one window (32 pixels, 320 m)"),
        (lambda _, bbox: ["--bbox", "-180", "-80", "180", "80"], "give a --crs whose area"),
        (lambda tmp, _: _empty_region(tmp), "empty.geojson: holds no polygon with an area"),
        (lambda _, bbox: ["--bbox", *bbox, "--year", "3000"],
         "no Sentinel-1 or Sentinel-2 acquisition over [27.0022, 61.3294, 27.0522, 61.333] in "
         "--year 3000 (2999-09-01 to 3000-08-31) in"),
    ],
)  # fmt: skip
def test_degenerate_regions_are_refused_in_one_line_before_the_folder_is_claimed(
    small_region: tuple[Path, Path, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: Callable[[Path, list[str]], list[str]],
    message: str,
) -> None:
    stac, checkpoint, bbox = small_region
    args = ["map-region", *where(tmp_path, bbox), "--catalog", str(stac)]
    args += ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "out")]
    assert main([*args, *([] if "--year" in args else ["--year", "2021"])]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert message in line
    assert not (tmp_path / "out").exists()


def test_a_failed_tile_reaches_the_client_as_its_id_and_its_cause_s_whole_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a worker sends a task's error (`error_message`) and the client reads it: a cause
    chained from a rasterio error that cannot be unpickled made it a `TileError('...` repr,
    then cut at 200 characters."""
    missing = tmp_path / ("a-long-folder-name-" * 10) / "S1_0_vv.tif"
    cause = f"month 10 July: reading its scenes failed ({missing}: No such file); run again"

    def compose_tile(*args: object, **kwargs: object) -> None:
        try:
            rasterio.open(missing)
        except rasterio.errors.RasterioIOError:
            raise DataError(cause) from None  # as compose does: its context stays

    monkeypatch.setattr(tasks, "compose_tile", compose_tile)
    grid = grid_of(bbox=[27.0, 61.3, 27.1, 61.4])
    tile = grid.tiles(256)[0]
    with pytest.raises(TileError) as failed:
        tasks.compose_task(tmp_path, grid, tile, year=2021, catalog="catalog.json", s2_catalog=None)
    sent = distributed.core.error_message(failed.value)["exception"].data
    _, received, _ = distributed.core.clean_exception(sent)
    assert type(received) is TileError
    assert tasks.cause_line(received) == f"composing tile {tile.id}: {cause}"  # > 200 chars


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "a folder, not a scheduler file or address (tcp://HOST:PORT)"),
        ("garbage", "not a Dask scheduler file (Expecting value: line 1 column 1 (char 0))"),
        ("[1, 2]", 'not a Dask scheduler file (it has no "address")'),
    ],
)
def test_a_scheduler_file_that_is_none_is_one_line_naming_it(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "scheduler.json"
    path.mkdir() if content is None else path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(f"`scheduler` {path}: {message}")):
        cluster.connect(str(path))


def test_a_scheduler_that_is_no_address_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "scheduler.json")
    with pytest.raises(ConfigError, match=f"`scheduler` {missing}: neither a scheduler file "
                       "nor an address tcp://HOST:PORT \\(missing port number"):  # fmt: skip
        cluster.connect(missing)


def test_the_workers_of_this_machine_s_cluster_leave_ctrl_c_to_the_run() -> None:
    """A terminal's Ctrl-C reaches every process of the run: each worker ignores it (its
    preload, `dask_setup`) and keeps Dask's log to itself, so that it prints no traceback."""
    options = next(iter(worker_specs(cores=2, gpus=0, memory=2**30).values()))["options"]
    assert options["preload"] == ["agbm.region.cluster"]
    assert options["silence_logs"] == logging.CRITICAL
    previous = signal.getsignal(signal.SIGINT)
    try:
        cluster.dask_setup(None)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_closes_this_machine_s_cluster_without_a_word_from_dask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dask logs nothing while the cluster closes after Ctrl-C, and as before afterwards."""
    logger = logging.getLogger("distributed")
    levels = []

    @contextlib.contextmanager
    def closing(*args: object) -> Iterator[None]:
        try:
            yield
        finally:
            levels.append(logger.level)  # as the cluster and its client close

    monkeypatch.setattr(cluster, "local_cluster", closing)
    monkeypatch.setattr(distributed, "Client", closing)
    before = logger.level
    with pytest.raises(KeyboardInterrupt), cluster.client_for(None):
        raise KeyboardInterrupt
    assert levels == [logging.CRITICAL] * 2 and logger.level == before


def _unreachable(folder: Path) -> str:
    """A scheduler file naming a port no one listens on."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    path = folder / "scheduler.json"
    path.write_text(json.dumps({"address": f"tcp://127.0.0.1:{port}"}))
    return str(path)


def _text_file(folder: Path) -> str:
    (folder / "m.pt").write_text("garbage")
    return str(folder / "m.pt")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--year", lambda _: "2010", "--year 2010: a year names its months September 2009"),
        ("--window", lambda _: "100", "--window must be a positive multiple of 32, not 100"),
        ("--checkpoint", _text_file, "m.pt: "),  # its fault: the checkpoint reader's
        ("--scheduler", _unreachable, "no scheduler answers at tcp://127.0.0.1:"),
    ],
)
def test_every_value_is_checked_before_the_folder_is_claimed(
    small_region: tuple[Path, Path, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: Callable[[Path], str],
    message: str,
) -> None:
    """Once refused, a run left a claimed folder that refused the corrected command ("year:
    2010 -> 2021"); an unreachable scheduler left its run.json; a checkpoint that is none
    failed every tile, after all the composing."""
    stac, checkpoint, bbox = small_region
    settings = {"--year": "2021", "--window": "64", "--checkpoint": str(checkpoint)}
    settings[flag] = value(tmp_path)
    args = ["map-region", "--bbox", *bbox, "--catalog", str(stac), "--out", str(tmp_path / "o")]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main([*args, *itertools.chain(*settings.items()), "--overlap", "16"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert message in line
    assert not (tmp_path / "o").exists()
