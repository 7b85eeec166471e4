"""Chips per second served from raw GeoTIFFs and from the `agbm prepare` cache.

    python bench/loader.py [--data ROOT] [--cache DIR] [--chips 24] [--size 256]
                           [--workers 0 2 N] [--passes 2]

Without --data, a synthetic set of --chips chips (--size px) is generated in a temporary
directory and a cache prepared there (its conversion rate is a figure too). With --data (a
real data root), --cache must be its `agbm prepare` cache, and the first --chips chips of
the train split are timed: the whole 8,689 would take hours.

First the per-chip times of one process: reading a chip's raw months (`ChipSource.read_raw`,
what the loaders of `agbm train` and `agbm predict` do, and what the issue's "10x per chip"
target is about), then a normalised sample as `ChipDataset` gives it to users (read plus
normalisation on the CPU), then the normalisation alone (which train and predict run on
the device instead). Then each --workers value iterates a DataLoader over the whole split
--passes times as `agbm train` does (raw samples, default collation); the first pass
(worker start-up, cold file cache) is not timed. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from agbm.data import ChipDataset, normalise, open_source
from agbm.data.cache import prepare
from agbm.data.synth import generate

MIB = 2**20


def chips_per_second(
    root: Path, chip_ids: Sequence[str], workers: int, batch_size: int, passes: int
) -> float:
    """Steady-state chips/s of a DataLoader over `root`'s chips, as `agbm train` loads."""
    dataset = ChipDataset(root, "train", chip_ids, raw=True)
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


def per_chip_ms(read: Callable[[Any], object], chips: Sequence, passes: int) -> float:
    """Milliseconds per `read(chip)` in this process, after one untimed pass."""
    for chip in chips:
        read(chip)
    start = time.perf_counter()
    for _ in range(passes - 1):
        for chip in chips:
            read(chip)
    return (time.perf_counter() - start) * 1000 / (len(chips) * (passes - 1))


def normalise_ms(root: Path, repeats: int = 10) -> float:
    """Milliseconds to normalise one chip on the CPU (one thread, as in a loader worker)."""
    source = open_source(root, "train")
    chip = source.read_raw(source.chip_ids()[0])
    arrays = [torch.from_numpy(a) for a in (chip.s1, chip.s2, chip.acquired)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return per_chip_ms(lambda _: normalise(*arrays), ["x"] * repeats, 2)
    finally:
        torch.set_num_threads(threads)


def mib(paths: Sequence[Path]) -> float:
    """Total size of `paths` (files, or folders whose files count)."""
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    return sum(f.stat().st_size for f in files) / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="raw data root (default: synthetic)")
    parser.add_argument("--cache", type=Path, help="cache of --data (default: prepared here)")
    parser.add_argument(
        "--chips", type=int, default=24, help="chips to time (synthetic, or the first of --data)"
    )
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
    if args.data and not args.cache:
        parser.error("with --data, give its cache as --cache (make it with `agbm prepare`)")
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
        roots = {"raw": data, "cache": cache}
        sources = {name: open_source(root, "train") for name, root in roots.items()}
        ids = sources["raw"].chip_ids()[: args.chips]
        raw_mib = mib([p for c in ids for p in (data / "train_features").glob(f"{c}_S*.tif")])
        print(f"raw size: {raw_mib / len(ids):.1f} MiB/chip (features)")
        cache_mib = mib([cache / "train" / c for c in ids])
        print(f"cache size: {cache_mib / len(ids):.1f} MiB/chip (with target)")
        times = {name: per_chip_ms(src.read_raw, ids, args.passes) for name, src in sources.items()}
        for name, ms in times.items():
            print(f"read_raw {name}: {ms:.1f} ms/chip")
        print(f"read_raw cache/raw: {times['raw'] / times['cache']:.1f}x faster per chip")
        samples = {
            name: per_chip_ms(
                ChipDataset(root, "train", ids).__getitem__, range(len(ids)), args.passes
            )
            for name, root in roots.items()
        }
        for name, ms in samples.items():
            print(f"normalised sample {name}: {ms:.1f} ms/chip")
        print(f"normalised sample cache/raw: {samples['raw'] / samples['cache']:.1f}x")
        print(f"normalise on CPU, one thread: {normalise_ms(cache):.1f} ms/chip")
        for workers in args.workers:
            rates = {
                name: chips_per_second(root, ids, workers, args.batch_size, args.passes)
                for name, root in roots.items()
            }
            for name, rate in rates.items():
                print(f"loader {name} workers={workers}: {rate:.1f} chips/s")
            print(f"loader cache/raw workers={workers}: {rates['cache'] / rates['raw']:.1f}x")


if __name__ == "__main__":
    main()
