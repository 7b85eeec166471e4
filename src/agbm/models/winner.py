"""The BioMassters winner's published checkpoints as agbm checkpoints.

The winner published two kinds of file, both plain `torch.save` pickles:

* `model_best.pth` / `model_last.pth` (its training checkpoints): a dict with `state_dict`,
  `args` (an `argparse.Namespace`: `backbone`, `in_channels`, `dec_channels`, ...), `epoch`,
  `best_score` and the optimiser's state;
* `modelo_best.pth` (what its submission loads): the whole model object, whose unpickling
  names the winner's own classes (`models.UnetVFLOW`, ...) and timm 0.6 / smp 0.3 classes.

Neither loads with `weights_only=True`, and the second needs the winner's code and old
libraries. Both are read by `agbm.safe_pickle.safe_load`, which runs no code from the file
and keeps model objects as inert `Opaque` data. The model's tensors are then taken from that
data, renamed to `TemporalUNet`'s keys and checked one by one.

The winner's model is `TemporalUNet(temporal="pool", output_scale=1.0)` with the winner's
input conventions (`agbm.data.WINNER_CONVENTIONS`); the imported checkpoint records them, so
`agbm predict`, `predict-scene` and `train --init` apply them with no flag to remember.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import get_deprecated_models

from agbm.data.conventions import WINNER_CONVENTIONS, InputConventions
from agbm.errors import CheckpointError
from agbm.io import check_output_file
from agbm.models.checkpoint import build_model, checkpoint_file, save_model
from agbm.models.unet import TemporalUNet
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


#: Winner key prefix -> TemporalUNet key prefix.
_RENAMES: tuple[tuple[str, str], ...] = (
    ("encoder.model.", "encoder."),
    ("segmentation_head.", "head."),
)


_ATTN = re.compile(r"^attn\.(\d+)\.attn\.")


def agbm_key(key: str) -> str:
    """A winner state-dict key as `TemporalUNet` names it."""
    for old, new in _RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    return _ATTN.sub(r"temporal.\1.score.", key)


def timm_name(name: str) -> str:
    """A timm 0.6 model name in timm 1.x (`tf_efficientnetv2_l_in21k` ->
    `tf_efficientnetv2_l.in21k`); names timm still knows are kept."""
    renamed = get_deprecated_models().get(name)
    if renamed:
        return renamed
    if timm.is_model(name):
        return name
    raise CheckpointError(f"backbone {name!r} is not a timm model, under its timm 0.6 or 1.x name")


def model_config(ckpt: WinnerCheckpoint) -> dict[str, Any]:
    """The `TemporalUNet` arguments that rebuild the winner's model from its file."""
    if not ckpt.backbone:
        raise CheckpointError("the file names no backbone (no args.backbone, no pretrained_cfg)")
    stem = next(
        (t for k, t in ckpt.state_dict.items() if k.startswith("encoder.") and t.ndim == 4), None
    )
    if stem is None:
        raise CheckpointError("the file holds no encoder convolution weights")
    widths = ckpt.args.get("dec_channels") or _decoder_widths(ckpt.state_dict)
    return {
        "backbone": timm_name(ckpt.backbone),
        "in_chans": int(ckpt.args.get("in_channels") or stem.shape[1]),
        "months": 12,
        "decoder_channels": [int(w) for w in widths],
        "temporal": "pool",
        "output_scale": 1.0,
        "output_init": 0.0,
        "input_conventions": WINNER_CONVENTIONS.to_dict(),
    }


def _decoder_widths(state_dict: dict[str, torch.Tensor]) -> list[int]:
    """Decoder block widths from the output channels of each block's first convolution."""
    found = {}
    for key, tensor in state_dict.items():
        if match := re.fullmatch(r"decoder\.blocks\.(\d+)\.conv1\.0\.weight", key):
            found[int(match[1])] = tensor.shape[0]
    if not found:
        raise CheckpointError("the file holds no UNet decoder blocks (decoder.blocks.N.conv1)")
    return [found[i] for i in sorted(found)]


def load_weights(model: TemporalUNet, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Copy the winner's tensors into `model`, every one checked; returns the winner keys
    left out (the decoder's last skip attention, which its forward pass never used)."""
    unused = f"decoder.blocks.{len(model.decoder.blocks) - 1}.attention1."
    dropped = [k for k in state_dict if k.startswith(unused)]
    mapped = {agbm_key(k): t for k, t in state_dict.items() if not k.startswith(unused)}
    target = model.state_dict()
    problems = [f"{k}: missing from the file" for k in target if k not in mapped]
    problems += [f"{k}: no place in the model" for k in mapped if k not in target]
    problems += [
        f"{k}: shape {tuple(mapped[k].shape)} in the file, {tuple(t.shape)} in the model"
        for k, t in target.items()
        if k in mapped and mapped[k].shape != t.shape
    ]
    if problems:
        shown = "; ".join(problems[:3])
        raise CheckpointError(
            f"{len(problems)} tensor(s) do not fit {model.config['backbone']} (agbm names): {shown}"
        )
    model.load_state_dict(mapped)
    return dropped


def import_winner(src: Path | str, dst: Path | str) -> dict[str, Any]:
    """Convert one of the winner's files into an agbm checkpoint at `dst`; returns a summary
    (backbone, parameters, conventions, what was read)."""
    src, dst = checkpoint_file(src), Path(dst)
    check_output_file(dst, inputs=[src])
    ckpt = read_winner(src)
    try:
        config = model_config(ckpt)
        model = build_model(config)
        dropped = load_weights(model, ckpt.state_dict)
    except CheckpointError as err:
        raise CheckpointError(f"{src}: {err}") from None
    source = {"file": src.name, "kind": ckpt.kind, "backbone": ckpt.backbone, **ckpt.extra}
    save_model(dst, model, winner=source)
    return {
        **source,
        "model_config": model.config,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dropped": len(dropped),
    }


#: How each temporal fusion and convention set reads, for people.
_TEMPORAL_TEXT = {"pool": "attention pooling", "attention": "self-attention, then pooling"}


def describe_conventions(conventions: InputConventions) -> str:
    """A model's input conventions in words (`agbm.data.InputConventions`)."""
    words = [
        "inputs clipped to [0, 1]" if conventions.clamp else "inputs not clipped",
        "cloud 255 as no data" if conventions.cloud_nodata else "cloud 255 read as 1.0",
        "absent months masked" if conventions.mask_absent else "every month attended",
    ]
    return f"{conventions.name}: {', '.join(words)}"


def describe_import(report: dict[str, Any], src: Path | str, dst: Path | str) -> str:
    """What `import_winner` read and wrote, for people, from the written model's config."""
    config = report["model_config"]
    extra = "".join(f", {k} {report[k]}" for k in ("epoch", "best_score") if k in report)
    scale = config["output_scale"]
    conventions = InputConventions.from_config(config["input_conventions"])
    return (
        f"read {src}: {report['kind']}{extra}\n"
        f"wrote {dst}\n"
        f"  backbone     {config['backbone']}\n"
        f"  decoder      {config['decoder_channels']}, scSE; "
        f"{_TEMPORAL_TEXT[config['temporal']]} over {config['months']} months\n"
        f"  parameters   {report['parameters'] / 1e6:.1f} M ({report['dropped']} tensors of the "
        "last decoder block's unused skip attention left out)\n"
        f"  conventions  {describe_conventions(conventions)}; "
        + ("no output scaling" if scale == 1.0 else f"output scaled by {scale:g}")
    )
