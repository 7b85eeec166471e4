"""Writing files so that no work is lost or mixed: atomic writes, checked outputs, records
of what made a folder, and locks.

* Every file (and every cached chip's folder) agbm writes goes through `replacing`: it is
  written under a temporary name beside its final one, `.{name}.tmp{pid}`, and renamed when
  complete. A process killed mid-write leaves only such a temporary, which the next run in
  that folder removes (`remove_stale_temporaries`) once the process that wrote it is gone.
  The exceptions are files other libraries write in place (TensorBoard's event files).
* An output is checked before any work: writable, not a directory (`check_output_file`),
  and never an input, inside an input folder or a folder holding an input, even with
  `overwrite` (`refuse_overwriting_inputs`).
* A folder that is filled over several runs (a training run, a cache, composed months,
  predictions, a demo) records what it was made for (`claim_record`), and a run with other
  settings is refused with the keys that differ, instead of mixing two results.
* A folder one process fills at a time is locked while it does (`hold_folder`); the lock
  of a process that died is released by the operating system.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from agbm.errors import OutputError, RunBusyError

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")

#: The errors of a full disk or quota, named by the output being written.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def temporary_path(path: Path) -> Path:
    """Where `replacing` writes `path` before renaming it."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it when the block completes: a crash
    never leaves a half-written file, only the old one (and an error, not even that). The
    block may make a folder there instead of a file: it then replaces the old folder whole.
    A full disk is a one-line `OutputError` naming `path`."""
    tmp = temporary_path(path)
    _remove(tmp)  # a leftover of an earlier process that had this pid
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # os.replace moves a folder only onto an empty one
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in _NO_SPACE:  # the system's message names no file, or the temporary
            raise OutputError(
                f"{path}: {os.strerror(err.errno)} while writing it: free some space there, "
                "or write it elsewhere"
            ) from None
        raise
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """torch.save through `replacing` (torch imported here: the rest of io needs none)."""
    import torch

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
    one-line `OutputError`; returns the folders it made, deepest first."""
    path = Path(path)
    made = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".agbm-write-check{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"{path}: cannot write there ({err.strerror or err})") from None
    return made


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _overlap(output: Path, source: Path) -> str | None:
    """How writing `output` would reach the input `source`, or None if it cannot: the same
    file (by another spelling or a link too), inside the input folder, or a folder holding
    the input folder. A folder holding an input file is fine: outputs are written by their
    own names into it (predictions beside the checkpoint), never by clearing it."""
    if _same_file(output, source):
        return "is one of this command's inputs"
    out, src = output.resolve(), source.resolve()
    if out.is_relative_to(src):
        return "is inside the input folder"
    if source.is_dir() and src.is_relative_to(out):
        return "is a folder holding the input"
    return None


def refuse_overwriting_inputs(
    outputs: Iterable[Path | str | None], inputs: Iterable[Path | str | None]
) -> None:
    """Refuse, before any work, outputs that would write over the command's inputs (data,
    targets, labels, maps, checkpoints, a calibration): an output may not be an input, lie
    inside an input folder, or be a folder holding an input, whatever `--overwrite` says
    (it replaces earlier outputs, never the data they were made from).

    outputs: the files and folders the command writes; None (an output not asked for) is
        skipped.
    inputs: the files and folders it reads; None is skipped.

    Raises a one-line `OutputError` naming both paths.
    """
    sources = [Path(s) for s in inputs if s is not None]
    for output in (Path(o) for o in outputs if o is not None):
        for source in sources:
            how = _overlap(output, source)
            if how:
                raise OutputError(
                    f"{output} {how} {source}: write somewhere else (outputs never replace inputs)"
                )


def check_output_file(
    path: Path | str, inputs: Iterable[Path | str | None] = (), overwrite: bool = True
) -> Path:
    """`path` as a file to write, checked before any work: not a directory, not one of the
    command's `inputs` nor inside an input folder (`refuse_overwriting_inputs`), an existing
    file only with `overwrite`, and a writable folder (made if missing). Raises a one-line
    `OutputError` naming it."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a directory: give the name of the file to write")
    refuse_overwriting_inputs([path], inputs)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists: pass `overwrite` to replace it")
    writable_folder(path.parent)
    return path


def differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Collection[str] = ()
) -> list[str]:
    """The settings that differ between two records, as "key: old -> new" (keys in
    `ignore` may differ)."""
    keys = sorted((saved.keys() | current.keys()) - set(ignore))
    return [
        f"{k}: {saved.get(k)!r} -> {current.get(k)!r}"
        for k in keys
        if saved.get(k) != current.get(k)
    ]


def check_record(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    where: Path | str,
    remedy: str,
    ignore: Collection[str] = (),
) -> None:
    """Refuse to add to `where`, made with the settings `saved`, the work of settings
    `current`: an `OutputError` naming the keys that differ and what to do (`remedy`)."""
    changed = differences(saved, current, ignore)
    if changed:
        raise OutputError(f"{where} was made with other settings ({'; '.join(changed)}): {remedy}")


def claim_record(path: Path, record: Mapping[str, Any], remedy: str) -> None:
    """Make `path` (a JSON file in the folder it describes) record `record`: refuse a folder
    whose record differs (`check_record`), write the record into a new one."""
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise OutputError(f"{path}: unreadable record ({err}): {remedy}") from None
        check_record(saved if isinstance(saved, dict) else {}, record, path.parent, remedy)
        return
    write_record(path, record)


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Write a folder's record (`claim_record`) atomically, replacing any old one."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


def file_sha256(path: Path | str) -> str:
    """The SHA-256 of a file's bytes, in hex: what a record names a checkpoint by (its path
    may move, and another file may take its name). Remembered per file while its size and
    modification time stay the same: one run names a 0.5 GB checkpoint in several records,
    and each hash costs a second."""
    path = Path(path).resolve()
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=256)
def _sha256(path: Path, size: int, mtime_ns: int, inode: int) -> str:
    """`file_sha256` of `path` as it is at (`size`, `mtime_ns`, `inode`): the memo's key."""
    del size, mtime_ns, inode  # the key only: a changed file is hashed again
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


#: The lock file `hold_folder` takes in a folder.
LOCK_NAME = ".agbm.lock"


@contextlib.contextmanager
def hold_folder(folder: Path, what: str) -> Iterator[None]:
    """Hold `folder` for this process while the block runs, or raise `RunBusyError` at once
    if another live process holds it (two runs filling one folder would interleave). An OS
    file lock (filelock): a process that dies, however it dies, lets go of it. The lock file
    is removed while still held, so that a folder that is otherwise empty can go."""
    path = Path(folder) / LOCK_NAME
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunBusyError(
            f"{folder} is in use by another running {what}: wait for it to end, or use "
            "another folder"
        ) from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        lock.release()


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
