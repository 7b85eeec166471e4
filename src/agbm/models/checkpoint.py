"""Checkpoints: a model saved with how to rebuild it, and read back with one clear error.

Checkpoint format (a `torch.save`d dict, read back with `weights_only=True`)::

    {"model_config": dict, "model": state_dict, ...anything else}

`model_config` holds the constructor arguments (`TemporalUNet.config`), so `load_model`
rebuilds the model from the file alone; training code may add more keys beside them.
"""

from __future__ import annotations

import inspect
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agbm.errors import CheckpointError, reason
from agbm.io import save_atomic
from agbm.models.unet import TemporalUNet


def check_model_config(config: dict[str, Any]) -> None:
    """Fail unless every key of `config` is a `TemporalUNet` constructor argument."""
    known = set(inspect.signature(TemporalUNet.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown model config key(s) {unknown}; known: {sorted(known)}")


def build_model(config: dict[str, Any]) -> TemporalUNet:
    """A `TemporalUNet` from a (possibly partial) dict of its constructor arguments."""
    check_model_config(config)
    return TemporalUNet(**config)


def save_model(
    path: str | os.PathLike,
    model: TemporalUNet,
    config: dict[str, Any] | None = None,
    **extra: Any,
) -> None:
    """Write `{"model_config": config or model.config, "model": state_dict, **extra}` to
    `path`, atomically.

    A `config` given is checked now, not when the file is loaded back: a checkpoint that
    cannot rebuild its model is a lost model."""
    if config is not None:
        check_model_config(config)
    state = {"model_config": config or model.config, "model": model.state_dict(), **extra}
    save_atomic(state, Path(path))


def read_checkpoint(
    path: str | os.PathLike, keys: Sequence[str] = ("model_config", "model")
) -> dict:
    """A checkpoint dict holding `keys`, read with `weights_only=True` (tensors and plain
    values only), or a one-line `CheckpointError` naming the file and its fault: missing,
    not a file torch writes (`check_torch_file`), truncated, a whole pickled model, or a
    dict of another program."""
    path = checkpoint_file(path)
    check_torch_file(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: holds Python objects, not a plain checkpoint ({refused_globals(path)}; a "
            "whole pickled model? the BioMassters winner's files go through `agbm import-winner`)"
        ) from None
    except Exception as err:  # EOFError, RuntimeError (zip), KeyError (text), ...: many types
        raise CheckpointError(
            f"{path}: unreadable, truncated or not a checkpoint ({reason(err, 120)})"
        ) from None
    if not isinstance(ckpt, dict) or not set(keys) <= ckpt.keys():
        found = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not an agbm checkpoint (needs {list(keys)}; holds {found})")
    return ckpt


def checkpoint_file(path: str | os.PathLike) -> Path:
    """`path` as a checkpoint file to read, or a `CheckpointError` saying what is there
    instead (nothing, or a folder)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


#: How a file `torch.save` writes begins: a zip archive (its format since torch 1.6) or, in
#: the legacy format, a pickle of protocol 2 or later.
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


#: How a Git LFS pointer begins: what a clone without `git lfs` holds instead of the file.
_LFS_POINTER = b"version https://git-lfs"


def check_torch_file(path: Path) -> None:
    """Refuse, by its first bytes, a file that `torch.save` cannot have written: a
    `CheckpointError` naming it and what it holds instead. torch's own error would call a
    short text file a pickle of Python objects."""
    with path.open("rb") as f:
        head = f.read(32)
    if head.startswith(_TORCH_MAGIC):
        return
    if head.startswith(_LFS_POINTER):
        what = "a Git LFS pointer: fetch the file itself, e.g. git lfs pull"
    else:
        what = f"it begins {head[:16]!r}" if head else "it is empty"
    raise CheckpointError(f"{path}: not a PyTorch checkpoint file ({what})")


def refused_globals(path: Path, shown: int = 3) -> str:
    """The globals a file names that torch's weights-only loader refuses, as one phrase
    (read from the pickle's opcodes, nothing run), so that a user sees what the file holds."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a pre-zip file: torch reads only zip checkpoints' opcodes
        return "objects torch refuses to load"
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    return f"it names {', '.join(found[:shown])}{more}"


def checked_model_config(ckpt: dict, path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint dict's `model_config`, checked to be one; faults name `path`."""
    config = ckpt["model_config"]
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: its model_config is a {type(config).__name__}, not a dict")
    return config


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike) -> TemporalUNet:
    """The model a checkpoint dict describes, with its weights; faults name `path`."""
    config = checked_model_config(ckpt, path)
    try:
        model = build_model({**config, "pretrained": False})
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: its model_config cannot build a model ({err})") from None
    missing, unexpected = [], []
    try:
        result = model.load_state_dict(ckpt["model"], strict=False)
        missing, unexpected = result.missing_keys, result.unexpected_keys
    except RuntimeError as err:  # shape mismatches
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise CheckpointError(
            f"{path}: its weights do not fit its model_config ({first})"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: its weights do not fit its model_config ({len(missing)} missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    spoilt = [
        k for k, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()
    ]
    if spoilt:
        raise CheckpointError(
            f"{path}: {len(spoilt)} tensor(s) hold weights that are not finite (e.g. {spoilt[0]}); "
            "the run that wrote it diverged, and its maps would be NaN"
        )
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TemporalUNet:
    """Rebuild a `TemporalUNet` from a checkpoint dict with "model_config" and "model" keys.

    Weights come from the checkpoint, so the encoder is built with `pretrained=False` (no
    download, no weights file needed). Read by `read_checkpoint`: the file may hold only
    tensors and plain Python values, and every fault is a one-line `CheckpointError`.
    """
    return model_from_checkpoint(read_checkpoint(path), path).to(map_location)
