"""The chip cache that loads several times faster than its GeoTIFFs.

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
`agbm.data.raw.read_raw_chip` makes of the GeoTIFFs, and normalised after loading by the same
`agbm.data.bands.normalise` (on the training device), so a chip read from the cache is
bit-identical to the same chip read from the GeoTIFFs by construction, and a change of
normalisation never needs a new cache.

A chip is written into a temporary directory renamed into place when complete, so a killed
run never leaves a half chip that counts as done; a second run converts only what is missing.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.crs
from rasterio.errors import CRSError
from rasterio.transform import Affine
from tqdm import tqdm

from agbm.data.bands import MONTHS, S1, SENSORS
from agbm.data.raw import RawChip, RawSource
from agbm.errors import DataError
from agbm.io import (
    check_record,
    remove_stale_temporaries,
    replacing,
    writable_folder,
    write_record,
)

MANIFEST = "agbm_cache.json"


FORMAT = "agbm-cache"


#: Bump when the layout changes: an old cache is then refused with a clear message.
VERSION = 1


GEO_FILE = "geo.json"


TARGET_FILE = "target.npy"


ACQUIRED_FILE = "acquired.npy"


def raw_file(satellite: str) -> str:
    """Cache file name of a satellite's 12 months of raw values."""
    return f"{satellite.lower()}.npy"


def chip_files(targets: bool) -> tuple[str, ...]:
    """The files a complete cached chip has."""
    files = (*(raw_file(s.name) for s in SENSORS), ACQUIRED_FILE, GEO_FILE)
    return (*files, TARGET_FILE) if targets else files


def is_cache(root: Path | str) -> bool:
    """Whether `root` is a chip cache (rather than a raw BioMassters root)."""
    return (Path(root) / MANIFEST).is_file()


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
        acquired = load_array(folder / ACQUIRED_FILE, np.dtype(bool), (len(SENSORS), MONTHS))
        stacks = []
        for sensor in SENSORS:
            path = folder / raw_file(sensor.name)
            stack = load_array(path, sensor.dtype, (MONTHS, sensor.count))
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
        return load_array(self._dir(chip_id) / raw_file(S1.name), S1.dtype).shape[2:]

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
    stored_geo = (
        {"crs": geo["crs"].to_wkt(), "transform": list(geo["transform"])[:6]} if geo else {}
    )
    with replacing(out / source.split / chip_id) as tmp:
        tmp.mkdir()
        for name, array in arrays.items():
            np.save(tmp / name, array, allow_pickle=False)
        (tmp / GEO_FILE).write_text(json.dumps(stored_geo))
    return chip_id


def is_done(folder: Path, targets: bool) -> bool:
    """Whether a cached chip is complete (a renamed directory with all its files)."""
    return all((folder / name).is_file() for name in chip_files(targets))


def write_manifest(out: Path, data: Path, split: str, chips: list[str], targets: bool) -> None:
    """Add (or refresh) a split in the manifest, atomically; refuse to mix two data roots."""
    manifest = {"format": FORMAT, "version": VERSION, "source": str(data.resolve()), "splits": {}}
    if is_cache(out):
        manifest = read_manifest(out)
        source = {"source": str(data.resolve())}
        check_record({"source": manifest["source"]}, source, out, "prepare into another `out`")
    manifest["splits"][split] = {"chips": chips, "targets": targets}
    write_record(out / MANIFEST, manifest)


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
        raise DataError(f"{data} is already a cache: give the raw data root as `data`")
    source = RawSource(data, split)
    chips, targets = source.chip_ids(), source.has_targets()
    writable_folder(out / split)  # a cache that cannot be written fails here, in one line
    write_manifest(out, data, split, chips, targets)
    remove_stale_temporaries(out / split)  # chips a killed run left half-written
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
