"""End to end: train, predict, archive and evaluate through the CLI; predict under torchrun."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agbm.cli import main
from agbm.data import list_chips

pytestmark = pytest.mark.slow


def test_end_to_end_train_predict_evaluate(trained, tmp_path: Path, capsys) -> None:
    data, ckpt = trained
    pred = tmp_path / "pred"
    archive = tmp_path / "sub.tar.gz"
    assert (
        main(
            [
                "predict",
                "--data",
                str(data),
                "--checkpoint",
                str(ckpt),
                str(ckpt),
                "--out",
                str(pred),
                "--workers",
                "0",
                "--archive",
                str(archive),
            ]
        )
        == 0
    )
    chips = list_chips(data, "test")
    names = sorted(p.name for p in pred.iterdir())
    assert names == [*(f"{c}_agbm.tif" for c in chips), "predictions.json"]  # and its record
    assert archive.stat().st_size > 0
    assert main(["evaluate", "--pred", str(pred), "--truth", str(data)]) == 0
    assert "average RMSE" in capsys.readouterr().out


def test_torchrun_shards_chips_across_processes(trained, tmp_path: Path) -> None:
    data, ckpt = trained
    pred = tmp_path / "pred"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "agbm",
        "predict",
        "--data",
        str(data),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(pred),
        "--workers",
        "0",
    ]
    done = subprocess.run(cmd, env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = sorted(int(n) for n in re.findall(r"process \d: wrote (\d+) prediction", done.stdout))
    assert counts == [1, 2]  # 3 test chips: each written by exactly one process
    assert len(list(pred.glob("*_agbm.tif"))) == 3
