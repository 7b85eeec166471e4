"""Where a process runs and in what precision."""

from __future__ import annotations

import pytest
import torch

import agbm.runtime as runtime
from agbm.runtime import autocast_dtype, lists_native_bf16


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    assert lists_native_bf16("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 sse\n")
    assert lists_native_bf16("Features\t: fp asimd bf16 i8mm\n")  # Arm
    assert not lists_native_bf16("flags\t\t: fpu avx2 avx512f avx512bw\n")  # AVX-512, no bf16
    assert not lists_native_bf16("")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_for_inference_on_cpus_that_compute_it(
    native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--amp auto` was full precision on every CPU, though bf16 inference of the full model
    runs 1.75x faster on one with AVX512-BF16 (docs/benchmarks.md)."""
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu, inference=True) == (torch.bfloat16 if native else None)
    assert autocast_dtype("auto", cpu) is None  # training stays in full precision
    assert autocast_dtype("off", cpu, inference=True) is None
    assert autocast_dtype("auto", torch.device("cuda")) == torch.bfloat16
