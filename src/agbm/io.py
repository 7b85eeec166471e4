"""Writing files so that a crash never leaves a half-written one: only the old file, or the new."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it when the block completes: a crash
    never leaves a half-written file, only the old one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    yield tmp
    os.replace(tmp, path)


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """torch.save through `replacing`."""
    with replacing(path) as tmp:
        torch.save(obj, tmp)
