"""The winner's two file formats read safely (`agbm.safe_pickle.safe_load`, which runs no
code from the file): a training checkpoint's `state_dict` and `args`, or a whole saved
model's tensors and backbone, as one `WinnerCheckpoint`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agbm.errors import CheckpointError
from agbm.safe_pickle import Opaque, safe_load


@dataclass
class WinnerCheckpoint:
    """The tensors and architecture facts found in one of the winner's files."""

    state_dict: dict[str, torch.Tensor]
    #: The winner's `args` (training checkpoints only).
    args: dict[str, Any]
    #: The backbone's name as the file gives it (timm 0.6 spelling), or None.
    backbone: str | None
    kind: str
    extra: dict[str, Any]


def read_winner(path: Path) -> WinnerCheckpoint:
    """Read a `model_*.pth` (training checkpoint) or `modelo_*.pth` (whole model) file."""
    obj = safe_load(path)
    try:  # the file is untrusted: any shape of data it holds is an error, not a traceback
        ckpt = _interpret(obj)
    except (AttributeError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: not a winner checkpoint ({err!r})") from None
    if ckpt is None:
        raise CheckpointError(
            f"{path}: not a winner checkpoint (neither a dict with 'state_dict' nor a saved "
            f"model; it holds {type(obj).__name__})"
        )
    strays = [k for k, t in ckpt.state_dict.items() if not isinstance(t, torch.Tensor)]
    if strays:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {strays[:3]}")
    return ckpt


def _interpret(obj: Any) -> WinnerCheckpoint | None:
    """What a loaded file holds, or None when it is neither of the winner's formats."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        args = _plain_args(obj.get("args"))
        extra = {k: obj[k] for k in ("epoch", "best_score", "score") if _is_number(obj.get(k))}
        return WinnerCheckpoint(
            dict(obj["state_dict"]), args, args.get("backbone"), "training checkpoint", extra
        )
    if isinstance(obj, Opaque) and _module_dict(obj) is not None:
        return WinnerCheckpoint(
            dict(_module_tensors(obj)), {}, _module_backbone(obj), f"whole model ({obj.origin})", {}
        )
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plain_args(args: Any) -> dict[str, Any]:
    """The winner's `argparse.Namespace` (kept `Opaque`) as a dict; {} when absent."""
    if isinstance(args, Opaque) and isinstance(args.state, dict):
        return dict(args.state)
    return dict(args) if isinstance(args, dict) else {}


def _module_dict(obj: Any) -> dict[str, Any] | None:
    """A pickled torch module's `__dict__`, or None for anything else."""
    state = obj.state if isinstance(obj, Opaque) else None
    return state if isinstance(state, dict) and "_modules" in state else None


def _module_tensors(module: Opaque, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """The `state_dict` of a pickled module tree: parameters and persistent buffers."""
    state = _module_dict(module) or {}
    skipped = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, tensor in (state.get(group) or {}).items():
            if isinstance(tensor, torch.Tensor) and name not in skipped:
                yield prefix + name, tensor.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            yield from _module_tensors(child, f"{prefix}{name}.")


def _module_backbone(model: Opaque) -> str | None:
    """The backbone a whole saved model names: its timm model's pretrained_cfg architecture,
    else the top module's `name` ("u-" + backbone)."""
    encoder = (_module_dict(model) or {}).get("_modules", {}).get("encoder")
    timm_model = (_module_dict(encoder) or {}).get("_modules", {}).get("model")
    cfg = (_module_dict(timm_model) or {}).get("pretrained_cfg")
    if isinstance(cfg, dict) and isinstance(cfg.get("architecture"), str):
        return cfg["architecture"]
    name = (_module_dict(model) or {}).get("name")
    return name.removeprefix("u-") if isinstance(name, str) else None
