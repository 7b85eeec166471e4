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
    values only), or a one-line `ValueError` naming the file and its fault: zero-byte,
    truncated, not a checkpoint, a whole pickled model, or a dict of another program."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path}: holds Python objects, not a plain checkpoint (a whole pickled model? "
            "the BioMassters winner's files go through `agbm import-winner`)"
        ) from None
    except Exception as err:  # EOFError, RuntimeError (zip), KeyError (text), ...: many types
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: unreadable, truncated or not a checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or not set(keys) <= ckpt.keys():
        found = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: not an agbm checkpoint (needs {list(keys)}; holds {found})")
    return ckpt


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike) -> TemporalUNet:
    """The model a checkpoint dict describes, with its weights; faults name `path`."""
    config = ckpt["model_config"]
    if not isinstance(config, dict):
        raise ValueError(f"{path}: its model_config is a {type(config).__name__}, not a dict")
    try:
        model = build_model({**config, "pretrained": False})
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: its model_config cannot build a model ({err})") from None
    missing, unexpected = [], []
    try:
        result = model.load_state_dict(ckpt["model"], strict=False)
        missing, unexpected = result.missing_keys, result.unexpected_keys
    except RuntimeError as err:  # shape mismatches
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise ValueError(f"{path}: its weights do not fit its model_config ({first})") from None
    if missing or unexpected:
        raise ValueError(
            f"{path}: its weights do not fit its model_config ({len(missing)} missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TemporalUNet:
    """Rebuild a `TemporalUNet` from a checkpoint dict with "model_config" and "model" keys.

    Weights come from the checkpoint, so the encoder is built with `pretrained=False` (no
    download, no weights file needed). Read by `read_checkpoint`: the file may hold only
    tensors and plain Python values, and every fault is a one-line `ValueError`.
    """
    return model_from_checkpoint(read_checkpoint(path), path).to(map_location)
