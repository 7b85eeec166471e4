"""`agbm map-region` on a static catalog served over HTTP; one line per figure.

    python bench/region.py [--tiles 2] [--tile-size 1024] [--blocksize 512] [--workers 1 2]

Builds a static STAC catalog in the Planetary Computer's layout (bench/catalog.py):
one Sentinel-1 item over the whole region and four overlapping Sentinel-2 squares of four
July dates, as MGRS tiles overlap, every COG in `--blocksize` px blocks. It serves the
catalog from a local HTTP server that answers range requests and counts the bytes it
sends, as a cloud bucket would, and maps a square region of `--tiles` x `--tiles` tiles
on map-region's own cluster of 1, then 2 cores (`worker_specs`: compose workers and one
predict worker; a tiny encoder: the model's own speed is bench/predict.py's). It reports:

- tiles per second for each worker count, and the speed-up;
- each task's mean seconds and the workers' peak memory, compose, predict and blend apart;
- the bytes fetched per km², against the bytes the region's own share of the source
  files holds (what fetching each pixel once costs), and the composed inputs per km²;
- the window passes per pixel (model evaluations of each map pixel) for these tiles, now
  and as before each window was predicted once, and region.json's own figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import math
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import shapely
from catalog import CRS, X0, Y0, S1Item, S2Item, build

from agbm.data.bands import PIXEL_M
from agbm.inference import InferenceOptions
from agbm.inference.tiling import plan_tiling
from agbm.models import TemporalUNet, save_model
from agbm.region import region_grid
from agbm.region.cluster import worker_specs
from agbm.region.engine import RegionPlan, map_region
from agbm.region.grid import RegionGrid
from agbm.region.lattice import extent, lattice, plan_windows, tiles_over
from agbm.region.report import passes_per_pixel

#: The region's margin inside the catalog's rasters, in metres.
MARGIN = 200


class _Counting(http.server.SimpleHTTPRequestHandler):
    """Serves a folder's files, whole or by one `Range: bytes=a-b`, adding what it sends to
    the server's `sent` count (GDAL reads COGs by ranges, as from a bucket)."""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes="):
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            start, end = int(first), min(int(last or len(data) - 1), len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            data = data[start : end + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(data)
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.sent += len(data)  # type: ignore[attr-defined]


@contextmanager
def serving(folder: Path) -> Iterator[http.server.ThreadingHTTPServer]:
    """`folder` on http://127.0.0.1:PORT/ while the block runs; `.sent` counts bytes."""

    def handler(*args: object) -> _Counting:
        return _Counting(*args, directory=str(folder))  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.sent, server.lock = 0, threading.Lock()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()


def catalog(root: Path, side_m: float, blocksize: int) -> Path:
    """One S1 item over the region plus margin, and four S2 squares overlapping by a fifth."""
    half = int((side_m / 2 + side_m / 10 + MARGIN) / 10)  # a square's side, in 10 m px
    s1 = [S1Item(dt.date(2021, 7, 2), "ascending", 0.1, 0.01, gradient=True, texture=0.05,
                 side_px=int((side_m + 2 * MARGIN) / 10), x_shift=0, y_shift=0)]  # fmt: skip
    offset = side_m + 2 * MARGIN - half * 10
    s2 = [
        S2Item(dt.date(2021, 7, 5 + 5 * n), 2000 + 400 * n, 4, side_px=half, texture=300,
               x_shift=offset * (n % 2), y_shift=offset * (n // 2))
        for n in range(4)
    ]  # fmt: skip
    return build(root, s1, s2, blocksize)


def own_bytes(stac: Path, area: shapely.Geometry) -> float:
    """The bytes of the source files' share that lies over `area`: each file's size times
    the fraction of its footprint inside it (every file covers one square, `catalog`)."""
    import rasterio

    total = 0.0
    for path in (stac.parent / "data").glob("*.tif"):
        with rasterio.open(path) as src:
            footprint = shapely.box(*src.bounds)
        total += path.stat().st_size * footprint.intersection(area).area / footprint.area
    return total


def passes_now_and_before(
    grid: RegionGrid, tile_size: int, window: int, overlap: int
) -> tuple[float, float]:
    """Model evaluations per map pixel of the region's tiles (`passes_per_pixel`): now
    (each window once, by its owner) and before (each tile predicted every window reaching
    into it)."""
    tiling = plan_tiling(*grid.shape, window=window, overlap=overlap)
    tiles = grid.tiles(tile_size)
    area, pixels = math.prod(tiling.size), sum(t.height * t.width for t in tiles)
    before = sum(len(tiling.corners_touching(t.block)) for t in tiles)
    now = plan_windows(tiles, tiling, tile_size).windows()
    return passes_per_pixel(now, area, pixels), passes_per_pixel(before, area, pixels)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run(args: argparse.Namespace, tmp: Path) -> None:
    import distributed

    side_m = args.tiles * args.tile_size * 10.0
    stac = catalog(tmp / "stac", side_m, args.blocksize)
    area = shapely.box(X0 + MARGIN, Y0 - MARGIN - side_m, X0 + MARGIN + side_m, Y0 - MARGIN)
    grid = region_grid(area, CRS)
    km2 = area.area / 1e6
    save_model(tmp / "m.pt", TemporalUNet("test_efficientnet", decoder_channels=(16,) * 5))
    options = InferenceOptions((tmp / "m.pt",), "none", window=args.window, overlap=args.overlap)
    label = f"{args.tiles}x{args.tiles} tiles of {args.tile_size} px, {km2:.0f} km²"
    rates = {}
    with serving(stac.parent) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/catalog.json"
        for workers in args.workers:
            server.sent = 0
            cluster = distributed.SpecCluster(
                worker_specs(workers, 0, distributed.system.MEMORY_LIMIT),
                {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0"}},
            )  # map-region's own workers for `workers` cores: compose apart from predict
            with cluster, distributed.Client(cluster):
                start = time.perf_counter()
                out = tmp / f"out{workers}"
                plan = RegionPlan(out, grid, 2021, args.tile_size, url,
                                  scheduler=cluster.scheduler_address)  # fmt: skip
                result = map_region(plan, options=options)
                seconds = time.perf_counter() - start
            assert not result.failed, result.failed
            rates[workers] = len(result.mapped) / seconds
            print(f"{label}, {workers} core(s): {rates[workers]:.3f} tiles/s ({seconds:.0f} s)")
            for task in ("compose", "predict", "blend"):
                records = [t[task] for t in result.tasks.values() if task in t]
                mean = statistics.mean(r["seconds"] for r in records)
                peak = max(r["peak_mib"] for r in records)
                print(f"{label}, {workers} core(s), {task}: {mean:.1f} s per tile, "
                      f"worker peak {peak} MiB")  # fmt: skip
            fetched = server.sent
        if len(rates) > 1:
            most, least = max(rates), min(rates)
            print(f"{label}, speed-up {most} vs {least} workers: "
                  f"{rates[most] / rates[least]:.2f}x")  # fmt: skip
    own = own_bytes(stac, area)
    print(f"{label}, fetched: {fetched / km2 / 1e6:.2f} MB/km², region's own share of the "
          f"sources {own / km2 / 1e6:.2f} MB/km²: {fetched / own:.2f}x "
          f"({args.blocksize} px source blocks)")  # fmt: skip
    inputs = folder_bytes(out / "inputs" / "tiles")
    print(f"{label}, composed inputs on disk: {inputs / km2 / 1e6:.1f} MB/km²")
    passes, before = passes_now_and_before(grid, args.tile_size, args.window, args.overlap)
    one, _ = passes_now_and_before(grid, args.tiles * args.tile_size, args.window, args.overlap)
    print(f"{label}, window {args.window} overlap {args.overlap}: {passes:.2f} window passes "
          f"per pixel ({before:.2f} before each window was predicted once; {one:.2f} as one "
          "tile)")  # fmt: skip
    report = json.loads((out / "region.json").read_text())
    print(f"{label}, region.json: windows_predicted {report['windows_predicted']}, "
          f"passes_per_pixel {report['passes_per_pixel']}")  # fmt: skip


def plan(counts: list[int], tile_size: int, window: int, overlap: int) -> None:
    """Planning a region of each of `counts` tiles, as map-region does before it submits
    the first task: its grid's tiles, its windows' owners and each tile's sources, and the
    tiles each owner's windows read; one figure per line, then the passes per pixel."""
    for count in counts:
        side = round(count**0.5) * tile_size * PIXEL_M
        area = shapely.box(4_000_000, 3_000_000, 4_000_000 + side, 3_000_000 + side)
        start = time.perf_counter()
        grid = region_grid(area, "EPSG:3035", "EPSG:3035")  # equal-area Europe
        tiles = grid.tiles(tile_size)
        tiled = time.perf_counter()
        tiling = plan_tiling(*grid.shape, window=window, overlap=overlap)
        windows = plan_windows(tiles, tiling, tile_size)
        owned = time.perf_counter()
        at = lattice(tiles, tile_size)
        for corners in windows.owned.values():
            tiles_over(at, extent(corners, tiling), tile_size)
        done = time.perf_counter()
        pixels = sum(t.height * t.width for t in tiles)
        passes = passes_per_pixel(windows.windows(), math.prod(tiling.size), pixels)
        print(f"planning {len(tiles)} tiles of {tile_size} px: grid and tiles "
              f"{tiled - start:.2f} s, windows' owners and sources {owned - tiled:.2f} s, "
              f"the tiles each owner reads {done - owned:.2f} s; {windows.windows()} windows, "
              f"{passes:.3f} passes per pixel")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=2, help="tiles a side (default 2)")
    parser.add_argument("--tile-size", type=int, default=1024, help="px (default 1024)")
    parser.add_argument("--blocksize", type=int, default=512, help="source COG blocks, px")
    parser.add_argument("--window", type=int, default=256, help="window (default 256)")
    parser.add_argument("--overlap", type=int, default=64, help="overlap (default 64)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument(
        "--plan", type=int, nargs="+", metavar="N",
        help="only time planning regions of N tiles each (e.g. 1000 10000 100000)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.plan:
        plan(args.plan, args.tile_size, args.window, args.overlap)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
