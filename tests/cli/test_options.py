"""The CLI builds one `InferenceOptions` per model-running command, from its flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agbm.cli import build_parser
from agbm.cli.options import inference_options
from agbm.inference.options import InferenceOptions

#: Each model-running command's required flags besides --checkpoint.
REQUIRED = {
    "predict": ["--data", "d", "--out", "o"],
    "predict-scene": ["--s1", "a", "--s2", "b", "--out", "o.tif"],
    "map": ["--bbox", "0", "0", "1", "1", "--year", "2021", "--out", "o.tif"],
    "map-region": ["--bbox", "0", "0", "1", "1", "--year", "2021", "--out", "o"],
    "calibrate": ["--data", "d", "--out", "c.json"],
}


def _options(command: str, *flags: str) -> InferenceOptions:
    argv = [command, *REQUIRED[command], "--checkpoint", "a.pt", "b.pt", *flags]
    return inference_options(build_parser([command]).parse_args(argv))


@pytest.mark.parametrize("command", list(REQUIRED))
def test_every_model_command_builds_its_options_from_its_flags(command: str) -> None:
    flags = ["--tta", "hv", "--batch-size", "3", "--amp", "off"]
    expected = InferenceOptions(("a.pt", "b.pt"), "hv", "off", 3)
    assert _options(command, *flags) == expected  # the defaults of the others too


def test_the_windows_and_the_calibration_come_from_their_flags_where_a_command_has_them() -> None:
    flags = ["--window", "128", "--overlap", "32", "--calibration", "c.json", "--coverage", "0.8"]
    options = _options("map-region", *flags)
    assert (options.window, options.overlap) == (128, 32)
    assert (options.calibration, options.coverage) == (Path("c.json"), 0.8)
    names = {f.name for f in dataclasses.fields(InferenceOptions)} - {"checkpoints"}
    parsed = build_parser(["map-region"]).parse_args(
        ["map-region", *REQUIRED["map-region"], "--checkpoint", "a.pt"]
    )
    assert names <= set(vars(parsed))  # no field the builder would leave at its default
