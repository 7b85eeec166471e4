"""agbm.io: the checkpoint hash that records name files by."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from agbm import io
from agbm.errors import OutputError


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


def test_an_output_may_not_be_an_input_nor_inside_one_nor_hold_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "test_agbm").mkdir(parents=True)  # an input folder
    model = tmp_path / "m.pt"
    model.write_bytes(b"weights")
    (tmp_path / "link.pt").symlink_to(model)
    inputs = [data, model, None]  # an input not given is skipped
    for output, how in [
        (tmp_path / "link.pt", f"is one of this command's inputs {model}"),
        (tmp_path / "sub" / ".." / "m.pt", f"is one of this command's inputs {model}"),
        (data / "test_agbm", f"is inside the input folder {data}"),
        (data / "new" / "x.csv", f"is inside the input folder {data}"),
        (tmp_path, f"is a folder holding the input {data}"),
    ]:
        with pytest.raises(OutputError) as refused:
            io.refuse_overwriting_inputs([None, output], inputs)
        assert str(refused.value).startswith(f"{output} {how}: write somewhere else")
    io.refuse_overwriting_inputs([tmp_path / "pred", tmp_path / "m2.pt", None], inputs)
    # a folder holding an input file: outputs go in by their own names, beside the model
    io.refuse_overwriting_inputs([tmp_path / "run"], [tmp_path / "run" / "last.pt"])


def test_only_a_data_roots_chip_folders_are_its_inputs(tmp_path: Path) -> None:
    """`predict --out D/preds` was refused for lying inside the data root, `D/test_agbm`
    must be: the root's chip, target and label folders are what outputs may not reach."""
    from agbm.data.sources import data_folders

    data = tmp_path / "data"
    folders = data_folders(data)
    assert data / "test_agbm" in folders and data / "train_labels" in folders
    (data / "test_agbm").mkdir(parents=True)
    io.refuse_overwriting_inputs([data / "preds", data / "calib.json"], folders)
    with pytest.raises(OutputError, match="test_agbm is one of this command's inputs"):
        io.refuse_overwriting_inputs([data / "test_agbm"], folders)


def _failing(code: int):
    """A write that fails with the system's error `code`."""

    def write(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return write


def test_a_full_disk_is_an_output_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "[Errno 28] No space left on device" named no file."""
    path = tmp_path / "record.json"
    monkeypatch.setattr(Path, "write_text", _failing(errno.ENOSPC))
    with pytest.raises(OutputError) as refused:
        io.write_record(path, {"a": 1})
    assert str(refused.value).startswith(f"{path}: No space left on device while writing it")
    assert list(tmp_path.iterdir()) == []  # no temporary left behind
    monkeypatch.setattr(Path, "write_text", _failing(errno.EIO))
    with pytest.raises(OSError) as failed:  # other errors stay what they are
        io.write_record(path, {"a": 1})
    assert not isinstance(failed.value, OutputError) and failed.value.errno == errno.EIO
