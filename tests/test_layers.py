"""Inference does not depend on training: importing it loads neither the training code nor
matplotlib (which training's loss plot needs). It used to load both, through agbm.train."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["agbm.predict", "agbm.scene", "agbm.winner", "agbm.runtime"])
def test_inference_modules_load_no_training_code_and_no_matplotlib(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "loaded = [m for m in ('agbm.train', 'agbm.plots', 'matplotlib') if m in sys.modules]; "
        "print(','.join(loaded))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"{module} loads {done.stdout.strip()}"


def test_every_deliberate_error_is_an_agbm_error_defined_in_one_place() -> None:
    import agbm.data
    import agbm.model
    import agbm.winner
    from agbm.errors import AgbmError, DataError, PretrainedWeightsError, UnsafePickleError

    assert agbm.data.DataError is DataError  # still importable where users found it
    assert agbm.model.PretrainedWeightsError is PretrainedWeightsError
    assert agbm.winner.UnsafePickleError is UnsafePickleError
    for error in (DataError, PretrainedWeightsError, UnsafePickleError):
        assert issubclass(error, AgbmError) and error.__module__ == "agbm.errors"
