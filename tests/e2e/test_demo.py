"""The one-command demo, end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from agbm.demo import DemoConfig, run_demo
from agbm.errors import OutputError
from tests.helpers import PNG

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end_and_resumes(tmp_path: Path, capsys) -> None:
    # A short run of every step (that the model beats both baselines: tests/e2e/test_training.py)
    config = DemoConfig(out=tmp_path, chips=8, test_chips=2, size=32, epochs=1, batch_size=2)
    scores = run_demo(config)
    assert len(scores) == 3 and all(np.isfinite(v) and v > 0 for v in scores.values())
    assert len(list((tmp_path / "pred").glob("*_agbm.tif"))) == 2
    assert len(list((tmp_path / "figures").glob("*.png"))) == 2
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == PNG
    out = capsys.readouterr().out
    assert "per-pixel linear regression" in out and "predict the training mean" in out
    last = (tmp_path / "run" / "last.pt").stat().st_mtime_ns
    run_demo(config)  # everything already there: nothing is retrained
    assert (tmp_path / "run" / "last.pt").stat().st_mtime_ns == last
    assert "== synthetic data" not in capsys.readouterr().out
    with pytest.raises(OutputError, match="other settings .*size: '32' -> '64'"):
        run_demo(dataclasses.replace(config, size=64))
