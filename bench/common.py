"""What the model benchmarks share: device, random chips, timed loops, peak memory.

Kept apart so that bench/train_step.py and bench/predict.py measure the same way: warm-up
steps (the first calls, and `torch.compile`, are far slower) are excluded, and on a GPU the
clock is read only after `torch.cuda.synchronize()`.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable

import torch

from agbm.cli.options import add_amp_option
from agbm.data import CHANNELS, MONTHS
from agbm.models import TemporalUNet, build_model
from agbm.runtime import autocast_dtype
from agbm.training import RECIPES

GIB = 2**30


def add_model_options(parser: argparse.ArgumentParser, batch_size: int) -> None:
    """The options both model benchmarks take (small CPU-friendly defaults)."""
    parser.add_argument("--backbone", default="resnet18", help="timm encoder (default resnet18)")
    parser.add_argument(
        "--recipe", default="winner", choices=list(RECIPES), help="model of (default winner)"
    )
    parser.add_argument("--size", type=int, default=64, help="chip side in pixels (default 64)")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"chips per step (default {batch_size})"
    )
    add_amp_option(parser)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="channels-last weights, as `agbm train` and `agbm predict` (default on)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cuda or cpu")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_model(
    backbone: str, recipe: str, device: torch.device, channels_last: bool
) -> TemporalUNet:
    """The architecture a recipe trains around `backbone`, random weights."""
    torch.manual_seed(0)
    arch = {"temporal": RECIPES[recipe].train["temporal"], **RECIPES[recipe].model}
    model = build_model({"backbone": backbone, "pretrained": False, **arch}).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def random_chips(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Images in [0, 1], ~1 in 5 months absent (as in the data), targets 0..300 t/ha."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, MONTHS, CHANNELS, size, size, generator=generator)
    present = torch.rand(batch, MONTHS, generator=generator) > 0.2
    present[:, 0] = True
    target = 300 * torch.rand(batch, 1, size, size, generator=generator)
    return image.to(device), present.to(device), target.to(device)


def timed(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per step, after `warmup` untimed steps."""
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(device: torch.device) -> str:
    """Peak GPU memory allocated by torch, or the process's peak RSS on CPU."""
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / GIB:.2f} GiB (CUDA max allocated)"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return f"{rss / GIB:.2f} GiB (peak RSS, whole process)"


def describe(args: argparse.Namespace, device: torch.device, **extra: object) -> str:
    """The label that starts every output line: what was measured, where."""
    amp = autocast_dtype(args.amp, device)
    parts = [
        args.backbone,
        f"recipe={args.recipe}",
        f"{args.size}px",
        f"batch={args.batch_size}",
        f"amp={str(amp).removeprefix('torch.') if amp else 'off'}",
        *(f"{k.replace('_', '-')}={v}" for k, v in extra.items()),
        f"channels-last={'on' if args.channels_last else 'off'}",
        f"compile={'on' if args.compile else 'off'}",
        f"device={torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}",
    ]
    return " ".join(parts)
