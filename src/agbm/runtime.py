"""Where a process runs and in what precision: device, torchrun rank, loader workers, AMP.

Shared by training and inference (and the benchmarks), so that neither imports the other.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank in the job and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def default_workers() -> int:
    """Loader workers per process when not given: this machine's CPUs (those the process may
    run on) shared among its torchrun processes, at most 8 (more rarely feeds one GPU
    faster), so that the loader never asks for more workers than there are cores."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_process = (cpus or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, per_process))


def init_runtime() -> Runtime:
    """Join the torchrun job if launched by torchrun (NCCL on GPUs, gloo on CPU), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return Runtime(rank, world, device)


#: `--amp` values and their autocast dtypes ("auto" is resolved per device).
AMP_DTYPES: dict[str, torch.dtype | None] = {
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "off": None,
}


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision in `dtype` on `device` for the block, or full precision for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def local_device() -> torch.device:
    """The machine's GPU when it has one, else the CPU (for a process outside torchrun)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: CPU flags (Linux /proc/cpuinfo) of native bf16 arithmetic: x86's AVX512-BF16 and AMX,
#: Arm's BF16 extension. Without them bf16 kernels take slow fallback paths.
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU computes bf16 natively (read from /proc/cpuinfo; False
    where there is none to read, as on macOS and Windows)."""
    try:
        return lists_native_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def lists_native_bf16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists a native bf16 flag (`_BF16_FLAGS`)."""
    lines = (line for line in cpuinfo.splitlines() if line.startswith(("flags", "Features")))
    return any(_BF16_FLAGS & set(line.split(":", 1)[-1].split()) for line in lines)


def autocast_dtype(amp: str, device: torch.device, inference: bool = False) -> torch.dtype | None:
    """The autocast dtype for `--amp`. "auto": bf16 on CUDA; for `inference` also on a CPU
    with native bf16 (1.75x faster for the full model there, and within the maps' accuracy
    threshold: docs/benchmarks.md); full precision otherwise."""
    if amp == "auto":
        native = device.type == "cuda" or (inference and cpu_has_native_bf16())
        return torch.bfloat16 if native else None
    return AMP_DTYPES[amp]
