"""The timm encoder and its pretrained weights: from the hub, a local file, or none."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import timm
from timm.models import get_pretrained_cfg, load_state_dict
from torch import nn

from agbm.errors import PretrainedWeightsError


def create_encoder(backbone: str, in_chans: int, pretrained: bool | str | os.PathLike) -> nn.Module:
    """A timm `features_only` encoder, with the weights asked for or a `PretrainedWeightsError`.

    Random init happens only for `pretrained=False`: a silently random encoder would cost a
    whole training run before anyone noticed.
    """
    if not timm.is_model(backbone):
        raise ValueError(f"unknown timm backbone {backbone!r} (see timm.list_models())")
    kwargs: dict[str, Any] = {"features_only": True, "in_chans": in_chans}
    if pretrained is False:
        return timm.create_model(backbone, pretrained=False, **kwargs)
    if pretrained is True:
        try:
            with _hub_offline_unless_reachable():
                return timm.create_model(backbone, pretrained=True, **kwargs)
        except Exception as err:  # hub, network and cache errors come in many types
            raise PretrainedWeightsError(_download_hint(backbone, str(err))) from err
    path = Path(pretrained)
    if not path.is_file():
        raise PretrainedWeightsError(_download_hint(backbone, f"no weights file at {path}"))
    try:
        _check_weights_file(backbone, path)
        return timm.create_model(
            backbone, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs
        )
    except Exception as err:  # unreadable file, or weights of another architecture
        raise PretrainedWeightsError(
            f"cannot load {backbone} encoder weights from {path}: {err}"
        ) from err


def _check_weights_file(backbone: str, path: Path) -> None:
    """Fail unless the file holds every weight of the backbone (its classifier aside).

    timm loads `features_only` weights non-strictly (the classifier is dropped), so a file of
    another architecture would otherwise leave the encoder silently random. Costs one extra
    read of the file and one random-init model, once per training run.
    """
    names = load_state_dict(str(path)).keys()
    expected = timm.create_model(backbone, pretrained=False, num_classes=0).state_dict()
    missing = [k for k in expected if k not in names and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(
            f"{len(missing)} of its {len(expected)} tensors are missing from the file "
            f"(e.g. {missing[:3]}); is it a timm {backbone} weights file?"
        )


#: The Hugging Face hub, where timm's pretrained weights come from.
HUB = ("huggingface.co", 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a connection to the hub opens within `timeout` seconds."""
    try:
        socket.create_connection(HUB, timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _hub_offline_unless_reachable() -> Iterator[None]:
    """Offline, the hub client retries for about a minute before failing. When the hub cannot
    be reached, switch it to offline mode for the block: weights already in the local cache
    still load, and missing ones fail at once."""
    import huggingface_hub.constants as hub

    if getattr(hub, "HF_HUB_OFFLINE", True) or hub_reachable():
        yield
        return
    hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = False


def _download_hint(backbone: str, reason: str) -> str:
    cfg = get_pretrained_cfg(backbone)
    hub_id = cfg.hf_hub_id if cfg is not None and cfg.hf_hub_id else f"timm/{backbone}"
    reason = " ".join(reason.split()).rstrip(".")
    return (
        f"cannot get pretrained weights for {backbone} ({reason}). On a machine with internet "
        f"access download https://huggingface.co/{hub_id}/resolve/main/model.safetensors, "
        "copy it here and set `pretrained` to PATH/model.safetensors, or to none for random "
        "init"
    )
