"""agbm.io: the checkpoint hash that records name files by."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from agbm import io


def test_a_file_is_hashed_once_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"weights v1")
    reads = []
    real = hashlib.sha256
    monkeypatch.setattr(io.hashlib, "sha256", lambda: reads.append(1) or real())

    first = io.file_sha256(path)
    assert io.file_sha256(str(path)) == first == real(b"weights v1").hexdigest()
    assert len(reads) == 1  # the second call, by another spelling of the path, is remembered

    path.write_bytes(b"weights v2")  # same size, other bytes: the modification time moves on
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert io.file_sha256(path) == real(b"weights v2").hexdigest()
    assert len(reads) == 2
