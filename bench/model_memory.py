"""Memory of one TemporalUNet training step, measured on CPU; prints one line per figure.

    PYTHONPATH=src python bench/model_memory.py [--backbone NAME] [--size 256] [--months 12]

Runs one forward + backward at batch 1 in float32 and reports:

* parameter counts (encoder / temporal / decoder + head);
* activations saved for backward, per part and per temporal level, counted by a
  `saved_tensors_hooks` pack hook (each storage once, parameters excluded). This is the
  dominant, batch-proportional part of training memory on any device;
* the same for both temporal variants on the real encoder features;
* the process's peak RSS for the step (weights, gradients, activations and transients).

The GPU figure printed last is an estimate from these, not a GPU measurement.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from agbm.models import AttentionPool, TemporalAttention, TemporalUNet
from agbm.models.temporal import fuse_months

GIB = 2**30


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # KiB on Linux


@contextmanager
def saved_bytes(model: nn.Module, label_of: dict[nn.Module, str]) -> Iterator[dict[str, int]]:
    """Bytes saved for backward while inside, keyed by the labelled module running then."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    totals: dict[str, int] = defaultdict(int)
    current = ["(outside)"]

    def set_label(label: str) -> Callable[..., None]:
        return lambda *_: current.__setitem__(0, label)

    handles = [m.register_forward_pre_hook(set_label(lab)) for m, lab in label_of.items()]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params | seen:
            seen.add(storage.data_ptr())
            totals[current[0]] += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield totals
    for handle in handles:
        handle.remove()


def print_figure(name: str, value: float, unit: str) -> None:
    print(f"{name}: {value:.3f} {unit}", flush=True)


def full_step(model: TemporalUNet, image: torch.Tensor, present: torch.Tensor) -> dict[str, int]:
    labels = {model.encoder: "encoder", model.decoder: "decoder", model.head: "decoder"}
    labels.update({m: "temporal" for m in model.temporal})
    rss_before = peak_rss_gib()
    start = time.perf_counter()
    with saved_bytes(model, labels) as totals:
        out = model(image, present)
    out.mean().backward()
    print_figure("fwd+bwd wall time (CPU, fp32, batch 1)", time.perf_counter() - start, "s")
    print_figure("peak RSS before the step (weights, inputs)", rss_before, "GiB")
    print_figure("peak RSS during fwd+bwd (fp32, batch 1)", peak_rss_gib(), "GiB")
    return dict(totals)


def temporal_variants(model: TemporalUNet, image: torch.Tensor, present: torch.Tensor) -> None:
    """Saved activations of each temporal variant per level, on the real encoder features."""
    b, t, c, h, w = image.shape
    with torch.no_grad():
        levels = model.encoder(image.reshape(b * t, c, h, w))
    months = model.config["months"]
    for kind, make in [("attention", lambda d: TemporalAttention(d, months)),
                       ("pool", AttentionPool)]:  # fmt: skip
        for i, feats in enumerate(levels):
            module = make(feats.shape[1])
            feats = feats.detach().requires_grad_()
            with saved_bytes(module, {module: "x"}) as totals:
                fused = fuse_months(feats, present, module)
            fused.sum().backward()
            print_figure(f"temporal={kind} level {i} {tuple(feats.shape)} saved activations",
                         totals["x"] / GIB, "GiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="tf_efficientnetv2_l.in21k")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = TemporalUNet(args.backbone, months=args.months).train()
    for name, module in [("encoder", model.encoder), ("temporal", model.temporal),
                         ("decoder+head", [model.decoder, model.head])]:  # fmt: skip
        params = count(module) if isinstance(module, nn.Module) else sum(map(count, module))
        print_figure(f"params {name}", params / 1e6, "M")
    print_figure("params total", count(model) / 1e6, "M")
    print_figure(
        "params temporal (temporal=pool)",
        sum(count(AttentionPool(c)) for c in model.encoder.feature_info.channels()) / 1e6,
        "M",
    )

    image = torch.randn(1, args.months, model.config["in_chans"], args.size, args.size)
    present = torch.ones(1, args.months, dtype=torch.bool)
    totals = full_step(model, image, present)
    for part in ("encoder", "temporal", "decoder"):
        print_figure(f"saved activations {part} (fp32, batch 1)", totals[part] / GIB, "GiB")
    activations = sum(totals.values())
    print_figure("saved activations total (fp32, batch 1)", activations / GIB, "GiB")
    temporal_variants(model, image, present)

    # GPU, batch 8, bf16 autocast: activations scale with the batch and roughly halve in
    # bf16; fp32 weights + gradients + two AdamW moments are 16 bytes per parameter.
    estimate = 8 * activations / 2 + 16 * count(model)
    print_figure("GPU step at batch 8, bf16 autocast, AdamW (estimated, not measured on GPU)",
                 estimate / GIB, "GiB")  # fmt: skip


if __name__ == "__main__":
    main()
