"""`agbm prepare`: a chip cache that loads several times faster than its GeoTIFFs.

Decoding 24 GeoTIFFs per chip costs every epoch far more than the model needs to wait for,
so `agbm prepare` converts each chip once into uncompressed `.npy` files that are opened
memory-mapped::

    CACHE/agbm_cache.json                 manifest: format, version, source root, splits
    CACHE/{split}/{chip}/s1.npy           float32 [12, 4, H, W], raw dB, -9999 kept
    CACHE/{split}/{chip}/s2.npy           uint16 [12, 11, H, W], raw, cloud 255 kept
    CACHE/{split}/{chip}/acquired.npy     bool [2, 12]: which S1 / S2 monthly files existed
    CACHE/{split}/{chip}/target.npy       float32 [H, W] (splits with targets only)
    CACHE/{split}/{chip}/geo.json         CRS (WKT) and transform, for prediction files

The raw values are stored losslessly (absent months as zeros), exactly the `RawChip` that
`agbm.data.read_raw_chip` makes of the GeoTIFFs, and normalised after loading by the same
`agbm.data.normalise` (on the training device), so a chip read from the cache is
bit-identical to the same chip read from the GeoTIFFs by construction, and a change of
normalisation never needs a new cache.

`open_source(root, split)` is the one place that tells a cache from a raw root: `ChipDataset`,
`agbm train` and `agbm predict` read chips through the `ChipSource` it returns.

A chip is written into a temporary directory renamed into place when complete, so a killed
run never leaves a half chip that counts as done; a second run converts only what is missing.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import rasterio
import rasterio.crs
from rasterio.errors import CRSError
from rasterio.transform import Affine
from tqdm import tqdm

from agbm.data import (
    _SOURCES,
    MONTHS,
    RAW_DTYPES,
    SPLITS,
    DataError,
    RawChip,
    _check_split,
    features_path,
    has_targets,
    list_chips,
    read_raw_chip,
    read_target,
    splits_present,
    target_path,
)
from agbm.io import writable_folder

MANIFEST = "agbm_cache.json"
FORMAT = "agbm-cache"
#: Bump when the layout changes: an old cache is then refused with a clear message.
VERSION = 1
GEO_FILE = "geo.json"
TARGET_FILE = "target.npy"
ACQUIRED_FILE = "acquired.npy"
_TEMP_MARK = ".tmp-"


def raw_file(satellite: str) -> str:
    """Cache file name of a satellite's 12 months of raw values."""
    return f"{satellite.lower()}.npy"


def chip_files(targets: bool) -> tuple[str, ...]:
    """The files a complete cached chip has."""
    files = (*(raw_file(s) for s, *_ in _SOURCES), ACQUIRED_FILE, GEO_FILE)
    return (*files, TARGET_FILE) if targets else files


def is_cache(root: Path | str) -> bool:
    """Whether `root` is a chip cache (rather than a raw BioMassters root)."""
    return (Path(root) / MANIFEST).is_file()


# --- reading: one interface over a raw root and a cache --------------------------------------


class ChipSource(Protocol):
    """Where one split's chips come from: `ChipDataset` and `agbm predict` need only this."""

    root: Path
    split: str

    def chip_ids(self) -> list[str]: ...

    def has_targets(self) -> bool: ...

    def read_raw(self, chip_id: str) -> RawChip: ...

    def read_target(self, chip_id: str) -> np.ndarray: ...

    def georeference(self, chip_id: str) -> dict: ...

    def size(self, chip_id: str) -> tuple[int, int]: ...

    def acquired(self, chip_id: str) -> np.ndarray: ...

    def has_target(self, chip_id: str) -> bool: ...


