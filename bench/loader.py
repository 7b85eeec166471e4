"""Chips per second served by `ChipDataset` from raw GeoTIFFs and from the `agbm prepare` cache.

    python bench/loader.py [--data ROOT] [--cache DIR] [--chips 24] [--size 256]
                           [--workers 0 2 N] [--passes 2]

Without --data, a synthetic set of --chips chips (--size px) is generated in a temporary
directory; without --cache, one is prepared there (its conversion rate is a figure too).
First the per-chip read time of one process (`ChipSource.read_chip`, what the issue's
"10x per chip" target is about), next to the floor of any loader that hands out float32
images: allocating and filling one `[12, 15, H, W]` array. Then each --workers value
iterates a DataLoader over the whole split --passes times with the batching of `agbm train`
(collation included); the first pass (worker start-up, cold file cache) is not timed.
Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from agbm.cache import open_source, prepare
from agbm.data import CHANNELS, MONTHS, ChipDataset
from agbm.synth import generate

MIB = 2**20


def chips_per_second(root: Path, workers: int, batch_size: int, passes: int) -> float:
    """Steady-state chips/s of a DataLoader over `root`'s train split."""
    dataset = ChipDataset(root, "train")
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    for _ in loader:  # warm-up pass: worker start-up, file cache
        pass
    start = time.perf_counter()
    for _ in range(passes - 1):
        for _ in loader:
            pass
    return len(dataset) * (passes - 1) / (time.perf_counter() - start)


def read_ms(root: Path, passes: int) -> float:
    """Milliseconds per `read_chip` in this process, after one untimed pass."""
    source = open_source(root, "train")
    chips = source.chip_ids()
    for chip in chips:
        source.read_chip(chip)
    start = time.perf_counter()
    for _ in range(passes - 1):
        for chip in chips:
            source.read_chip(chip)
    return (time.perf_counter() - start) * 1000 / (len(chips) * (passes - 1))


def floor_ms(size: tuple[int, int], repeats: int = 20) -> float:
    """Milliseconds to allocate and fill one chip's float32 image: no loader can beat it."""
    source = np.ones((MONTHS, CHANNELS, *size), dtype=np.float32)
    start = time.perf_counter()
    for _ in range(repeats):
        np.copy(source)
    return (time.perf_counter() - start) * 1000 / repeats


def mib_per_chip(folder: Path, chips: int) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / MIB / chips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="raw data root (default: synthetic)")
    parser.add_argument("--cache", type=Path, help="cache of --data (default: prepared here)")
    parser.add_argument("--chips", type=int, default=24, help="synthetic chips (default 24)")
    parser.add_argument("--size", type=int, default=256, help="synthetic chip side (default 256)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=sorted({0, 2, os.cpu_count() or 1}),
        help="loader worker counts to time (default 0, 2 and the CPU count)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="chips per batch (default 4)")
    parser.add_argument("--passes", type=int, default=2, help="passes, first untimed (default 2)")
    args = parser.parse_args()
    if args.passes < 2:
        parser.error("--passes must be at least 2 (the first is not timed)")
    with tempfile.TemporaryDirectory(prefix="agbm-bench-") as tmp:
        data = args.data or Path(tmp) / "data"
        if args.data is None:
            generate(data, chips=args.chips, test_chips=0, seed=0, size=args.size)
        cache = args.cache or Path(tmp) / "cache"
        if args.cache is None:
            start = time.perf_counter()
            converted = prepare(data, cache, "train", workers=max(args.workers))
            rate = len(converted) / (time.perf_counter() - start)
            print(f"prepare workers={max(args.workers)}: {rate:.1f} chips/s")
        chips = len(ChipDataset(data, "train"))
        print(f"raw size: {mib_per_chip(data / 'train_features', chips):.1f} MiB/chip (features)")
        print(f"cache size: {mib_per_chip(cache / 'train', chips):.1f} MiB/chip (with target)")
        times = {
            name: read_ms(root, args.passes) for name, root in (("raw", data), ("cache", cache))
        }
        for name, ms in times.items():
            print(f"read_chip {name}: {ms:.1f} ms/chip")
        print(f"read_chip cache/raw: {times['raw'] / times['cache']:.1f}x faster per chip")
        size = ChipDataset(cache, "train")[0]["image"].shape[2:]
        print(f"floor (allocate + fill one float32 image): {floor_ms(tuple(size)):.1f} ms/chip")
        for workers in args.workers:
            rates = {
                name: chips_per_second(root, workers, args.batch_size, args.passes)
                for name, root in (("raw", data), ("cache", cache))
            }
            for name, rate in rates.items():
                print(f"loader {name} workers={workers}: {rate:.1f} chips/s")
            print(f"loader cache/raw workers={workers}: {rates['cache'] / rates['raw']:.1f}x")


if __name__ == "__main__":
    main()
