"""The benchmarks still run against the current code and print one figure per line.

Figures are not checked (benchmarks are not timed tests): this only keeps `bench/` from
rotting silently when an API it uses changes. Each runs at a toy size in a few seconds.
"""

from __future__ import annotations

import ast
import re
import runpy
import sys

import pytest
import torch

from tests.helpers import REPO, WINNER_FIXTURE

pytestmark = pytest.mark.slow

BENCH = REPO / "bench"
#: "label: [what] number unit", as docs/benchmarks.md quotes them ("...: 4.1 ms/chip",
#: "...: peak memory 1.50 GiB").
FIGURE = re.compile(r"^\S.*: (peak memory )?-?\d+(\.\d+)?x?( |$)")


@pytest.mark.parametrize(
    "args",
    [
        ["loader.py", "--chips", "2", "--size", "32", "--workers", "0", "--batch-size", "2"],
        ["train_step.py", "--size", "32", "--steps", "1", "--warmup", "0", "--device", "cpu"],
        ["predict.py", "--size", "32", "--steps", "1", "--warmup", "0", "--device", "cpu"],
        ["augment.py", "--size", "32", "--batch-size", "2", "--steps", "1", "--threads", "1"],
        ["model_memory.py", "--backbone", "resnet18", "--size", "32", "--months", "3"],
        ["recipes.py", "--epochs", "1", "--chips", "6", "--test-chips", "1", "--size", "32"],
        ["labels.py", "--labels", "2000", "--side-km", "20"],
        ["startup.py", "--repeats", "1"],
        ["change.py", "--chips", "4", "--epochs", "1"],
        pytest.param(
            ["amp_accuracy.py", "--tta", "none"],
            marks=pytest.mark.skipif(not WINNER_FIXTURE.is_dir(), reason="needs ../shared"),
        ),
    ],
    ids=lambda args: args[0],
)
def test_benchmark_runs_and_prints_one_figure_per_line(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each script runs as `python bench/X.py ...` would, but in this process: a subprocess
    would spend most of a toy run importing torch again."""
    monkeypatch.setattr(sys, "argv", [str(BENCH / args[0]), *args[1:]])
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts' `from common import ...`
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(BENCH / args[0]), run_name="__main__")
    finally:
        torch.set_num_threads(threads)  # some scripts set their own
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines
    assert [line for line in lines if not FIGURE.match(line)] == []


def test_the_benchmarks_need_nothing_from_the_tests() -> None:
    """bench/ runs from a checkout without tests/ importable: what both use (the static
    catalog, the adaptation experiment) lives in bench/, and the tests import it."""
    imported = [
        f"{path.name}:{node.lineno}"
        for path in sorted(BENCH.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tests")
        or (
            isinstance(node, ast.Import)
            and any(a.name.split(".")[0] == "tests" for a in node.names)
        )
    ]
    assert imported == []