@dataclass(frozen=True)
class RawSource:
    """A split of a raw BioMassters root (GeoTIFFs), read by `agbm.data`."""

    root: Path
    split: str

    def __post_init__(self) -> None:
        _check_split(self.root, self.split)

    def chip_ids(self) -> list[str]:
        return list_chips(self.root, self.split)

    def has_targets(self) -> bool:
        return has_targets(self.root, self.split)

    def read_raw(self, chip_id: str) -> RawChip:
        return read_raw_chip(self.root, chip_id, self.split)

    def read_target(self, chip_id: str) -> np.ndarray:
        return read_target(self.root, chip_id, self.split)

    def georeference(self, chip_id: str) -> dict:
        """CRS and transform of the chip's first input file (empty when it has none)."""
        with self._first_file(chip_id) as src:
            return {"crs": src.crs, "transform": src.transform} if src.crs else {}

    def acquired(self, chip_id: str) -> np.ndarray:
        """bool `[2, 12]`: which S1 / S2 monthly files exist (nothing read)."""
        return np.array(
            [
                [
                    features_path(self.root, chip_id, sat, m, self.split).is_file()
                    for m in range(MONTHS)
                ]
                for sat, *_ in _SOURCES
            ]
        )

    def has_target(self, chip_id: str) -> bool:
        return target_path(self.root, chip_id, self.split).is_file()

    def size(self, chip_id: str) -> tuple[int, int]:
        """(height, width) of the chip's first input file."""
        with self._first_file(chip_id) as src:
            return src.height, src.width

    def _first_file(self, chip_id: str) -> rasterio.DatasetReader:
        for month in range(MONTHS):
            for satellite, *_ in _SOURCES:
                path = features_path(self.root, chip_id, satellite, month, self.split)
                if path.is_file():
                    return rasterio.open(path)
        raise DataError(f"chip {chip_id}: no S1 or S2 file for any month in {self.root}")


@dataclass(frozen=True)
class CacheSource:
    """A split of a chip cache made by `agbm prepare`."""

    root: Path
    split: str
    chips: tuple[str, ...]
    targets: bool

    @classmethod
    def open(cls, root: Path, split: str) -> CacheSource:
        """Read the manifest and check that every chip of the split has been prepared."""
        manifest = read_manifest(root)
        if split not in manifest["splits"]:
            prepared = ", ".join(manifest["splits"]) or "none"
            raise DataError(
                f"cache {root} has no {split!r} split (prepared: {prepared}); "
                f"run `agbm prepare --split {split}` into it"
            )
        entry = manifest["splits"][split]
        chips = tuple(entry["chips"])
        done = set(os.listdir(root / split)) if (root / split).is_dir() else set()
        missing = [c for c in chips if c not in done]
        if missing:
            raise DataError(
                f"cache {root}: {len(missing)} of {len(chips)} {split} chip(s) not prepared "
                f"(first: {missing[0]}); run `agbm prepare` again to finish it"
            )
        return cls(root, split, chips, bool(entry["targets"]))

    def chip_ids(self) -> list[str]:
        return list(self.chips)

    def has_targets(self) -> bool:
        return self.targets

    def _dir(self, chip_id: str) -> Path:
        return self.root / self.split / chip_id

    def read_raw(self, chip_id: str) -> RawChip:
        """The stored months, copied out of the memory maps (the loader hands them to torch)."""
        folder = self._dir(chip_id)
        acquired = load_array(folder / ACQUIRED_FILE, np.dtype(bool), (len(_SOURCES), MONTHS))
        stacks = []
        for satellite, _, bands in _SOURCES:
            path = folder / raw_file(satellite)
            stack = load_array(path, RAW_DTYPES[satellite], (MONTHS, bands))
            if stacks and stack.shape[2:] != stacks[0].shape[2:]:
                raise DataError(f"{path}: size differs from the chip's; {_REDO}")
            stacks.append(np.array(stack))
        return RawChip(*stacks, np.array(acquired))

    def read_target(self, chip_id: str) -> np.ndarray:
        if not self.targets:
            raise DataError(f"cache {self.root}: split {self.split!r} was prepared without targets")
        size = self.size(chip_id)
        return np.array(load_array(self._dir(chip_id) / TARGET_FILE, np.dtype(np.float32), size))

    def acquired(self, chip_id: str) -> np.ndarray:
        """bool `[2, 12]`: which S1 / S2 monthly files the chip had."""
        return np.array(load_array(self._dir(chip_id) / ACQUIRED_FILE, np.dtype(bool)))

    def has_target(self, chip_id: str) -> bool:
        return self.targets

    def size(self, chip_id: str) -> tuple[int, int]:
        """(height, width) of the chip's stored months."""
        return load_array(self._dir(chip_id) / raw_file("S1"), RAW_DTYPES["S1"]).shape[2:]

    def georeference(self, chip_id: str) -> dict:
        """The stored CRS and transform, as rasterio objects (empty when the chip had none)."""
        path = self._dir(chip_id) / GEO_FILE
        try:
            geo = json.loads(path.read_text())
            if not geo:
                return {}
            return {
                "crs": rasterio.crs.CRS.from_wkt(geo["crs"]),
                "transform": Affine(*geo["transform"]),
            }
        except (OSError, ValueError, KeyError, TypeError, CRSError) as exc:
            raise DataError(f"{path}: missing or corrupt cache file ({exc}); {_REDO}") from exc


