"""`agbm import-winner`: one of the winner's files read, translated and saved as an agbm
checkpoint (`import_winner`), and what was read and written, for people
(`describe_import`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agbm.data.conventions import InputConventions
from agbm.errors import CheckpointError
from agbm.io import check_output_file
from agbm.models.checkpoint import build_model, checkpoint_file, save_model
from agbm.models.winner.read import read_winner
from agbm.models.winner.translate import load_weights, model_config


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
