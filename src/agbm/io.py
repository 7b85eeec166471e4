"""Writing files so that a crash never leaves a half-written one: only the old file, or the new.

Every file (and every cached chip's folder) agbm writes goes through `replacing`: it is
written under a temporary name beside its final one, `.{name}.tmp{pid}`, and renamed when
complete. A process killed mid-write leaves only such a temporary, which the next run in
that folder removes (`remove_stale_temporaries`) once the process that wrote it is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")


def temporary_path(path: Path) -> Path:
    """Where `replacing` writes `path` before renaming it."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it when the block completes: a crash
    never leaves a half-written file, only the old one (and an error, not even that). The
    block may make a folder there instead of a file: it then replaces the old folder whole."""
    tmp = temporary_path(path)
    _remove(tmp)  # a leftover of an earlier process that had this pid
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # os.replace moves a folder only onto an empty one
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """torch.save through `replacing`."""
    with replacing(path) as tmp:
        torch.save(obj, tmp)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (this one included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of `replacing` in `folder` whose writer no longer runs (a
    killed run's leftovers; those of a run still writing are kept); returns them."""
    stale = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = _TEMPORARY.match(path.name)
            if match and not _alive(int(match["pid"])):
                _remove(path)
                stale.append(path)
    return stale


def writable_folder(path: Path) -> list[Path]:
    """Make `path` (with its parents) and check that a file can be written in it, or raise a
    one-line `ValueError`; returns the folders it made, deepest first."""
    made = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".agbm-write-check{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{path}: cannot write there ({err.strerror or err})") from None
    return made


@contextlib.contextmanager
def output_folder(path: Path) -> Iterator[Path]:
    """`path` as a folder to write into, made and checked writable before any work starts,
    so that a long job never fails at its first write. If the block fails and leaves the
    folders it made empty, they go again."""
    made = writable_folder(path)
    try:
        yield path
    except BaseException:
        for folder in made:  # deepest first; another process may be at it too
            with contextlib.suppress(OSError):
                folder.rmdir()  # fails, as it should, on a folder that is not empty
        raise