_REDO = "delete the chip's directory and run `agbm prepare` again"


def load_array(path: Path, dtype: np.dtype, leading: tuple[int, ...] = ()) -> np.ndarray:
    """Memory-map a cached array, checking its dtype and leading dimensions (or full shape)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: cache file missing; {_REDO}") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: corrupt or truncated cache file ({exc}); {_REDO}") from exc
    if array.dtype != dtype or array.shape[: len(leading)] != tuple(leading):
        raise DataError(
            f"{path}: holds {array.dtype} {array.shape}, expected {dtype} {tuple(leading)}...; "
            f"{_REDO}"
        )
    return array


def read_manifest(root: Path) -> dict:
    """The cache manifest, refusing a foreign file or a cache of another layout version."""
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable cache manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not an agbm cache manifest")
    if manifest.get("version") != VERSION:
        raise DataError(
            f"{path}: cache layout version {manifest.get('version')}, this agbm reads {VERSION}; "
            "delete the cache and run `agbm prepare` again"
        )
    return manifest


def open_source(root: Path | str, split: str) -> ChipSource:
    """The chips of `split` in `root`, whether a raw BioMassters root or a cache."""
    root = Path(root)
    if is_cache(root):
        return CacheSource.open(root, split)
    return RawSource(root, split)


# --- writing ---------------------------------------------------------------------------------


def convert_chip(source: RawSource, out: Path, targets: bool, chip_id: str) -> str:
    """Write one chip into the cache atomically: a temporary directory, renamed when complete."""
    chip = source.read_raw(chip_id)
    arrays = {raw_file("S1"): chip.s1, raw_file("S2"): chip.s2, ACQUIRED_FILE: chip.acquired}
    if targets:
        target = source.read_target(chip_id)
        if target.shape != chip.s1.shape[2:]:
            raise DataError(f"chip {chip_id}: target size {target.shape} differs from the chip's")
        arrays[TARGET_FILE] = target
    geo = source.georeference(chip_id)
    final = out / source.split / chip_id
    tmp = final.with_name(f".{chip_id}{_TEMP_MARK}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, array in arrays.items():
        np.save(tmp / name, array, allow_pickle=False)
    stored_geo = (
        {"crs": geo["crs"].to_wkt(), "transform": list(geo["transform"])[:6]} if geo else {}
    )
    (tmp / GEO_FILE).write_text(json.dumps(stored_geo))
    shutil.rmtree(final, ignore_errors=True)  # an incomplete chip left by hand-deletion
    os.rename(tmp, final)
    return chip_id


def is_done(folder: Path, targets: bool) -> bool:
    """Whether a cached chip is complete (a renamed directory with all its files)."""
    return all((folder / name).is_file() for name in chip_files(targets))


def write_manifest(out: Path, data: Path, split: str, chips: list[str], targets: bool) -> None:
    """Add (or refresh) a split in the manifest, atomically; refuse to mix two data roots."""
    manifest = {"format": FORMAT, "version": VERSION, "source": str(data.resolve()), "splits": {}}
    if is_cache(out):
        manifest = read_manifest(out)
        if manifest["source"] != str(data.resolve()):
            raise DataError(
                f"cache {out} was prepared from {manifest['source']}, not {data.resolve()}; "
                "use another --out"
            )
    manifest["splits"][split] = {"chips": chips, "targets": targets}
    tmp = out / f".{MANIFEST}{_TEMP_MARK}{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)


def prepare(
    data: Path | str,
    out: Path | str,
    split: str = "train",
    workers: int = 0,
    progress: bool = False,
) -> list[str]:
    """Convert every chip of `split` not yet in the cache `out`; returns the chips converted."""
    data, out = Path(data), Path(out)
    if is_cache(data):
        raise DataError(f"{data} is already a cache: give the raw data root as --data")
    source = RawSource(data, split)
    chips, targets = source.chip_ids(), source.has_targets()
    writable_folder(out / split)  # a cache that cannot be written fails here, in one line
    write_manifest(out, data, split, chips, targets)
    for leftover in (out / split).glob(f".*{_TEMP_MARK}*"):  # from a killed run
        shutil.rmtree(leftover)
    todo = [c for c in chips if not is_done(out / split / c, targets)]
    job = functools.partial(convert_chip, source, out, targets)
    bar = tqdm(total=len(todo), desc=f"prepare {split}", unit="chip", disable=not progress)
    if workers > 0:
        # Spawned, not forked: a child forked while another thread holds a lock (tqdm's
        # monitor, logging, GDAL) inherits the lock held forever and can hang.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(job, todo):
                bar.update()
    else:
        for chip in todo:
            job(chip)
            bar.update()
    bar.close()
    return todo


def _run(args: argparse.Namespace) -> int:
    for split in (
        args.split or splits_present(args.data) or ["train"]
    ):  # "train": say what's missing
        start = time.perf_counter()
        done = prepare(args.data, args.out, split, args.workers, progress=True)
        print(
            f"{split}: converted {len(done)} chip(s) into {args.out} "
            f"in {time.perf_counter() - start:.1f} s"
        )
    return 0


def available_splits(root: Path) -> list[str]:
    """The splits a data root holds files of, or a cache has prepared."""
    if is_cache(root):
        return [s for s in SPLITS if s in read_manifest(root)["splits"]]
    return splits_present(root)


def summarise(source: ChipSource) -> dict[str, float]:
    """Counts and month availability of a split, for a quick look at a data set."""
    chips = source.chip_ids()
    acquired = np.stack([source.acquired(c) for c in chips])  # [chips, 2, 12]
    return {
        "chips": len(chips),
        "s1_months_present": float(acquired[:, 0].mean()),
        "s2_months_present": float(acquired[:, 1].mean()),
        "targets": sum(source.has_target(c) for c in chips),
    }


def _run_info(args: argparse.Namespace) -> int:
    for split in args.split or available_splits(args.data) or ["train"]:  # train: say what lacks
        stats = summarise(open_source(args.data, split))
        print(
            f"{split:5s}  chips {stats['chips']:6d}  targets {stats['targets']:6d}  "
            f"S1 months present {stats['s1_months_present']:6.1%}  "
            f"S2 months present {stats['s2_months_present']:6.1%}"
        )
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """`agbm info` and `agbm prepare`: what a data root or cache holds, and making a cache."""
    info = subparsers.add_parser(
        "info",
        help="summarise a BioMassters data root or cache",
        description="Count chips, targets and month availability of a data root or cache.",
    )
    info.add_argument("--data", required=True, type=Path, help="data root or cache")
    info.add_argument(
        "--split", nargs="+", choices=SPLITS, help="splits to list (default: those present)"
    )
    info.set_defaults(func=_run_info)
    parser = subparsers.add_parser(
        "prepare",
        help="convert a data root into a fast, memory-mapped chip cache",
        description=(
            "Convert every chip once into uncompressed .npy files (raw values, lossless) that "
            "train and predict read several times faster than the GeoTIFFs, with identical "
            "results: give the cache directory as --data. Resumable: chips already converted "
            "are skipped; each chip is written atomically."
        ),
    )
    parser.add_argument("--data", required=True, type=Path, help="raw data root (*_features/)")
    parser.add_argument("--out", required=True, type=Path, help="cache directory")
    parser.add_argument(
        "--split", nargs="+", choices=SPLITS, help="splits to convert (default: those present)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="conversion processes (default 4; 0: in-process)"
    )
    parser.set_defaults(func=_run)
